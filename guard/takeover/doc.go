// Package takeover measures how fast the session guard, scoring typing with the real
// behavioural models, notices that someone else has taken over a session, and how often it
// troubles the genuine user, on recorded keystrokes laid out as the Aalto 136M Keystrokes data
// set (see Run for the protocol).
//
// Each participant enrols on their first windows of typing; the federation's population model
// and global autoencoder come from the participants' enrolments, built by models/eval exactly as
// the keystroke evaluation builds them. The participant's remaining typing is then replayed
// through a real guard.Guard, with context held constant and benign so that only behaviour
// moves trust: once as a genuine session, and several times with another participant's typing
// taking over midway. No keystroke replayed was used in any training.
package takeover
