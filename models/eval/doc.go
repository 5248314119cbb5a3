// Package eval measures the behavioural models on recorded data that nobody on the project
// collected, with protocols fixed in code so that a run can be repeated exactly from its seed:
//
//   - Keystrokes (Aalto 136M Keystrokes layout): windows of L keystrokes, each user enrolled on
//     their first G windows, genuine trials the user's other windows, impostor trials every other
//     participant's test windows; mean per-user and pooled EER, with the federated population
//     model and global autoencoder and without them.
//   - Mouse (Balabit layout): per user, learn from the user's training sessions only; score
//     every labelled test session; AUC over all sessions and per-user EER.
//
// The federation is simulated in process and in plaintext: the population model is the exact
// sum of devices' statistics, the global autoencoder is trained by FedAvg over devices' own
// enrolment data. No window used in any training is a test trial.
//
// Development settings were tuned on the first 100 Aalto participants (file name order) and on
// the mouse development protocol (held-out training sessions), never on the reported data.
package eval
