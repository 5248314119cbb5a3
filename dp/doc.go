// Package dp is Vigil's differential-privacy library: clipping and
// calibrated noise on the device, an exact Rényi-DP accountant, persisted
// privacy ledgers with budgets, and the planning tools behind
// `vigil privacy`. This comment is written for privacy reviewers.
//
// # What is protected: user-level DP
//
// The unit of privacy is a user, not an example. Each user has one device,
// and a device's whole contribution to a round (the difference between the
// model it fine-tuned on its user's recent behaviour and the global model)
// is one record. Two federations are neighbours when one has an extra user
// (add-or-remove-one). A guarantee of (epsilon, delta) means: for any user,
// and any set S of possible published model sequences, the probability that
// the federation publishes something in S with that user is at most
// e^epsilon times the probability without that user, plus delta. Delta
// should be well below 1/population; epsilon is the number reviewers cap.
//
// # The mechanism: DP-FedAvg with distributed noise
//
//  1. Sampling. Each round the coordinator invites devices so that every
//     enrolled device takes part independently with probability
//     q = K/N (K expected participants per round, N enrolled devices;
//     UserLevelSamplingRate). The accountant assumes this Poisson sampling.
//  2. Clipping. Each device scales its update to L2 norm at most C
//     (ClipL2), so one user moves the sum by at most C.
//  3. Distributed noise. Each device adds Gaussian noise of standard
//     deviation z·C/sqrt(m_min) to every coordinate (DeviceNoiseStd,
//     Noiser). The coordinator decrypts only the homomorphic sum of at
//     least m_min contributions, so as long as m_min devices are honest the
//     sum carries noise of standard deviation at least z·C: exactly the
//     Gaussian mechanism with noise multiplier z. The coordinator never sees
//     a single device's update in the clear.
//  4. Fixed denominator. The coordinator divides the noised sum by the
//     expected number of participants K, never by the observed count
//     (FixedDenominatorMean), so the sensitivity of the average is C/K
//     whatever the sample turned out to be.
//  5. Accounting. One round is one step of the Poisson-subsampled Gaussian
//     mechanism with (q, z). The accountant (Epsilon, Accountant, RDP)
//     computes its Rényi DP exactly (Mironov, Talwar, Zhang 2019) at a list
//     of orders, composes rounds by adding RDP, and converts to (epsilon,
//     delta). Defaults follow Google's dp_accounting: its 156 default
//     orders, its conservative series at fractional orders, and the
//     improved conversion of Balle et al. 2020. The signed series of
//     Opacus / TF-Privacy, the classic conversion of Mironov 2017 and the
//     other libraries' order lists are available for comparison.
//  6. Budgets. A Ledger per model (coordinator) and per device records each
//     charged round on disk. The coordinator refuses to start a round that
//     would push the model past its epsilon budget; a device refuses to take
//     part once its own budget is spent (Ledger.Check, Ledger.Charge, both
//     failing with ErrBudgetExhausted and the numbers). The model ledger
//     charges every round with q = K/N; a device ledger charges only the
//     rounds it contributes to, but with q = 1 (no amplification): a bound
//     on what its updates' contents reveal that holds even if who took part
//     becomes known. The epsilon
//     spent so far goes into every release manifest (Ledger.Spent).
//
// Reviewers check a configuration with `vigil privacy epsilon` and `plan`,
// look at `curve` plots, and audit a ledger with `vigil privacy ledger`.
//
// # Numerics of the accountant
//
// All series are summed in log space. log(erfc(x)) uses math.Erfc up to
// x = 25 and the asymptotic series of erfc beyond, where erfc underflows.
// Binomial coefficients come from log-gamma. At fractional orders the
// conservative series sums absolute values of the terms (an upper bound)
// and excludes an order that has not converged after 1000 terms; orders
// whose RDP overflows or fails are excluded, never silently used. If no
// order is left, the answer is ErrNoFiniteEpsilon, not +Inf.
//
// # Floating-point noise and its known attacks
//
// Naive floating-point Gaussian or Laplace sampling leaks: the set of
// floating-point values x + noise can take depends on x, so the low bits of
// a release can reveal the input (Mironov 2012, "On significance of the
// least significant bits for differential privacy"), and rejection samplers
// whose running time depends on the sample leak through timing (Jin,
// McMurtry, Rubinstein, Ohrimenko 2022, "Are we there yet? Timing and
// floating-point attacks on differential privacy systems"). Noiser defends
// as follows:
//
//   - Fixed grid. The noise is an exact discrete Gaussian N_Z(0, S) times a
//     power-of-two grid spacing g with sigma/2^15 <= g < sigma/2^14, drawn
//     with the integer-only algorithms of Canonne, Kamath, Steinke 2020
//     ("The Discrete Gaussian for Differential Privacy") from a
//     cryptographically secure source (crypto/rand by default). Before the
//     noise is added, each coordinate is rounded toward zero to the same
//     grid. The output is (k + Y)·g with integers k and Y: it lies on a grid
//     that does not depend on the input, so its low bits carry nothing but
//     noise. Rounding toward zero never increases a magnitude, so the L2
//     bound C survives it exactly.
//   - Exact sensitivity. ClipL2 guarantees the exact real-number norm is at
//     most C (it shrinks by a relative 2^-40 margin that dominates
//     floating-point error), so the integer vector k has L2 norm at most
//     C/g, and Y has variance S >= (sigma/g)^2: never less noise than asked.
//   - Why the Gaussian accounting applies. The discrete Gaussian has the
//     same RDP curve as the continuous one for integer-valued queries
//     (CKS20), and the sum of m independent N_Z(0, S) is within
//     Rényi divergence 10·sum_{k<m} exp(-2π²S·k/(k+1)) of N_Z(0, mS)
//     (Kairouz, Liu, Steinke 2021, "The Distributed Discrete Gaussian
//     Mechanism"); with S >= 2^28 that term is below exp(-10^9). At a grid
//     step of 2^-14 noise standard deviations, the subsampled-Gaussian
//     integral behind the accountant and its lattice sum agree to within
//     the same kind of negligible term. We treat the aggregate noise as the
//     continuous Gaussian of the same variance; reviewers should read this
//     as an argument, not a machine-checked proof.
//   - Timing. The sampler's running time depends on the noise values, not on
//     the data: rounding and adding run in data-independent time. A device
//     noises its whole update (about 10^5 coordinates) in one batch before
//     encrypting it, so an observer of the device's timing learns at most one
//     aggregate of 10^5 independent noise values, and the update leaves the
//     device only encrypted. The library does not pad its running time.
//
// What this does not cover: CKKS (approximate homomorphic encryption) adds
// its own small errors during aggregation and decryption; the grid defence
// applies to what a device emits, and the decrypted sum is a
// post-processing of grid values plus CKKS error.
//
// # Package shape
//
// The accountant is pure computation. The ledger does file I/O only in
// OpenLedger, Charge and ReadLedger. Nothing logs. Sizes and iteration caps
// live in limits.go. Types are not safe for concurrent use unless stated.
package dp
