package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// Role is what a certificate's holder is in the protocol.
type Role string

// The roles. Each appears in the identity URI and decides the certificate's key usage.
const (
	RoleDevice      Role = "device"
	RoleCoordinator Role = "coordinator"
	RoleTrustee     Role = "trustee"
	// RoleEnrolment is the enrolment authority's server. Its certificate comes from the
	// authority's own CA, never the coordinator's: a coordinator that could pass for the
	// authority could take a device's one-time token and register a key of its own under the
	// device's name.
	RoleEnrolment Role = "enrolment"
	// RoleOperator is a person operating the coordinator: its certificate is admitted only by
	// the coordinator's admin API (status, pause, resume, abort, removing devices), never by
	// the device or trustee services.
	RoleOperator Role = "operator"
)

func (r Role) valid() bool {
	return r == RoleDevice || r == RoleCoordinator || r == RoleTrustee || r == RoleEnrolment || r == RoleOperator
}

// TrustDomain is the SPIFFE trust domain of every identity URI. The CA, not the domain, is the
// root of trust, so one fixed name serves every deployment.
const TrustDomain = "vigil"

// Identity is a verified peer: its role and its identifier.
type Identity struct {
	Role Role
	ID   string
}

// Device returns the Identity of a device.
func Device(id string) Identity { return Identity{Role: RoleDevice, ID: id} }

// Coordinator returns the Identity of a coordinator.
func Coordinator(id string) Identity { return Identity{Role: RoleCoordinator, ID: id} }

// Trustee returns the Identity of a trustee.
func Trustee(id string) Identity { return Identity{Role: RoleTrustee, ID: id} }

// Operator returns the identity of the operator id.
func Operator(id string) Identity { return Identity{Role: RoleOperator, ID: id} }

// EnrolmentAuthority returns the Identity of an enrolment authority's server.
func EnrolmentAuthority(id string) Identity { return Identity{Role: RoleEnrolment, ID: id} }

// Validate reports whether id has a known role and a well-formed identifier.
func (id Identity) Validate() error {
	if !id.Role.valid() {
		return fmt.Errorf("%w: unknown role %q", ErrBadIdentity, id.Role)
	}
	if err := vigilv1.ValidID(string(id.Role)+" ID", id.ID); err != nil {
		return fmt.Errorf("%w: %w", ErrBadIdentity, err)
	}
	return nil
}

// URI returns the identity's SPIFFE ID, spiffe://vigil/<role>/<id>.
func (id Identity) URI() *url.URL {
	return &url.URL{Scheme: "spiffe", Host: TrustDomain, Path: "/" + string(id.Role) + "/" + id.ID}
}

// String returns the identity's URI.
func (id Identity) String() string { return id.URI().String() }

// ErrBadIdentity says that a certificate or URI does not name exactly one valid identity.
var ErrBadIdentity = errors.New("pki: no valid identity")

// ParseIdentity parses an identity URI as written by Identity.URI. It accepts only the exact
// canonical form: no user, port, query, fragment, escapes or extra path segments.
func ParseIdentity(s string) (Identity, error) {
	const prefix = "spiffe://" + TrustDomain + "/"
	if len(s) > len(prefix)+len(RoleCoordinator)+1+vigilv1.MaxIDLen {
		return Identity{}, fmt.Errorf("%w: identity URI is %d bytes long", ErrBadIdentity, len(s))
	}
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return Identity{}, fmt.Errorf("%w: %q does not start with %s", ErrBadIdentity, s, prefix)
	}
	role, id, ok := strings.Cut(rest, "/")
	if !ok {
		return Identity{}, fmt.Errorf("%w: %q has no <role>/<id> path", ErrBadIdentity, s)
	}
	out := Identity{Role: Role(role), ID: id}
	if err := out.Validate(); err != nil {
		return Identity{}, err
	}
	return out, nil
}

// IdentityOf returns the identity a certificate names. A certificate must carry exactly one URI
// name and it must be a valid identity URI; anything else is refused rather than guessed at.
func IdentityOf(cert *x509.Certificate) (Identity, error) {
	if cert == nil {
		return Identity{}, fmt.Errorf("%w: no certificate", ErrBadIdentity)
	}
	if len(cert.URIs) != 1 {
		return Identity{}, fmt.Errorf("%w: the certificate has %d URI names, want exactly 1", ErrBadIdentity, len(cert.URIs))
	}
	id, err := ParseIdentity(cert.URIs[0].String())
	if err != nil {
		return Identity{}, err
	}
	// The URI must be the canonical one (url.String may normalise what the parser accepted).
	if u := cert.URIs[0]; u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.RawPath != "" {
		return Identity{}, fmt.Errorf("%w: identity URI %q is not canonical", ErrBadIdentity, u)
	}
	return id, nil
}
