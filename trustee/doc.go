// Package trustee runs one trustee of Vigil's threshold decryption as a gRPC service
// (vigilv1.TrusteeServer), and gives the coordinator a Client that has a closed round's sum
// decrypted by the trustees.
//
// A trustee holds one share of the collective secret key (crypto/he), in a file only it may
// read. It does not decrypt what the coordinator sends it. For each round:
//
//  1. CommitSum: the coordinator streams the round's contributions, one per accepted device
//     update: the device's record, its id, nonce, base version, signature, the digests of each
//     ciphertext's header and c0, and the c1 polynomials. The trustee checks the header (its
//     key epoch and parameters, at least m_min contributors announced, a round not before the
//     last one it decrypted), and for every contribution: the record verifies under the pinned
//     root's enrolment role and names that device; no device twice; the device's ML-DSA-65
//     signature verifies over the update statement it recomputes (crypto/he.UpdateStatement:
//     key epoch, round, device, nonce, base version, every byte of every ciphertext); every
//     c1 residue is reduced. It adds the c1 polynomials into its own sum. At the end it checks
//     the count, names the participant set by a digest of the sorted (device, statement)
//     pairs, saves "round r is committed to set D" with the c1 sum in its journal (fsync), and
//     only then answers with its signed SumCommitment. It commits to at most one set per round;
//     the same set again is answered with the same commitment.
//
//     Aggregation frontends may stream some of the round's contributions beforehand, each the
//     updates it took (CommitPart): the trustee checks them exactly as above, keeps only their
//     c1 sum and (device, statement) pairs in memory (parts.go), and answers with the part's
//     id. A CommitSum header then names parts, which count as if their contributions had been
//     streamed in it: each of their devices is admitted like a streamed one, so none counts
//     twice, and the commitment names the whole set.
//
//  2. DecryptionShare: given the set, the active trustees and signed commitments to the same
//     (round, epoch, set, count, c1 digest) from at least Quorum(n, t) distinct trustee keys of
//     the root, its own among them, the trustee shares the decryption of its own c1 sum, once
//     per round, rounds strictly increasing, and saves the decision before the share leaves;
//     a byte-identical retry gets the saved answer.
//
// So the coordinator cannot make a trustee decrypt anything but a sum of at least m_min
// distinct enrolled devices' signed updates of that round (it holds neither the enrolment
// role nor the devices' keys), cannot have a round decrypted twice or a decrypted set
// re-presented under another round (signatures bind the round), and cannot have two honest
// trustees decrypt two different sets of one round, whose difference would reveal an update
// (see Quorum). The journal must never be lost: a trustee refuses to start if it has served
// before and its journal is missing (FileJournal.Marker). A trustee must only answer its
// coordinator: deploy it behind mutual TLS (vigil trustee serve refuses a non-loopback address
// without it).
package trustee
