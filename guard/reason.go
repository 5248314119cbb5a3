package guard

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Signal names what moved a session's trust or decided an authorization.
type Signal uint8

// Signals.
const (
	SignalBehaviour        Signal = iota + 1 // typing or mouse use, for or against the owner
	SignalImpossibleTravel                   // the session moved faster than travel allows
	SignalNewDevice                          // a device fingerprint the user was never seen on
	SignalNewNetwork                         // a network the user was never seen on
	SignalUnusualHour                        // an hour of the week the user is rarely active
	SignalChallenge                          // a challenge passed, failed or left unanswered
	SignalFeedback                           // an analyst's verdict
	SignalSession                            // the session itself: unknown, revoked
	SignalPolicy                             // the policy: unknown resource
)

var signalNames = [...]string{
	SignalBehaviour:        "behaviour",
	SignalImpossibleTravel: "impossible_travel",
	SignalNewDevice:        "new_device",
	SignalNewNetwork:       "new_network",
	SignalUnusualHour:      "unusual_hour",
	SignalChallenge:        "challenge",
	SignalFeedback:         "feedback",
	SignalSession:          "session",
	SignalPolicy:           "policy",
}

// String returns the signal's stable name, as the audit log records it.
func (s Signal) String() string {
	if int(s) < len(signalNames) && signalNames[s] != "" {
		return signalNames[s]
	}
	return "unknown"
}

// Reason is one signal behind a decision, in plain words.
type Reason struct {
	Signal Signal
	// Impact is the trust the signal moved, in points: negative lowered trust. Zero for
	// reasons that explain a decision without moving trust (an unknown resource).
	Impact float64
	Text   string
}

func (r Reason) String() string {
	if r.Impact == 0 {
		return r.Text
	}
	return string(r.appendString(make([]byte, 0, len(r.Text)+8)))
}

func (r Reason) appendString(b []byte) []byte {
	b = append(b, r.Text...)
	if r.Impact == 0 {
		return b
	}
	return append(appendPoints(append(b, " ("...), r.Impact, true), ')')
}

// ledger keeps the signals behind a session's current trust, from which each published status
// takes its top reasons. Consistent behaviour is summed into one entry rather than kept window
// by window.
type ledger struct {
	items       []Reason
	gain        float64
	gainWindows int
}

// add records a signal, forgetting the weakest when full.
func (l *ledger) add(r Reason) {
	if len(l.items) == MaxTrackedSignals {
		weakest := 0
		for i, it := range l.items {
			if math.Abs(it.Impact) < math.Abs(l.items[weakest].Impact) {
				weakest = i
			}
		}
		if math.Abs(r.Impact) <= math.Abs(l.items[weakest].Impact) {
			return
		}
		l.items = append(l.items[:weakest], l.items[weakest+1:]...)
	}
	l.items = append(l.items, r)
}

func (l *ledger) addGain(g float64) {
	l.gain += g
	l.gainWindows++
}

// reset starts over from r: after a passed challenge or an analyst's verdict the old signals
// no longer explain the session's trust.
func (l *ledger) reset(r Reason) {
	l.items = append(l.items[:0], r)
	l.gain, l.gainWindows = 0, 0
}

// top returns up to MaxReasons signals in a new slice that is never modified afterwards
// (statuses share it): what lowered trust first, strongest first, then what raised it, so a
// denial is never explained by what once earned trust.
func (l *ledger) top() []Reason {
	all := make([]Reason, 0, len(l.items)+1)
	all = append(all, l.items...)
	if l.gainWindows > 0 && l.gain > 0 {
		// Gains since the last reset add up past the trust scale when trust dips and recovers
		// again and again, yet together they never raised trust by more than the whole scale.
		all = append(all, Reason{Signal: SignalBehaviour, Impact: min(l.gain, MaxTrust),
			Text: fmt.Sprintf("behaviour consistent with this user's baseline in %d windows", l.gainWindows)})
	}
	sort.SliceStable(all, func(i, j int) bool {
		if (all[i].Impact < 0) != (all[j].Impact < 0) {
			return all[i].Impact < 0
		}
		return math.Abs(all[i].Impact) > math.Abs(all[j].Impact)
	})
	if len(all) > MaxReasons {
		all = all[:MaxReasons:MaxReasons]
	}
	return all
}

// behaviourText explains a deviating window: its anomaly and the first two deviations the
// scorer gave.
func behaviourText(source string, s BehaviourScore) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s unlike this user's (anomaly %.2f)", source, s.Anomaly)
	// The scorer orders deviations by how much they explain, which need not be by |Z|: a
	// feature far from the owner's habit but also far from everybody else's says little.
	unitless := false
	for n, d := range s.Deviations[:min(deviationsExplained, len(s.Deviations))] {
		sep := ": "
		if n > 0 {
			sep = ", "
		}
		if d.Unit != "" {
			fmt.Fprintf(&b, "%s%s %.3g %s, usually %.3g %s (%+.1fσ)", sep, d.Feature, d.Value, d.Unit, d.Baseline, d.Unit, d.Z)
			continue
		}
		fmt.Fprintf(&b, "%s%s %+.1fσ", sep, d.Feature, d.Z)
		unitless = true
	}
	if unitless {
		b.WriteString(" from baseline")
	}
	return b.String()
}
