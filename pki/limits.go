package pki

import "time"

// Every size bound and default lifetime of the package, in one place. Decoders check the sizes
// before they parse anything.
const (
	// MaxPEMFileBytes bounds a key or certificate file.
	MaxPEMFileBytes = 64 << 10
	// MaxChainCertificates bounds the certificates in one file or one enrolment response.
	MaxChainCertificates = 8
	// MaxCSRBytes bounds a PKCS#10 certificate request (DER).
	MaxCSRBytes = 16 << 10
	// MaxTokenFileBytes bounds the enrolment token file.
	MaxTokenFileBytes = 32 << 20
	// MaxTokens bounds the tokens kept in the token file, outstanding and recently used.
	MaxTokens = 100_000
	// MaxRevocationFileBytes bounds the revocation file.
	MaxRevocationFileBytes = 32 << 20
	// MaxRevocations bounds the entries of the revocation list.
	MaxRevocations = 200_000
	// MaxDNSNames bounds the DNS and IP names of a server certificate.
	MaxDNSNames = 32

	// TokenBytes is the randomness of an enrolment token; it travels as unpadded base64url.
	TokenBytes = 32
	// MaxTokenTTL bounds how long an enrolment token stays valid.
	MaxTokenTTL = 30 * 24 * time.Hour
	// TokenRetention is how long a token's record is kept after it expires, so that a late
	// attempt is told "expired" or "used" rather than "unknown". Expired tokens can never be
	// redeemed, so forgetting them afterwards loses nothing.
	TokenRetention = 7 * 24 * time.Hour

	// DefaultDeviceValidity is the lifetime of a device certificate.
	DefaultDeviceValidity = 30 * 24 * time.Hour
	// DefaultServerValidity is the lifetime of a coordinator or trustee certificate.
	DefaultServerValidity = 365 * 24 * time.Hour
	// DefaultCAValidity is the lifetime of the CA certificate.
	DefaultCAValidity = 10 * 365 * 24 * time.Hour
	// MinValidity and MaxValidity bound any certificate lifetime.
	MinValidity = time.Hour
	MaxValidity = 20 * 365 * 24 * time.Hour
	// Backdate is subtracted from NotBefore so that peers whose clocks run a little slow accept a
	// fresh certificate.
	Backdate = 5 * time.Minute

	// RevocationRecheck is how often, at most, a server looks at the revocation file for changes
	// made by another process. Revocations made through the same Revocations value apply at once.
	RevocationRecheck = time.Second
)
