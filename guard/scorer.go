package guard

import "time"

// BehaviourScore is a behavioural model's verdict on one window of a user's input.
type BehaviourScore struct {
	// Anomaly is calibrated in [0, 1]: 0 is typical of the session's owner, 1 is certainly
	// someone else. Calibrated means comparable across users and models: read it as the
	// probability that the window was not produced by the owner, at even prior odds.
	Anomaly float64
	// Deviations name the features that moved most against the owner's baseline, the most
	// telling first. Explanations quote the first two; they may be empty. The guard reads them only
	// during the call that returned them, so a scorer may reuse the slice.
	Deviations []Deviation
}

// Deviation is how far one feature of a window lay from the owner's baseline.
type Deviation struct {
	// Feature names the feature in plain words, e.g. "hold time of the space bar" or
	// "latency from t to h".
	Feature string
	// Z is the deviation in standard deviations of the owner's baseline; positive means larger
	// (longer, faster, further) than usual.
	Z float64
	// Value is what the window showed and Baseline what the owner usually shows, in Unit
	// (e.g. "ms"). All three are optional: explanations quote them when Unit is set.
	Value, Baseline float64
	Unit            string
}

// BehaviourScorer scores one user's behaviour. The guard asks its ScorerSource for one per
// session owner and calls it on the scoring path only, never concurrently for the same user.
// The window slices are reused after a call returns: a scorer that keeps events must copy them.
type BehaviourScorer interface {
	// ScoreKeystrokes scores a completed window of keystrokes, oldest first.
	// Return ErrNotScored to give no opinion.
	ScoreKeystrokes(window []KeystrokeEvent) (BehaviourScore, error)
	// ScoreMouse scores a completed window of mouse events, oldest first.
	// Return ErrNotScored to give no opinion (for example, a keystroke-only model).
	ScoreMouse(window []MouseEvent) (BehaviourScore, error)
	// Feedback says what an analyst or a challenge established about the owner's recent
	// behaviour, so the model can adapt its baseline to genuine drift (Genuine,
	// ChallengePassed) or keep an impostor's windows out of it (Compromised).
	Feedback(f Feedback)
}

// ScorerSource gives the scorer of a user. The guard calls ScorerFor once per user, when the
// user's first session opens, and keeps the scorer.
type ScorerSource interface {
	ScorerFor(user string) (BehaviourScorer, error)
}

// ScorerSourceFunc adapts a function to ScorerSource.
type ScorerSourceFunc func(user string) (BehaviourScorer, error)

// ScorerFor implements ScorerSource.
func (f ScorerSourceFunc) ScorerFor(user string) (BehaviourScorer, error) { return f(user) }

// Verdict is what was established about a session's behaviour.
type Verdict uint8

// Verdicts.
const (
	// VerdictGenuine: a security analyst confirmed the session's owner was present.
	VerdictGenuine Verdict = iota + 1
	// VerdictCompromised: a security analyst confirmed someone else used the session.
	VerdictCompromised
	// VerdictChallengePassed: the user passed a challenge; weaker evidence than an analyst's.
	VerdictChallengePassed
)

func (v Verdict) String() string {
	switch v {
	case VerdictGenuine:
		return "genuine"
	case VerdictCompromised:
		return "compromised"
	case VerdictChallengePassed:
		return "challenge_passed"
	}
	return "unknown"
}

// Feedback tells a scorer which stretch of a session a verdict covers.
type Feedback struct {
	User, Session string
	Verdict       Verdict
	// From and To bound the events the verdict covers: the session's first event and the time
	// the verdict was given.
	From, To time.Time
}
