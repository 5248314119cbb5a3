package eval

import (
	"context"
	"errors"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/mouse"
)

// DropActionNoShape counts actions whose points could not be described (all at one time).
const DropActionNoShape = "action without distinct timed points"

// mouseSession is one session's actions as model windows.
type mouseSession struct {
	user, name string
	windows    []models.Window
}

// loadMouseSessions reads and segments sessions, turning every action into a window.
func loadMouseSessions(ctx context.Context, sessions []mouse.Session, seg mouse.SegmentConfig, workers int, progress func(done, total int)) ([]mouseSession, mouse.ReadStats, error) {
	out := make([]mouseSession, len(sessions))
	stats := make([]mouse.ReadStats, len(sessions))
	err := forEach(ctx, len(sessions), workers, progress, func(i int) error {
		s := sessions[i]
		events, st, err := mouse.ReadBalabitFile(s.Path)
		if err != nil {
			return err
		}
		actions, short, err := mouse.Segment(events, seg)
		if err != nil {
			return err
		}
		if short > 0 {
			st.Drop(mouse.DropShortAction, short)
		}
		var ex mouse.Extractor
		f := make([]float64, mouse.NumFeatures)
		ms := mouseSession{user: s.User, name: s.Name}
		for _, a := range actions {
			if err := ex.Extract(f, a); err != nil {
				if errors.Is(err, mouse.ErrActionTooShort) {
					st.Drop(DropActionNoShape, 1)
					continue
				}
				return err
			}
			var w models.Window
			mouse.Window(&w, a.Type, f)
			ms.windows = append(ms.windows, w)
		}
		out[i], stats[i] = ms, st
		return nil
	})
	var total mouse.ReadStats
	for _, st := range stats {
		total.Add(st)
	}
	return out, total, err
}

// sample returns up to n of rows, evenly spaced, so that a long history trains the autoencoder
// and forest in bounded time while still covering all of it.
func sample(rows [][]float64, n int) [][]float64 {
	if n <= 0 || len(rows) <= n {
		return rows
	}
	out := make([][]float64, n)
	for i := range out {
		out[i] = rows[i*len(rows)/n]
	}
	return out
}
