package eval

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
)

// Reasons a window or a participant is left out of the keystroke evaluation, on top of the
// reader's reasons for dropping rows.
const (
	DropSparseWindow   = "window with too few usable timings"
	DropFewWindows     = "participant with too few windows to enrol and test"
	DropUnreadableFile = "unreadable participant file"
)

// keyUser is one participant's data, split for the protocol: enrolment windows, overlapping
// summaries over the enrolment keystrokes, and test windows, all over disjoint keystrokes.
type keyUser struct {
	id      string
	enrol   []models.Window
	overlap [][]float64
	test    []models.Window
}

// loadKeystrokeUsers reads the participant files and splits each participant's keystrokes into
// consecutive windows of size window: the first enrol usable windows are enrolment, the rest
// test. Summaries of windows every stride keystrokes over the enrolment span give the
// autoencoder and forest more rows; they never reach into a test window.
func loadKeystrokeUsers(ctx context.Context, files []string, window, enrol, stride, workers int, progress func(done, total int)) ([]keyUser, keystroke.ReadStats, error) {
	type loaded struct {
		user  keyUser
		stats keystroke.ReadStats
		err   error
	}
	out := make([]loaded, len(files))
	err := forEach(ctx, len(files), workers, progress, func(i int) error {
		p, st, err := keystroke.ReadAaltoFile(files[i])
		out[i].stats = st
		if err != nil {
			// One unreadable file is counted, not fatal: other participants still make a run.
			out[i].err = err
			return nil
		}
		out[i].user, out[i].stats = splitUser(p, st, window, enrol, stride)
		return nil
	})
	if err != nil {
		return nil, keystroke.ReadStats{}, err
	}
	var (
		users []keyUser
		total keystroke.ReadStats
	)
	for _, l := range out {
		total.Add(l.stats)
		switch {
		case l.err != nil:
			total.Drop(DropUnreadableFile, 1)
		case len(l.user.test) == 0:
			total.Drop(DropFewWindows, 1)
		default:
			users = append(users, l.user)
		}
	}
	if len(users) < 2 {
		return nil, total, fmt.Errorf("eval: %d usable participants, need at least 2 (dropped: %v)", len(users), total.Dropped)
	}
	return users, total, nil
}

// splitUser cuts one participant's keystrokes into windows and splits them for the protocol.
func splitUser(p keystroke.Participant, st keystroke.ReadStats, window, enrol, stride int) (keyUser, keystroke.ReadStats) {
	u := keyUser{id: p.ID}
	ks := p.Keystrokes()
	var ex keystroke.TimingExtractor
	var t keystroke.Timings
	enrolEnd := 0 // keystrokes before this index belong to enrolment
	for i, w := range keystroke.Windows(ks, window) {
		if err := ex.Extract(&t, w); err != nil {
			if errors.Is(err, keystroke.ErrWindowTooSparse) {
				st.Drop(DropSparseWindow, 1)
			}
			continue
		}
		mw := models.Window{Dense: slices.Clone(t.Summary), Events: slices.Clone(t.Events)}
		if len(u.enrol) < enrol {
			u.enrol = append(u.enrol, mw)
			enrolEnd = (i + 1) * window
			continue
		}
		u.test = append(u.test, mw)
	}
	if len(u.enrol) < enrol {
		u.test = nil
		return u, st
	}
	for start := 0; start+window <= enrolEnd; start += stride {
		if ex.Extract(&t, ks[start:start+window]) == nil {
			u.overlap = append(u.overlap, slices.Clone(t.Summary))
		}
	}
	return u, st
}
