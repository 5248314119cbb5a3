// Package guard is Vigil's session guard: it keeps a trust score from 0 to 100 for every live
// session from the user's behaviour and context, responds in tiers, and answers Authorize before
// each privileged action.
//
// Events come in on the scoring path: keystrokes and mouse events, which the user's
// BehaviourScorer turns into calibrated anomaly scores window by window (package
// guard/behaviour gives the scorer of Vigil's per-user models; scores computed elsewhere come
// in through ObserveBehaviour), and context events, to which four rules apply:
// impossible travel (great-circle distance beyond both locations' uncertainty, over the time
// elapsed, against a plausible top speed), a device fingerprint or network never seen with the
// user, and an hour of the week at which the user is rarely active (learned per user and
// smoothed, so daily and weekly rhythms are respected and a new user is not flagged at all).
//
// Trust is slow to earn and instant to lose: consistent behaviour earns a little per window and
// per minute, a strongly deviating window or context signal takes its loss at once, and several
// take a session to zero. Context signals also sharpen the behavioural evidence that follows.
// Falling trust moves the session through four tiers: passive monitoring, a soft challenge, a
// hard challenge, termination. A passed challenge restores trust; a failed or unanswered one
// escalates; a terminated session stays revoked. Analysts' verdicts and passed challenges teach
// the user's baseline (new device, network, place, hours; the scorer is told too), so genuine
// drift stops raising alarms, and a session found compromised is removed from it.
//
// Authorize reads the status the scoring path last published (an immutable value behind an
// atomic pointer) and the policy, never waits for scoring, never allocates, and fails closed.
// Every decision carries its reasons in plain words, and every decision and change of standing
// goes to a Recorder; AuditQueue feeds the hash-chained, signed log of package audit without ever
// blocking Authorize.
//
// The trust state machine is pure: it reads no clock and starts no goroutines, so a recorded
// stream of events replays to the same decisions (set Config.Clock for replays). The only loops,
// AuditQueue.Run and calling Tick, belong to the application.
package guard
