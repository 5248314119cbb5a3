package aggregation

import "fmt"

// Quorum decides when a round may close: as soon as Target updates are in (or every selected
// device has answered), or at the deadline if at least Min are in. With fewer than Min at the
// deadline the round fails and its sum is discarded: releasing a sum of too few updates would
// expose them (and under distributed DP, would carry too little noise).
type Quorum struct {
	Min    int
	Target int
}

// Validate reports whether q is usable.
func (q Quorum) Validate() error {
	if q.Min < 1 {
		return fmt.Errorf("aggregation: minimum updates %d must be at least 1", q.Min)
	}
	if q.Target != 0 && q.Target < q.Min {
		return fmt.Errorf("aggregation: target updates %d below the minimum %d", q.Target, q.Min)
	}
	return nil
}

// Outcome is what a quorum rule says about a round.
type Outcome int

// Outcomes of Decide.
const (
	Wait  Outcome = iota // keep collecting
	Close                // aggregate what is in
	Fail                 // give the round up
)

func (o Outcome) String() string {
	switch o {
	case Wait:
		return "wait"
	case Close:
		return "close"
	case Fail:
		return "fail"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Decide applies the rule to a round with got updates from selected devices.
func (q Quorum) Decide(got, selected int, deadlinePassed bool) Outcome {
	switch {
	case got >= selected && got >= q.Min:
		return Close
	case q.Target > 0 && got >= q.Target:
		return Close
	case !deadlinePassed:
		return Wait
	case got >= q.Min:
		return Close
	default:
		return Fail
	}
}
