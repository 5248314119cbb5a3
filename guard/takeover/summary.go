package takeover

import (
	"math"
	"slices"
)

// summarise fills res's outcomes from the participants' sessions.
func summarise(res *Result, outs []userRuns) {
	g, t := &res.Genuine, &res.Takeover
	t.Tiers = map[string]int{}
	for _, u := range outs {
		g.Sessions++
		g.Keystrokes += u.genuine.events
		g.Challenges += u.genuine.stepUps
		g.Terminations += u.genuine.revoked
		if u.genuine.stepUps > 0 {
			g.SessionsChallenged++
		}
		for _, r := range u.takeovers {
			t.PrefixChallenges += r.prefixStepUps
			if r.prefixRevoked {
				t.PrefixTerminated++
				continue
			}
			t.Sessions++
			t.ImpostorKeystrokes += r.typed
			if r.toChallenge == 0 {
				t.Missed++
				continue
			}
			t.ToChallenge = append(t.ToChallenge, r.toChallenge)
			t.Tiers[r.tier.String()]++
		}
	}
	if g.Keystrokes > 0 {
		g.Per1000 = 1000 * float64(g.Challenges) / float64(g.Keystrokes)
	}
	slices.Sort(t.ToChallenge)
	if t.Sessions > 0 {
		t.MissedShare = float64(t.Missed) / float64(t.Sessions)
	}
	t.P25 = rank(t.ToChallenge, t.Sessions, 0.25)
	t.Median = rank(t.ToChallenge, t.Sessions, 0.5)
	t.P75 = rank(t.ToChallenge, t.Sessions, 0.75)
	t.P90 = rank(t.ToChallenge, t.Sessions, 0.9)
	t.MedianDetected = rank(t.ToChallenge, len(t.ToChallenge), 0.5)
}

// rank is the nearest-rank q-quantile of n values of which the sorted detected ones come first
// and the rest are infinite (never challenged): NaN when it falls among the infinite ones or
// there are no values.
func rank[T int | float64](detected []T, n int, q float64) float64 {
	if n == 0 {
		return math.NaN()
	}
	k := max(int(math.Ceil(q*float64(n))), 1) - 1
	if k >= len(detected) {
		return math.NaN()
	}
	return float64(detected[k])
}
