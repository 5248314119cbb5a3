package pki

import "time"

// Every size bound and default lifetime of the package, in one place. Decoders check the sizes
// before they parse anything.
const (
	// MaxEnrolMessageBytes bounds a message from a caller without a client certificate: an
	// enrolment (certificate request, device record and proof) is a few KiB.
	MaxEnrolMessageBytes = 128 << 10
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
	// MaxClockSkew is how far slow a device's or server's clock may run and still accept a fresh
	// certificate: fleets include laptops back from a month in a drawer, whose clocks are hours
	// off until they synchronise. Devices accepting their own certificate at enrolment or
	// renewal judge it at its NotBefore whatever their clock says (AcceptEnrolment), so this
	// bounds only how slow a peer verifying someone else's fresh certificate may be.
	MaxClockSkew = 2 * time.Hour
	// Backdate is subtracted from NotBefore so that peers whose clocks run up to MaxClockSkew
	// slow accept a fresh certificate. Revocation is unaffected: certificates issued after one
	// start after it (CertSpec.StartAfter).
	Backdate = MaxClockSkew

	// Connection caps of a Split listener (ListenerConfig): enough for a fleet of ten thousand
	// devices on one coordinator, with strangers confined to a few hundred connections.
	DefaultHandshakeTimeout          = 10 * time.Second
	DefaultMaxHandshakes             = 512
	DefaultMaxHandshakesPerHost      = 16
	DefaultMaxUnauthenticated        = 256
	DefaultMaxUnauthenticatedPerHost = 4
	DefaultMaxAuthenticated          = 20_000
	// DefaultMaxAuthenticatedPerIdentity is one identity's share of DefaultMaxAuthenticated. A
	// device holds one connection to a server, a second while it reconnects before the server
	// has noticed the first die (keepalive takes up to 80 s), and the coordinator one per
	// trustee; 8 leaves room for that, while filling the class would take 2,500 identities.
	DefaultMaxAuthenticatedPerIdentity = 8

	// RevocationRecheck is how often, at most, a server looks at the revocation file for changes
	// made by another process. Revocations made through the same Revocations value apply at once.
	RevocationRecheck = time.Second
)
