// Package trustee runs one trustee of Vigil's threshold decryption as a gRPC service
// (vigilv1.TrusteeServer), and gives the coordinator a Client that decrypts a sealed sum with
// any t of the n trustees.
//
// A trustee holds one share of the collective secret key (crypto/he), in a file only it may
// read, and answers DecryptionShare requests under a policy that never lets one ciphertext
// be decrypted twice: rounds only in increasing order, each round once, each sum (by
// fingerprint) once, and never a sum of fewer than m_min updates. Every decision is saved to
// the trustee's journal before the share leaves, so a restart changes nothing; a byte-identical
// retry of the last request is answered from the journal, so a lost reply costs no second
// decryption.
//
// What the trustee cannot check: it sees no devices, so it believes the coordinator's count of
// contributors and trusts it not to present a re-randomised sum as a new round. Under the
// architecture's trust model (an honest-but-curious coordinator) that is enough; against a
// malicious coordinator it is not, and device-signed receipts would be needed. A trustee must
// only answer its coordinator: deploy it behind mutual TLS (vigil trustee serve refuses a
// non-loopback address without it).
package trustee
