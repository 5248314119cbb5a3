// Package behaviour connects Vigil's behavioural models (package models) to the session guard
// (package guard): it is where a user's models.UserModel becomes the guard.BehaviourScorer of
// the user's sessions.
//
// A Scorer turns each window of keystrokes the guard hands it into the timings of
// keystroke.TimingExtractor, scores them with the user's keystroke model (a calibrated anomaly,
// 0.5 at the user's own threshold) and passes on the features that deviated most, in plain
// words with their values and the user's usual values. It recalibrates the anomaly by the
// window's corrections (backspace, delete, arrow keys): a burst of them makes any typing unlike
// the owner's enrolment, the owner's own included, so a window with more than the typical share
// weighs less against the owner, one with fewer more. The live path allocates nothing. It keeps
// the last windows it scored, so that when a challenge is passed or an analyst confirms the
// owner, the model learns from the owner's windows of that session (models.UserModel.Feedback),
// and genuine drift stops raising alarms; a session found compromised is never learnt from.
//
// Enrolment cuts a user's first typing into the disjoint windows and overlapping summaries a
// user model learns from (KeystrokeEnrolment) and fits the model, with the federation's
// population model and global autoencoder when the device has them (FitKeystrokes). A Source
// keeps the scorers of many users and gives them to the guard (guard.Config.Scorers); a user
// enrolled after their first session, or whose model is refreshed, is picked up at once.
//
// Mouse windows are scored by the user's mouse model when the scorer has one (SetMouseModel):
// the window's events are cut into actions, each scored, and the window judged by the actions'
// mean score; the guard fuses mouse and typing opinions into one trust score. Without a mouse
// model ScoreMouse gives no opinion (guard.ErrNotScored).
package behaviour
