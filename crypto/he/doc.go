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
// Trustee: ParseSum(params, epoch, round, contributors, ciphertexts), then
// NewDecryptor(share).Share(sum, activeSet). Refusing repeated requests is the trustee
// service's job, because it must be persistent.
//
// # Parameters and security
//
// One parameter set (DefaultParams): ring degree N = 2^13 = 8192, one 60-bit prime modulus
// Q = 1152921504606830593 and no special modulus P (nothing is key-switched homomorphically;
// collective decryption needs none), so log2(QP) = 60. Secrets are uniform ternary (each
// trustee's; the collective secret is their sum, with larger coefficients, which only makes
// lattice attacks harder), errors are discrete Gaussian with sigma 3.2 cut at 6 sigma.
//
// Security estimate: the Homomorphic Encryption Standard (Albrecht et al., "Homomorphic
// Encryption Security Standard", HomomorphicEncryption.org, 2018, Table 1, uniform ternary
// secret, error sigma 3.2, figures from the LWE estimator) allows at most log2(q) = 218 for
// 128-bit, 152 for 192-bit and 118 for 256-bit classical security at n = 8192. Our
// log2(QP) = 60 is below even the 256-bit bound; we claim 128 bits. We did not run the lattice
// estimator ourselves.
//
// # Encoding
//
// Coefficient encoding, not slot encoding: parameter i of a chunk of N becomes coefficient i
// of the plaintext polynomial, as the integer round(v / C * 2^41) for the round's clip norm C.
// Summing needs only additions, under which coefficient encoding is exact integer arithmetic
// modulo Q; slot encoding would pack only N/2 real values per ciphertext (doubling the upload
// past the 2 MB target for 100,000 parameters), cost an FFT per ciphertext on the device and
// for decoding, and spread the RLWE noise through the canonical embedding.
//
// A 100,000-parameter update takes ceil(100000/8192) = 13 ciphertexts of 131,160 bytes
// (88-byte header, two polynomials of 8192 64-bit coefficients): 1,705,080 bytes, 4.3 times
// its float32 size.
//
// # Precision and overflow
//
// Overflow: each coordinate of an update must lie in [-16 C, 16 C] (Encrypt refuses other
// values) and a sum holds at most 10,000 updates (Accumulator refuses more), so the encoded
// sum is below 10,000 * 16 * 2^41 < 2^58.3 < Q/2 and decodes without wrapping.
//
// Error: the decrypted sum differs from the exact sum by the encoding rounding, the
// encryption noise of every update (u e_pk + e0 + e1 s with s the sum of n ternary keys) and
// the flooding noise of the t decryption shares; Params.ErrorBound gives 7 standard deviations
// of the total. For the largest sum the limits allow (10,000 updates, 16 trustees, t = 16) it
// is 6.0e-7 C, and for the demo (100 updates, 3 trustees, t = 2) 1.5e-7 C: inside the 1e-6 C
// target.
//
// # Flooding noise and repeated decryption
//
// Each trustee adds Gaussian noise of standard deviation 2^15 to its decryption share. With 3
// trustees that is about 2^5.8 times the noise of one fresh encryption (standard deviation 579,
// as TestEncryptorMatchesLattigo measures) and 2^2.5 times that of a sum of 100, not the
// 2^40 ratio a statistical noise-flooding proof wants: a 60-bit modulus cannot hold such noise
// next to 1e-6 C precision. What keeps the trustees' key shares safe from the
// coordinator is, in addition: (1) the decrypted value m + e is only ever available for sums,
// whose m contains the honest devices' Gaussian DP noise of standard deviation z C 2^41 per
// coordinate, which hides e (of order 2^15) completely, so the key-recovery attacks of Li and
// Micciancio (eprint 2020/1533), which need m, do not apply; and (2) no ciphertext is ever
// decrypted twice (Accumulator.Seal works once; trustees refuse a repeated round or sum
// fingerprint), so the flooding noise cannot be averaged away.
//
// The trustee checks cannot stop a coordinator that breaks the protocol (for example one that
// re-randomises a sum and presents it as a new round, or claims m_min contributors for a sum of
// one update): the coordinator is trusted to be honest but curious, as in the architecture's
// trust model.
package he
