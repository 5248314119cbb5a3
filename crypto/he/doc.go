// Package he is Vigil's threshold homomorphic encryption: devices encrypt their model updates
// under a collective CKKS public key, the coordinator adds the ciphertexts without seeing any
// update, and any t of the n trustees decrypt the sum, and only the sum. It is built on lattigo
// v5's multiparty package (mhe) and mirrors its protocol verbs; it does no networking, no
// logging and no file I/O (the trustee package and the binary do those).
//
// # Roles and API
//
// Key ceremony (once per key epoch, see ceremony.go): NewIdentity, NewRoster, Deal, Finish, or
// LocalCeremony on one host. It yields a KeyEpoch (public; the coordinator signs its
// MarshalBinary under the root of trust) and one SecretShare per trustee.
//
// Device: NewEncryptor(key) then Encrypt(update, clipNorm, UpdateBinding(epoch, round, device,
// nonce)) gives the ciphertexts to send.
//
// Coordinator: NewAccumulator(params, epoch, dim), Add(ciphertexts, UpdateBinding(...)) per
// device, Seal(round) at the deadline, then the trustees' shares go to Combine(key, sum,
// shares, clipNorm), which returns the sum of the updates.
//
// Trustee: NewC1Sum(params, epoch, dim), then Add(c1) for each device update whose signature
// it has checked over UpdateStatement (UpdateParts gives what the device signed), then
// NewDecryptor(share).ShareC1(c1Sum, round, activeSet): the trustee decrypts only a sum it
// added up itself (verify.go). The coordinator checks Sum.C1Digest against the trustees'
// commitments before Combine. Refusing repeated requests is the trustee service's job,
// because it must be persistent.
//
// # Parameters and security
//
// One parameter set (DefaultParams): ring degree N = 2^13 = 8192 and ciphertext modulus
// Q = q0 q1, the product of the two 60-bit NTT-friendly primes q0 = 1152921504606830593 and
// q1 = 1152921504606748673 (the first two that lattigo's generator finds for 2N = 16384), held
// in RNS form (every polynomial as its residues modulo q0 and q1; see rns.go). There is no
// special modulus P (nothing is key-switched homomorphically; collective decryption needs
// none), so log2(QP) = 120. Secrets are uniform ternary (each trustee's; the collective secret
// is their sum, with larger coefficients, which only makes lattice attacks harder), errors are
// discrete Gaussian with sigma 3.2 cut at 19.2, so every error coefficient is an integer of
// absolute value at most 19.
//
// Security estimate: the Homomorphic Encryption Standard (Albrecht et al., "Homomorphic
// Encryption Security Standard", HomomorphicEncryption.org, 2018, Table 1, uniform ternary
// secret, error sigma 3.2, figures from the LWE estimator) allows at most log2(q) = 218 for
// 128-bit, 152 for 192-bit and 118 for 256-bit classical security at n = 8192. Our
// log2(QP) = 120 is below the 192-bit bound (and two bits above the 256-bit one); we claim 128
// bits. The flooding noise below is added to decryption shares, not to the RLWE samples, and
// does not change this estimate. We did not run the lattice estimator ourselves.
//
// # Encoding
//
// Coefficient encoding, not slot encoding: parameter i of a chunk of N becomes coefficient i
// of the plaintext polynomial, as the integer round(v / C * 2^100) for the round's clip norm
// C, reduced modulo q0 and q1. Summing needs only additions, under which coefficient encoding
// is exact integer arithmetic modulo Q; slot encoding would pack only N/2 real values per
// ciphertext (doubling the upload), cost an FFT per ciphertext on the device and for decoding,
// and spread the RLWE noise through the canonical embedding. Combine recovers each signed
// coefficient of the decrypted sum from its two residues by the CRT (in [-(Q-1)/2, (Q-1)/2],
// 128-bit arithmetic with math/bits).
//
// A 100,000-parameter update takes ceil(100000/8192) = 13 ciphertexts of 262,232 bytes
// (88-byte header, two polynomials of 2 x 8192 64-bit residues): 3,409,016 bytes, 8.5 times
// its float32 size. The second modulus doubles it (with one modulus it was 1,705,080 bytes);
// it is the price of the flooding noise below.
//
// # Flooding noise: decryption shares reveal only the sum
//
// Claim: whatever the DP settings, the decryption shares of a sum can be simulated from the
// decrypted sum alone, to statistical distance at most 2^-40.46 per coefficient (2^-27.5 per
// ciphertext, 2^-23.8 for a 100,000-parameter sum, 2^-20.5 for the largest sum the limits
// allow, by the union bound over coefficients; distances add up over decryptions).
//
// Noise bound B. A fresh update carries encryption noise u e_pk + e0 + e1 s, where u is
// ternary, e_pk is the sum of the n trustees' key-generation errors, s the sum of their n
// ternary secrets, e0 and e1 errors. Every coefficient is bounded whatever the randomness:
// |u e_pk| <= 19 n N, |e1 s| <= 19 n N, |e0| <= 19. A sum of at most MaxContributors = 10,000
// updates with n <= MaxTrustees = 16 therefore has noise of absolute value at most
// B = 10,000 (38 * 16 * 8192 + 19) = 49,807,550,000 < 2^35.54 in every coefficient. No tail
// probability enters: all distributions are bounded.
//
// Flooding. Each trustee adds to every coefficient of its decryption share an integer drawn
// uniformly from the M = 2^76 - 1 integers of [-(2^75 - 1), 2^75 - 1], exactly, from
// crypto/rand (flooding.go; lattigo's Gaussian sampler only approximates such widths). Smudging
// lemma (Asharov, Jain, López-Alt, Tromer, Vaikuntanathan, Wichs, "Multiparty Computation with
// Low Communication, Computation and Interaction via Threshold FHE", Eurocrypt 2012,
// Lemma 2.1), in its exact form: for a fixed integer e with |e| <= B and U uniform on M
// consecutive integers, the statistical distance between U and e + U is |e| / M <= B / M, here
// below 2^35.54 / (2^76 - 1) < 2^-40.46.
//
// Simulation. At most t-1 trustees are corrupt, so every active set holds an honest trustee.
// The corrupt trustees' shares are theirs to compute; the honest ones' must add up to
// m + e - c0 - (corrupt shares) plus their flooding, with e the encryption noise. A simulator
// that knows only the sum m (and the public ciphertext) outputs additive shares of
// m + E - c0 - (corrupt shares) with fresh flooding E: the two views differ only by e + E
// against E in one honest trustee's flooding, hence the distance above. This is the standard
// noise-flooding argument for threshold decryption (Asharov et al., ibid., Section 4; Mouchet,
// Troncoso-Pastoriza, Bossuat, Hubaux, "Multiparty Homomorphic Encryption from Ring-Learning-
// with-Errors", PETS 2021), and it covers the key-recovery attacks on approximate decryption of
// Li and Micciancio (eprint 2020/1533), which read e from m + e: e is now statistically hidden.
//
// What the claim assumes: every ciphertext in the sum was encrypted honestly, so that its noise
// is within B (the package does not prove well-formedness of device ciphertexts, and a device
// colluding with the coordinator that encrypts with larger noise is outside the claim), the
// key ceremony's errors were sampled honestly (passive trustees), and a sum is decrypted once
// (trustees decrypt each round once, and only their own sum of updates signed for that round),
// so that the per-decryption distance is not multiplied by repeated requests. The DP noise in the sum
// is no longer needed to protect the trustees' key shares; it protects the devices' updates
// in the decrypted sum, as before.
//
// # Precision and overflow
//
// Overflow: each coordinate of an update must lie in [-16 C, 16 C] (Encrypt refuses other
// values) and a sum holds at most 10,000 updates (Accumulator refuses more), so the encoded
// sum is at most 10,000 * 16 * 2^100 < 2^117.3 in absolute value, and its noise at most
// B + 16 (2^75 - 1 + 19) < 2^79.1 (encryption noise, flooding and lattigo's own key-switch
// error of 16 trustees): the total stays below (Q-1)/2 > 2^118.99 and decodes without wrapping,
// whatever the randomness.
//
// Error: the decrypted sum differs from the exact sum by the encoding rounding, the
// encryption noise of every update and the noise of the t decryption shares, which the
// flooding dominates: at most t 2^-25 C (t floodings of at most 2^75 / 2^100 C), plus less
// than 2^-64 C for the rest, whatever the randomness.
// Params.ErrorBound gives 7 standard deviations of the total: for the largest sum the limits
// allow (10,000 updates, 16 trustees, t = 16) it is 4.8e-7 C, and for the demo (100 updates, 3
// trustees, t = 2) 1.7e-7 C: inside the 1e-6 C target. TestSumPrecision measures 6.0e-8 C (t = 2,
// 100,000 parameters), the largest value two uniform floodings reach.
//
// The coordinator is not trusted to follow the protocol for any of this: a decryption share
// depends only on c1, and trustees share only the sum of c1 polynomials they added up
// themselves from updates signed for that round by at least m_min distinct devices whose
// records the enrolment authority signed (package trustee). The coordinator cannot express a
// crafted "sum" such as c1 = 2^k, present one update as a sum, re-present a decrypted sum with
// an encryption of zero added or under another round, or invent devices.
package he
