// Package dp is Vigil's differential-privacy library: clipping and
// calibrated noise on the device, an exact Rényi-DP accountant, persisted
// privacy ledgers with budgets, and the planning tools behind
// `vigil privacy`. This comment is written for privacy reviewers.
//
// # What is protected: user-level DP, zero-out adjacency
//
// The unit of privacy is a user, not an example. Each user has one device,
// and a device's whole contribution to a round (the difference between the
// model it fine-tuned on its user's recent behaviour and the global model)
// is one record. Two federations are neighbours when they differ in one
// user's data: in one of them that user's device contributes, in every
// round, the zero update instead of its own (zero-out adjacency, Kairouz et
// al. 2021). The device is still enrolled, still sampled, still adds its
// noise and is still counted. A guarantee of (epsilon, delta) means: for
// any user and any set S of possible published outcomes (model sequences,
// and also who took part in which round), the probability of S with the
// user's real data is at most e^epsilon times the probability with the
// zero update, plus delta. Delta should be well below 1/population (`vigil
// privacy report` warns otherwise); epsilon is the number reviewers cap.
//
// Zero-out, not add-or-remove, because the mechanism below cannot hide
// whether a user took part: the coordinator sees who sends an update, and
// the noise of a sum grows with the number of honest devices in it, which
// a released model of 10^5 parameters reveals to within a fraction of a
// percent. Under add-or-remove adjacency one user's presence would change
// both the participant count and the noise variance, and the
// subsampled-Gaussian analysis would not apply. Under zero-out both are
// identical in neighbouring federations, so the count may be known.
//
// # The mechanism: DP-FedAvg with distributed noise
//
//  1. Sampling. Each round the coordinator invites devices so that every
//     enrolled device is drawn independently with probability K/N (K
//     expected participants per round, N enrolled devices), drawing again
//     when fewer than m_min are drawn; q is a device's chance of being in a
//     kept draw (InclusionRate, at least K/N). Rounds are never closed
//     early on a count of answers (the coordinator refuses TargetUpdates
//     with DP).
//  2. Clipping. Each device scales its update to L2 norm at most C
//     (ClipL2), so replacing one user's update by zero moves the sum by at
//     most C.
//  3. Distributed noise. Each device adds Gaussian noise of standard
//     deviation z·C/sqrt(m_min - t_dev) to every coordinate
//     (DeviceNoiseStd, Noiser). The trustees decrypt only a homomorphic sum
//     of at least m_min contributions; at most t_dev of them are assumed
//     malicious (they may omit or subtract their own noise), so the sum
//     holds at least m_min - t_dev honest shares: noise of standard
//     deviation at least z·C. The coordinator never sees a single device's
//     update in the clear.
//  4. Fixed denominator. The coordinator divides the noised sum by the
//     expected number of participants K, never by the observed count
//     (FixedDenominatorMean): post-processing with a public constant.
//  5. Accounting. One round is one step of KnownParticipation with (q, z).
//     The argument: fix everything but one user u's data. The published
//     outcome of a round is (P, Y), P the set of participants and Y the
//     decrypted sum. P has the same law in both neighbours (sampling,
//     answering and counting do not look at the data: a device with no
//     rows sends the zero update with its noise, not nothing). Whether a
//     sampled device answers in time still depends on things outside the
//     data the rounds train on, which this argument does not cover: the
//     agent asks for tasks only while its users are away from the keyboard
//     and some user is enrolled, so the coordinator, which sees each
//     device's requests, learns when a device is idle whatever the rounds
//     do. Given P without u,
//     Y has the same law in both. Given P with u, Y = A + x_u + G in one
//     and A + G in the other, where A (the other honest updates and
//     whatever the at most t_dev malicious devices send, none of which
//     sees x_u) and G (all honest noise, variance at least (z·C)² per
//     coordinate, independent of A and of x_u) have the same law in both;
//     ||x_u|| <= C. The Rényi divergence of order α of that pair is at most
//     α/(2z²): the Gaussian mechanism with sensitivity C and noise z·C,
//     maximised over A by convexity, with noise beyond z·C only lowering
//     it (a larger-variance Gaussian is a post-processing of a smaller
//     one: add independent noise). Hence for the round
//     exp((α-1)·D_α) = 1 - q + q·exp((α-1)·α/(2z²)), which is what RDP
//     computes for KnownParticipation. A round that fails for too few
//     answers releases nothing but is charged all the same: whether it
//     fails depends on P, and charging only the released rounds at q would
//     undercount a device that answers more reliably than the others (it
//     is in more of the released rounds than q says). Each round that asks
//     devices is one mechanism whose u is in P with probability at most q,
//     released or not; so is a round the operator aborts, who can see who
//     answered. Rounds that fail whoever answered (the trustees cannot
//     open the sum, the tier cannot take the round) are not charged, nor
//     are failed rounds at q = 1: their released rounds are charged with u
//     in P, which no choice of the rounds that fail can exceed. Rounds
//     compose adaptively by adding RDP; the total converts to (epsilon,
//     delta) as below. What this does
//     not claim: amplification by hidden sampling (PoissonHidden, the
//     Mironov-Talwar-Zhang analysis); it would need the participants and
//     the noise variance to be secret, and neither is.
//     TestPrivacyMechanismMatchesAnalysis integrates the mechanism's
//     actual output law and fails if calibration and analysis drift apart.
//  6. Budgets. A Ledger per model (coordinator) and per device records each
//     charged round on disk, with the round's C, m_min, t_dev, participant
//     count, time and the released model's SHA-256, under an HMAC whose
//     key lives beside it. The coordinator refuses to start a round that
//     would push the model past its epsilon budget, and refuses to start
//     at all if the ledger is missing, behind the model store or replaced;
//     a device refuses to take part once its own budget is spent
//     (Ledger.Check, Ledger.Charge, failing with ErrBudgetExhausted and the
//     numbers). A device ledger charges each round it contributes to with
//     q = 1. The epsilon spent so far goes into every release.
//  7. Rounds without differential privacy (an explicit InsecureNoDP at the
//     coordinator) are recorded as such in the ledger and in every release;
//     after one, no round of that model is ever charged as private again
//     (ErrNotPrivate): its loss is unbounded.
//
// Reviewers check a configuration with `vigil privacy epsilon` and `plan`,
// look at `curve` plots, audit a ledger with `vigil privacy ledger`, and
// sign off a coordinator's models with `vigil privacy report`.
//
// The accountant itself (RDP of PoissonHidden) follows Google's
// dp_accounting: its 156 default orders, its conservative series at
// fractional orders, and the improved conversion of Balle et al. 2020. The
// signed series of Opacus / TF-Privacy, the classic conversion of Mironov
// 2017 and the other libraries' order lists are available for comparison.
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
// OpenLedger, Charge, ChargeRound, RecordRelease and ReadLedger. Nothing
// logs. Sizes and iteration caps live in limits.go. Types are not safe for
// concurrent use unless stated.
package dp
