package trustee

import (
	"errors"
	"fmt"
)

// Refusals a trustee gives; the server maps them to gRPC status codes (see status.go).
var (
	// ErrRoundDone: the round is at or below the last round this trustee decrypted, and the
	// request is not an identical retry of that last one.
	ErrRoundDone = errors.New("trustee: round already decrypted")
	// ErrSumDone: this very sum (by the fingerprint of its c1 polynomials) was decrypted
	// before, under some round.
	ErrSumDone = errors.New("trustee: sum already decrypted")
	// ErrTooFewContributors: the sum has fewer updates than the trustee's m_min.
	ErrTooFewContributors = errors.New("trustee: too few contributors")
	// ErrKeyMismatch: the request names another parameter set or key epoch than the share.
	ErrKeyMismatch = errors.New("trustee: not this trustee's key")
)

// request is what the guard needs to know about a decryption request.
type request struct {
	round        uint64
	contributors int
	digest       [32]byte // of the whole request, for recognising identical retries
	sum          [32]byte // he.Sum.Fingerprint
}

// decide is the trustee's policy, a pure function of its persisted state: it returns the
// saved answer for an identical retry of the last request, nil to go ahead and decrypt, or a
// refusal. A trustee answers each round at most once, rounds only in increasing order, and
// each sum at most once whatever round it comes under, so no ciphertext is ever the input of
// two runs of the decryption protocol.
func decide(st *State, minContributors int, req request) (cached [][]byte, err error) {
	if st.Response != nil && req.round == st.LastRound && req.digest == st.Request {
		return st.Response, nil
	}
	if req.contributors < minContributors {
		return nil, fmt.Errorf("%w: the sum of round %d has %d updates, this trustee requires at least %d",
			ErrTooFewContributors, req.round, req.contributors, minContributors)
	}
	if req.round <= st.LastRound {
		return nil, fmt.Errorf("%w: round %d is not after round %d, the last one this trustee decrypted",
			ErrRoundDone, req.round, st.LastRound)
	}
	if st.decrypted(req.sum) {
		return nil, fmt.Errorf("%w: round %d presents a sum this trustee has already decrypted", ErrSumDone, req.round)
	}
	return nil, nil
}

// record is the state after answering req with resp.
func record(st State, req request, resp [][]byte) State {
	st.LastRound = req.round
	st.Request = req.digest
	st.Response = resp
	st.Sums = append(st.Sums[:len(st.Sums):len(st.Sums)], req.sum)
	return st
}
