package trustee

import (
	"bytes"
	"errors"
	"fmt"
)

// Refusals a trustee gives; the server maps them to gRPC status codes (see status.go).
var (
	// ErrRoundDone: the round is at or below the last round this trustee decrypted or
	// committed to, and the request is not an identical retry.
	ErrRoundDone = errors.New("trustee: round already decrypted")
	// ErrOtherSet: this trustee committed to another participant set for the round; it
	// commits to one set per round and decrypts only that one.
	ErrOtherSet = errors.New("trustee: committed to another participant set for this round")
	// ErrNotCommitted: a decryption request for a round or set this trustee has not committed
	// to (CommitSum comes first).
	ErrNotCommitted = errors.New("trustee: no commitment to this participant set")
	// ErrTooFewContributors: the set has fewer updates than the trustee's m_min.
	ErrTooFewContributors = errors.New("trustee: too few contributors")
	// ErrContribution: a contribution that does not verify: unknown or repeated device, a
	// device record not signed by the enrolment role, a bad update signature, malformed c1.
	ErrContribution = errors.New("trustee: contribution refused")
	// ErrHeader: a sum's header that no set of contributions could satisfy (no header, round
	// 0, a dimension or a count of contributors out of range), refused before any is read.
	ErrHeader = errors.New("trustee: malformed sum header")
	// ErrKeyMismatch: the request names another parameter set or key epoch than the share.
	ErrKeyMismatch = errors.New("trustee: not this trustee's key")
)

// commitDecision is the trustee's policy for a verified participant set of round with digest
// set: it returns the saved commitment for a repeat of the one it made (so that a lost reply
// costs nothing), nil to go ahead and commit, or a refusal. A trustee commits to at most one
// set per round, to rounds in increasing order, and never to a round it already decrypted.
func commitDecision(st *State, round uint64, set [32]byte) (saved []byte, err error) {
	c := st.Committed
	if c.Round == round && c.Round != 0 {
		if c.SetDigest == set {
			return c.Commitment, nil
		}
		return nil, fmt.Errorf("%w: round %d is committed to set %x, this is set %x", ErrOtherSet, round, c.SetDigest[:8], set[:8])
	}
	if round <= st.LastRound {
		return nil, fmt.Errorf("%w: round %d is not after round %d, the last one this trustee decrypted", ErrRoundDone, round, st.LastRound)
	}
	if round < c.Round {
		return nil, fmt.Errorf("%w: round %d is before round %d, which this trustee has committed to", ErrRoundDone, round, c.Round)
	}
	return nil, nil
}

// decrypt is what the guard needs to know about a decryption request.
type decrypt struct {
	round        uint64
	set          []byte
	contributors uint32
	digest       [32]byte // of the whole request, for recognising identical retries
}

// decide is the trustee's decryption policy, a pure function of its persisted state: the
// saved answer for an identical retry of the last request, nil to go ahead, or a refusal. A
// trustee decrypts each round at most once, rounds only in increasing order, and only the set
// it committed to for the round. The quorum of commitments is checked by the caller.
func decide(st *State, req decrypt) (cached [][]byte, err error) {
	if st.Response != nil && req.round == st.LastRound && req.digest == st.Request {
		return st.Response, nil
	}
	if req.round <= st.LastRound {
		return nil, fmt.Errorf("%w: round %d is not after round %d, the last one this trustee decrypted",
			ErrRoundDone, req.round, st.LastRound)
	}
	c := st.Committed
	if c.Round != req.round {
		return nil, fmt.Errorf("%w: round %d (this trustee's last commitment is to round %d)", ErrNotCommitted, req.round, c.Round)
	}
	if !bytes.Equal(req.set, c.SetDigest[:]) || req.contributors != c.Contributors {
		return nil, fmt.Errorf("%w: round %d is committed to set %x of %d updates, the request names set %x of %d",
			ErrOtherSet, req.round, c.SetDigest[:8], c.Contributors, req.set[:min(8, len(req.set))], req.contributors)
	}
	return nil, nil
}
