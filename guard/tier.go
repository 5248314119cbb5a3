package guard

import "time"

// Tier is how strongly the guard responds to a session.
type Tier uint8

// Tiers, in rising order of response.
const (
	TierNone      Tier = iota // no session: Authorize of an unknown session
	TierMonitor               // passive monitoring
	TierSoft                  // a soft challenge is open (e.g. confirm on a known device)
	TierHard                  // a hard challenge is open (e.g. full re-authentication)
	TierTerminate             // the session is revoked
)

var tierNames = [...]string{"none", "monitor", "soft_challenge", "hard_challenge", "terminate"}

// String returns the tier's stable name, as the audit log records it.
func (t Tier) String() string {
	if int(t) < len(tierNames) {
		return tierNames[t]
	}
	return "unknown"
}

// Challenge is a step-up the application must put to the user. Answer it with
// Guard.AnswerChallenge, quoting ID.
type Challenge struct {
	ID       uint64 // unique within the session; 0 means none
	Tier     Tier   // TierSoft or TierHard
	Issued   time.Time
	Deadline time.Time // unanswered by then, it counts as failed
}

// Open reports whether c is a challenge (rather than the zero value).
func (c Challenge) Open() bool { return c.ID != 0 }

// Status is a session's standing, published by the scoring path after every change. A Status
// and its Reasons are never modified after publication; share them freely.
type Status struct {
	Session, User string
	Trust         float64 // 0..100, rounded to hundredths
	Tier          Tier
	Revoked       bool
	Challenge     Challenge // the open challenge, if any
	Reasons       []Reason  // top signals behind Trust, strongest first
	Updated       time.Time // time of the event that produced this status
}

// TransitionKind names a change in a session's standing.
type TransitionKind uint8

// Transition kinds.
const (
	TransitionOpened TransitionKind = iota + 1
	TransitionChallengeIssued
	TransitionChallengePassed
	TransitionChallengeFailed
	TransitionChallengeExpired
	TransitionRevoked
	TransitionFeedbackGenuine
	TransitionFeedbackCompromised
	TransitionClosed
	TransitionRestored // a session taken back after a restart of its process (RestoreSession)
)

var transitionNames = [...]string{
	TransitionOpened:              "opened",
	TransitionChallengeIssued:     "challenge_issued",
	TransitionChallengePassed:     "challenge_passed",
	TransitionChallengeFailed:     "challenge_failed",
	TransitionChallengeExpired:    "challenge_expired",
	TransitionRevoked:             "revoked",
	TransitionFeedbackGenuine:     "feedback_genuine",
	TransitionFeedbackCompromised: "feedback_compromised",
	TransitionClosed:              "closed",
	TransitionRestored:            "restored",
}

// String returns the kind's stable name, as the audit log records it.
func (k TransitionKind) String() string {
	if int(k) < len(transitionNames) && transitionNames[k] != "" {
		return transitionNames[k]
	}
	return "unknown"
}

// Transition is a change in a session's standing, handed to the Recorder.
type Transition struct {
	Kind          TransitionKind
	Session, User string
	At            time.Time
	From, To      Tier
	Trust         float64
	Challenge     uint64   // the challenge concerned, if any
	Reasons       []Reason // top signals at the time
}
