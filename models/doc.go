// Package models holds Vigil's behavioural models: what a user's typing and mouse movement look
// like, how far a window of live behaviour is from that, and how sure to be about it.
//
// A device learns a UserModel for its user from enrolment windows (FitUserModel). It combines
// three detectors into one calibrated anomaly score in [0, 1] per window, with the features that
// deviated most explained in plain words (UserModel.Score, which allocates nothing):
//
//   - a Profile: the user's expected value of every timing or feature bucket, learnt with the
//     federated Population model as prior and scored as a log-likelihood ratio against that
//     population (as a universal background model is used in speaker verification);
//   - a dense autoencoder over the user's normalised window summaries (z-score or median/IQR,
//     see Scaling), trained with Gorgonia from the federated global autoencoder and scored on a
//     fast path (Scorer) that computes exactly what the graph computes;
//   - an IsolationForest over the same summaries.
//
// Every user's decision threshold is placed from the user's own cross-validated enrolment scores
// (ThresholdConfig); UserModel.Feedback moves the baseline with windows known to be the user's.
//
// The federation learns the Population from sums of devices' sufficient statistics
// (Contribution, NewPopulation) and the global autoencoder by federated averaging of Train runs;
// both need only sums of per-device vectors, which is what secure aggregation provides.
//
// A model's autoencoder parameters travel as one flat []float64 (see Spec for the order), which
// is what devices fine-tune, what federated rounds average, and what releases sign. Training and
// scoring are deterministic given a seed.
//
// Feature extraction lives in the subpackages (keystroke, mouse), which describe their features
// to the detectors with a Layout; evaluation on recorded data lives in eval, metrics in metrics.
package models
