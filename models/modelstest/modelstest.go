// Package modelstest builds what the federation's rounds would, from exact sums of devices'
// contributions, for tests of the code that uses it: the coordinator's decoding, the device's
// checks, the agent's refits.
package modelstest

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/mouse"
)

// Sum returns the exact sum of n-entry contributions over every device's windows.
func Sum(tb testing.TB, n int, contribute func([]models.Window) ([]float64, error), devices [][]models.Window) []float64 {
	tb.Helper()
	sum := make([]float64, n)
	for i, w := range devices {
		v, err := contribute(w)
		if err != nil {
			tb.Fatalf("device %d: %v", i, err)
		}
		for j := range v {
			sum[j] += v[j]
		}
	}
	return sum
}

// MouseUsers returns the windows of n actions of each synthetic mouse user seed.
func MouseUsers(n int, seeds ...uint64) [][]models.Window {
	out := make([][]models.Window, len(seeds))
	for i, s := range seeds {
		out[i] = mouse.NewMover(s).Windows(n)
	}
	return out
}

// MousePopulation returns the mouse population the reference round and then the statistics
// round with settings cfg decode from the devices' windows without noise, carrying its
// reference, and the reference encoding.
func MousePopulation(tb testing.TB, cfg models.PopulationStatsConfig, devices [][]models.Window) (*models.Population, *models.ReferenceStats) {
	tb.Helper()
	rs, err := models.NewReferenceStats(mouse.NewLayout())
	if err != nil {
		tb.Fatal(err)
	}
	ref, err := rs.Decode(Sum(tb, rs.Len(), rs.Contribute, devices), 0)
	if err != nil {
		tb.Fatal(err)
	}
	stats, err := models.NewPopulationStats(rs.Layout(), ref, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	pop, err := stats.Decode(Sum(tb, stats.Len(), stats.Contribute, devices), 0)
	if err != nil {
		tb.Fatal(err)
	}
	pop.Reference = &ref
	return pop, rs
}

var (
	balabitButtons = [...]string{mouse.NoButton: "NoButton", mouse.Left: "Left", mouse.Right: "Right", mouse.Middle: "Middle", mouse.Scroll: "Scroll", mouse.XButton: "XButton"}
	balabitStates  = [...]string{mouse.Move: "Move", mouse.Pressed: "Pressed", mouse.Released: "Released", mouse.Drag: "Drag", mouse.Down: "Down", mouse.Up: "Up"}
)

// WriteBalabitSession writes evs as the gzip-compressed session file dir/sub/user/name.gz of
// the Balabit layout (sub is "training_files" or "test_files"), which mouse.ReadBalabit reads
// back. Times start at 1000 s, as a recording's never start at 0.
func WriteBalabitSession(tb testing.TB, dir, sub, user, name string, evs []mouse.Event) {
	tb.Helper()
	d := filepath.Join(dir, sub, user)
	if err := os.MkdirAll(d, 0o755); err != nil {
		tb.Fatal(err)
	}
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	fmt.Fprintln(zw, "record timestamp,client timestamp,button,state,x,y")
	for _, e := range evs {
		s := 1000 + e.T.Seconds()
		fmt.Fprintf(zw, "%.3f,%.3f,%s,%s,%.0f,%.0f\n", s, s, balabitButtons[e.Button], balabitStates[e.State], e.X, e.Y)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, name+".gz"), b.Bytes(), 0o600); err != nil {
		tb.Fatal(err)
	}
}
