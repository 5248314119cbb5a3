package trustee

import (
	"errors"

	"github.com/vigilauth/vigil/crypto/he"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// toStatus turns an error into the gRPC status a caller can branch on, keeping the error text
// as the reason:
//
//	AlreadyExists       the round was already decrypted, or committed to another set
//	                    (ErrRoundDone, ErrOtherSet)
//	PermissionDenied    a contribution that does not verify (ErrContribution): unknown or
//	                    repeated device, forged record or signature, altered update
//	FailedPrecondition  too few contributors, no commitment to the set, too few or invalid
//	                    commitments, another key epoch or parameter set
//	InvalidArgument     a request that does not decode or does not fit the key (he errors), a
//	                    sum header out of range (ErrHeader)
//	Internal            anything else, e.g. the journal could not be saved
func toStatus(err error) error {
	if _, ok := status.FromError(err); ok && !isOurs(err) {
		return err
	}
	code := codes.Internal
	switch {
	case errors.Is(err, ErrRoundDone), errors.Is(err, ErrOtherSet):
		code = codes.AlreadyExists
	case errors.Is(err, ErrContribution):
		code = codes.PermissionDenied
	case errors.Is(err, ErrNoPart):
		code = codes.NotFound
	case errors.Is(err, ErrPartsFull):
		code = codes.ResourceExhausted
	case errors.Is(err, ErrTooFewContributors), errors.Is(err, ErrKeyMismatch), errors.Is(err, ErrNotCommitted),
		errors.Is(err, ErrCommitment), errors.Is(err, he.ErrParams), errors.Is(err, he.ErrEpoch):
		code = codes.FailedPrecondition
	case errors.Is(err, ErrHeader), errors.Is(err, he.ErrMalformed), errors.Is(err, he.ErrBinding), errors.Is(err, he.ErrDimension),
		errors.Is(err, he.ErrThreshold):
		code = codes.InvalidArgument
	}
	return status.Error(code, err.Error())
}

// isOurs reports whether err wraps one of the package's or crypto/he's sentinels rather than
// being a transport status from the stream.
func isOurs(err error) bool {
	for _, s := range []error{ErrRoundDone, ErrOtherSet, ErrContribution, ErrHeader, ErrNoPart, ErrPartsFull, ErrTooFewContributors, ErrKeyMismatch,
		ErrNotCommitted, ErrCommitment, he.ErrParams, he.ErrEpoch, he.ErrMalformed, he.ErrBinding, he.ErrDimension, he.ErrThreshold} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
