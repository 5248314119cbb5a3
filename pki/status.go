package pki

import (
	"context"
	"errors"
	"time"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Reasons attached to refusals as google.rpc.ErrorInfo reasons in the "vigil" domain, the same
// domain the coordinator uses.
const (
	ReasonNoClientCert       = "NO_CLIENT_CERT"         // Unauthenticated: the method needs a client certificate
	ReasonBadIdentity        = "BAD_IDENTITY"           // Unauthenticated: the certificate names no valid identity
	ReasonCertExpired        = "CERT_EXPIRED"           // Unauthenticated: the certificate is outside its validity
	ReasonRevoked            = "REVOKED"                // Unauthenticated: the identity or certificate is revoked
	ReasonRevocationDown     = "REVOCATION_UNAVAILABLE" // Unavailable: the revocation list cannot be read
	ReasonWrongRole          = "WRONG_ROLE"             // PermissionDenied: this server does not serve the caller's role
	ReasonIdentityMismatch   = "IDENTITY_MISMATCH"      // PermissionDenied: the request claims another identity
	ReasonRateLimited        = "RATE_LIMITED"           // ResourceExhausted: too many calls; RetryInfo says when to retry
	ReasonTokenUnknown       = "TOKEN_UNKNOWN"          // Unauthenticated
	ReasonTokenUsed          = "TOKEN_USED"             // Unauthenticated
	ReasonTokenExpired       = "TOKEN_EXPIRED"          // Unauthenticated
	ReasonTokenWrongDevice   = "TOKEN_WRONG_DEVICE"     // PermissionDenied
	ReasonBadCSR             = "BAD_CSR"                // InvalidArgument
	ReasonInvalidArgument    = "INVALID_ARGUMENT"       // InvalidArgument
	reasonInternalUnexpected = "INTERNAL"
)

// refuse builds a status error with an ErrorInfo reason and, if retry > 0, a RetryInfo.
func refuse(code codes.Code, reason, msg string, retry time.Duration) error {
	return vigilv1.Error(code, reason, msg, retry)
}

// StatusError converts an error from this package (Enroller, Tokens, Revocations) into a gRPC
// status error with a code and an ErrorInfo reason. A status error passes through unchanged;
// context errors keep their meaning; anything unexpected is Internal.
func StatusError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	msg := err.Error()
	for _, m := range []struct {
		target error
		code   codes.Code
		reason string
	}{
		{ErrTokenUnknown, codes.Unauthenticated, ReasonTokenUnknown},
		{ErrTokenUsed, codes.Unauthenticated, ReasonTokenUsed},
		{ErrTokenExpired, codes.Unauthenticated, ReasonTokenExpired},
		{ErrTokenWrongDevice, codes.PermissionDenied, ReasonTokenWrongDevice},
		{ErrRevoked, codes.Unauthenticated, ReasonRevoked},
		{ErrRevocationUnavailable, codes.Unavailable, ReasonRevocationDown},
		{ErrBadCSR, codes.InvalidArgument, ReasonBadCSR},
		{ErrBadIdentity, codes.InvalidArgument, ReasonInvalidArgument},
	} {
		if errors.Is(err, m.target) {
			return refuse(m.code, m.reason, msg, 0)
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, msg)
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, msg)
	}
	return refuse(codes.Internal, reasonInternalUnexpected, msg, 0)
}

// Reason returns the ErrorInfo reason of a status error, or "".
func Reason(err error) string { return vigilv1.Reason(err) }
