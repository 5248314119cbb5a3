package agent

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vigilauth/vigil/guard"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// Reasons the agent's API gives for refusing a call, in google.rpc.ErrorInfo (domain "vigil").
// Clients branch on them.
const (
	ReasonInvalidField   = "INVALID_FIELD"
	ReasonBadSecret      = "BAD_SECRET"
	ReasonWrongSession   = "WRONG_SESSION"
	ReasonUnknownSession = "UNKNOWN_SESSION"
	ReasonSessionExpired = "SESSION_EXPIRED"
	ReasonSessionExists  = "SESSION_EXISTS"
	ReasonRevoked        = "SESSION_REVOKED"
	ReasonNoChallenge    = "NO_CHALLENGE"
	ReasonOutOfOrder     = "OUT_OF_ORDER"
	ReasonRateLimited    = "RATE_LIMITED"
	ReasonTooMany        = "TOO_MANY_SESSIONS"
)

// ErrState reports a state or key file the agent cannot trust: unreadable, too large, not
// decryptable under the device key, or with permissions wider than the owner's.
var ErrState = errors.New("agent: untrusted state")

// apiError builds a status error with reason and, when field is set, the offending field in the
// ErrorInfo's metadata and a BadRequest field violation.
func apiError(code codes.Code, reason, field, msg string, retry time.Duration) error {
	st := status.New(code, msg)
	info := &errdetails.ErrorInfo{Reason: reason, Domain: vigilv1.ErrorDomain}
	if field != "" {
		info.Metadata = map[string]string{"field": field}
	}
	var with *status.Status
	var err error
	switch {
	case field != "":
		with, err = st.WithDetails(info, &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: msg}}})
	case retry > 0:
		with, err = st.WithDetails(info, &errdetails.RetryInfo{RetryDelay: durationpb.New(retry)})
	default:
		with, err = st.WithDetails(info)
	}
	if err != nil {
		return st.Err()
	}
	return with.Err()
}

// badField is the error for a request field with an impossible value.
func badField(field, format string, args ...any) error {
	return apiError(codes.InvalidArgument, ReasonInvalidField, field, field+": "+fmt.Sprintf(format, args...), 0)
}

// guardError maps the guard's errors to statuses; field names the request field concerned.
func guardError(err error, field string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, guard.ErrUnknownSession):
		return apiError(codes.NotFound, ReasonUnknownSession, "session", err.Error(), 0)
	case errors.Is(err, guard.ErrSessionExists):
		return apiError(codes.AlreadyExists, ReasonSessionExists, "session", err.Error(), 0)
	case errors.Is(err, guard.ErrRevoked):
		return apiError(codes.FailedPrecondition, ReasonRevoked, "", err.Error(), 0)
	case errors.Is(err, guard.ErrNoChallenge):
		return apiError(codes.FailedPrecondition, ReasonNoChallenge, "challenge_id", err.Error(), 0)
	case errors.Is(err, guard.ErrOutOfOrder):
		return apiError(codes.InvalidArgument, ReasonOutOfOrder, field, err.Error(), 0)
	case errors.Is(err, guard.ErrInvalidEvent), errors.Is(err, guard.ErrBadTime):
		return apiError(codes.InvalidArgument, ReasonInvalidField, field, err.Error(), 0)
	}
	return status.Error(codes.Internal, err.Error())
}
