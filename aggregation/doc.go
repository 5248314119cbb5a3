// Package aggregation adds devices' model updates and turns their sum into the next global
// model: a running sum whose memory does not grow with the number of devices, the quorum rule
// that decides when a round may close, and the server optimiser that applies the average.
//
// Devices contribute with equal weight, as DP-FedAvg requires: weighting by example counts would
// let one device's influence (and its privacy loss) grow with its data, and would put those
// counts in the clear next to encrypted updates. The average divides by a denominator the caller
// chooses: the observed count when updates are in the clear and unnoised, the fixed expected
// count under differential privacy.
package aggregation
