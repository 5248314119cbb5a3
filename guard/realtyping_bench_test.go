package guard_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilauth/vigil/guard"
	"github.com/vigilauth/vigil/guard/behaviour"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
)

// BenchmarkKeystrokeToTrust measures the scoring path with the real models: from a keystroke
// handed to the guard to the updated status published, over a test participant's real typing
// scored by their own model (timings, profile against the federation's population, autoencoder,
// isolation forest, calibration, explanation) every KeystrokeHop keystrokes. It reports the
// latency distribution over all keystrokes (p50, p99, max) and over the keystrokes that
// complete a window and move trust (window-p50, window-p99). The target: p99 at most
// 100 µs.
func BenchmarkKeystrokeToTrust(b *testing.B) {
	f := loadFleet(b)
	ty := newTypist(b, f, 0)
	scorers := behaviour.NewSource()
	if err := scorers.SetModel("u", ty.model); err != nil {
		b.Fatal(err)
	}
	policy, err := guard.ParsePolicy(strings.NewReader(scenarioPolicy))
	if err != nil {
		b.Fatal(err)
	}
	g, err := guard.New(guard.Config{Scorers: scorers}, policy)
	if err != nil {
		b.Fatal(err)
	}
	cfg := guard.DefaultConfig()
	start := time.Now().Add(-24 * time.Hour)
	src := events("s", ty.unseen, start)
	lat := make([]time.Duration, 0, b.N)
	var windowLat []time.Duration
	id, sid := 0, ""
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := i % len(src)
		if k == 0 {
			b.StopTimer()
			// A fresh session per pass over the data, so that time keeps moving forward.
			if sid != "" {
				if err := g.CloseSession(sid, start); err != nil {
					b.Fatal(err)
				}
			}
			id++
			sid = fmt.Sprintf("s%d", id)
			if _, err := g.OpenSession(sid, "u", start); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		ev := src[k]
		ev.Session = sid
		t0 := time.Now()
		st, err := g.ObserveKeystroke(ev)
		d := time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		if st.Challenge.Open() {
			b.StopTimer()
			if _, err := g.AnswerChallenge(sid, st.Challenge.ID, true, ev.Press); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		lat = append(lat, d)
		if k+1 >= cfg.KeystrokeWindow && (k+1-cfg.KeystrokeWindow)%cfg.KeystrokeHop == 0 {
			windowLat = append(windowLat, d)
		}
	}
	b.StopTimer()
	reportLatency(b, "", lat)
	reportLatency(b, "window-", windowLat)
}

// BenchmarkScoreWindow measures the scorer alone on one window of 50 real keystrokes: timing
// extraction, the model's score and the explanation, as the guard calls it. Plaintext is the
// plaintext federation's model; Deployable the model learnt against the population of the
// deployable DP round (epsilon 8), which models more buckets (backoff), so more events are
// scored.
func BenchmarkScoreWindow(b *testing.B) {
	f := loadFleet(b)
	b.Run("plaintext", func(b *testing.B) {
		ty := newTypist(b, f, 0)
		benchScoreWindow(b, ty.model, ty.unseen)
	})
	b.Run("deployable", func(b *testing.B) {
		g := f.deployable(b)
		p, _, err := keystroke.ReadAaltoFile(f.test[0])
		if err != nil {
			b.Fatal(err)
		}
		ks := p.Keystrokes()
		enrol, st, err := behaviour.KeystrokeEnrolment(ks, behaviour.EnrolConfig{Window: windowSize, Windows: enrolWindows})
		if err != nil {
			b.Fatal(err)
		}
		m, err := behaviour.FitKeystrokes(context.Background(), f.layout, g, enrol, models.UserModelConfig{})
		if err != nil {
			b.Fatal(err)
		}
		benchScoreWindow(b, m, ks[st.Used:])
	})
}

func benchScoreWindow(b *testing.B, m *models.UserModel, unseen []keystroke.Keystroke) {
	sc, err := behaviour.NewScorer(m)
	if err != nil {
		b.Fatal(err)
	}
	evs := events("s", unseen, time.Now())
	var windows [][]guard.KeystrokeEvent
	for i := 0; i+50 <= len(evs); i += 25 {
		windows = append(windows, evs[i:i+50])
	}
	for _, w := range windows { // fill the scorer's buffers once
		sc.ScoreKeystrokes(w)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := sc.ScoreKeystrokes(windows[i%len(windows)]); err != nil && err != guard.ErrNotScored {
			b.Fatal(err)
		}
	}
}

func reportLatency(b *testing.B, prefix string, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1000 }
	b.ReportMetric(q(0.5), prefix+"p50-µs")
	b.ReportMetric(q(0.99), prefix+"p99-µs")
	if prefix == "" {
		b.ReportMetric(q(1), "max-µs")
	}
}
