package pki

import "errors"

// Errors callers branch on. Each is wrapped with the detail that explains it; test with errors.Is.
var (
	// ErrTokenUnknown: no such enrolment token (never issued, mistyped, or forgotten long after
	// it expired).
	ErrTokenUnknown = errors.New("pki: unknown enrolment token")
	// ErrTokenUsed: the token was redeemed before; tokens work once.
	ErrTokenUsed = errors.New("pki: enrolment token already used")
	// ErrTokenExpired: the token's lifetime is over.
	ErrTokenExpired = errors.New("pki: enrolment token expired")
	// ErrTokenWrongDevice: the token was issued for another device ID.
	ErrTokenWrongDevice = errors.New("pki: enrolment token was issued for another device")
	// ErrTooManyTokens: the token file holds MaxTokens records already.
	ErrTooManyTokens = errors.New("pki: too many outstanding enrolment tokens")

	// ErrRevoked: the identity or the certificate was revoked.
	ErrRevoked = errors.New("pki: revoked")
	// ErrRevocationUnavailable: the revocation list changed on disk and cannot be read, so no
	// call can be proved not revoked.
	ErrRevocationUnavailable = errors.New("pki: revocation list unreadable")

	// ErrBadCSR: a certificate request is malformed, too large, carries an unsupported key or a
	// bad signature.
	ErrBadCSR = errors.New("pki: bad certificate request")
	// ErrBadPEM: a key or certificate file is not the strict PEM this package writes.
	ErrBadPEM = errors.New("pki: bad PEM")
	// ErrBadCertificate: a certificate cannot be used as asked (wrong key, issuer, role, time).
	ErrBadCertificate = errors.New("pki: bad certificate")
)
