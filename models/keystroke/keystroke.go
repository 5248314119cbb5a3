// Package keystroke turns raw key press and release events into features over windows of
// keystrokes, reads the Aalto "136M Keystrokes" files, and generates synthetic typists for demos
// and tests.
//
// The feature set, TimingFeatureSet ("keystroke-digraph-v2", TimingExtractor), is a 31-entry
// summary of a window together with every timing event in it (hold of each key in the context
// of its neighbours, press-to-press and release-to-press latency of each digraph), for the
// per-user models of package models (see NewLayout).
package keystroke

import "time"

// Keystroke is one key pressed and released. Times are offsets from an origin shared by the
// whole session; Release is zero when the release was never seen.
type Keystroke struct {
	// Code is the browser (JavaScript) key code, e.g. 8 for backspace, 16 for shift.
	Code    int
	Press   time.Duration
	Release time.Duration
}

// Key codes with a role in the features.
const (
	CodeBackspace = 8
	CodeShift     = 16
	CodeSpace     = 32
)

// Hold returns how long the key was held, and whether that is known and plausible.
func (k Keystroke) Hold() (time.Duration, bool) {
	h := k.Release - k.Press
	return h, k.Release != 0 && h > 0 && h <= maxHold
}

// Windows splits a session into consecutive, non-overlapping windows of n keystrokes, dropping
// the incomplete tail. The windows share ks's backing array.
func Windows(ks []Keystroke, n int) [][]Keystroke {
	if n <= 0 {
		return nil
	}
	ws := make([][]Keystroke, 0, len(ks)/n)
	for i := 0; i+n <= len(ks); i += n {
		ws = append(ws, ks[i:i+n:i+n])
	}
	return ws
}
