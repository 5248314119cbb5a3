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
//	AlreadyExists       the round or the sum was already decrypted (ErrRoundDone, ErrSumDone)
//	FailedPrecondition  too few contributors, another key epoch or parameter set
//	InvalidArgument     a request that does not decode or does not fit the key (he errors)
//	Internal            anything else, e.g. the journal could not be saved
func toStatus(err error) error {
	code := codes.Internal
	switch {
	case errors.Is(err, ErrRoundDone), errors.Is(err, ErrSumDone):
		code = codes.AlreadyExists
	case errors.Is(err, ErrTooFewContributors), errors.Is(err, ErrKeyMismatch),
		errors.Is(err, he.ErrParams), errors.Is(err, he.ErrEpoch):
		code = codes.FailedPrecondition
	case errors.Is(err, he.ErrMalformed), errors.Is(err, he.ErrBinding), errors.Is(err, he.ErrDimension),
		errors.Is(err, he.ErrThreshold):
		code = codes.InvalidArgument
	}
	return status.Error(code, err.Error())
}
