// Package models holds Vigil's behavioural models: dense autoencoders that learn what one user's
// (or the population's) behaviour looks like, trained with Gorgonia, and a fast scoring path over
// the same parameters for the live session.
//
// A model's parameters travel as one flat []float64 (see Spec for the order), which is what
// devices fine-tune, what federated rounds average, and what releases sign. Training and
// scoring are deterministic given a seed.
//
// Feature extraction lives in the subpackages (keystroke, ...); this package sees only
// fixed-length feature vectors.
package models
