// Package takeover measures how fast the session guard, scoring behaviour with the real
// models, notices that someone else has taken over a session, and how often it troubles the
// genuine user, on recorded input: typing laid out as the Aalto 136M Keystrokes data set (Run),
// or mouse movement laid out as the Balabit Mouse Dynamics Challenge data set (RunMouse). No
// data set has typing and mouse movement of the same people, so each replay has one modality.
//
// Typing: each participant enrols on their first windows of typing; the federation's population
// model and global autoencoder come from the participants' enrolments, built by models/eval
// exactly as the keystroke evaluation builds them. The participant's remaining typing is then
// replayed through a real guard.Guard, with context held constant and benign so that only
// behaviour moves trust: once as a genuine session, and several times with another
// participant's typing taking over midway. No keystroke replayed was used in any training.
//
// Mouse: each user's mouse model is fitted on their training sessions as the mouse evaluation
// fits it (eval.FitMouseModels); the legal test sessions are replayed as genuine sessions, and
// the illegal ones, other people on the user's account, take over midway through the owner's.
// Both replays share one path (a stream of recorded events fed to a guard of its own).
package takeover
