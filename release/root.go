package release

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/vigilauth/vigil/crypto/sig"
)

// Role names a set of keys the root trusts for one kind of document.
type Role string

// The roles of the root of trust.
const (
	// RoleRoot signs root documents (key changes).
	RoleRoot Role = "root"
	// RoleRelease signs release manifests and key-epoch documents.
	RoleRelease Role = "release"
	// RoleTimestamp signs the short-lived Latest pointers; it is an online key.
	RoleTimestamp Role = "timestamp"
	// RoleTrustees signs key-epoch documents: the trustees' own ML-DSA keys, t of n, so that no
	// one who runs the coordinator can make devices encrypt to a key of its choosing.
	RoleTrustees Role = "trustees"
	// RoleEnrolment signs device records: the enrolment authority, a role the coordinator does
	// not hold, so that the coordinator cannot invent devices to fill a round.
	RoleEnrolment Role = "enrolment"
	// RolePrivacy signs the privacy policy devices hold tasks to: the privacy office's key.
	RolePrivacy Role = "privacy"
)

// roles lists every role a root must define, in the order they are checked.
var roles = [...]Role{RoleRoot, RoleRelease, RoleTimestamp, RoleTrustees, RoleEnrolment, RolePrivacy}

// Root is the root-of-trust document.
type Root struct {
	Expires time.Time         `json:"expires"`
	Keys    map[sig.KeyID]Key `json:"keys"`
	Roles   Roles             `json:"roles"`
	Version uint64            `json:"version"`

	pub map[sig.KeyID]*sig.PublicKey // parsed Keys, filled by validate
}

// Key is a public key listed in a root.
type Key struct {
	Algorithm string `json:"algorithm"`
	Public    []byte `json:"public"` // raw FIPS 204 encoding
}

// Roles assigns keys and thresholds to each role.
type Roles struct {
	Enrolment RoleKeys `json:"enrolment"`
	Privacy   RoleKeys `json:"privacy"`
	Release   RoleKeys `json:"release"`
	Root      RoleKeys `json:"root"`
	Timestamp RoleKeys `json:"timestamp"`
	Trustees  RoleKeys `json:"trustees"`
}

// RoleKeys lists the key IDs of one role, sorted, and how many must sign.
type RoleKeys struct {
	KeyIDs    []sig.KeyID `json:"keyids"`
	Threshold int         `json:"threshold"`
}

// RoleSpec describes a role when building a root.
type RoleSpec struct {
	Keys      []*sig.PublicKey
	Threshold int
}

// RootRoles describes every role of a root when building one.
type RootRoles struct {
	Root, Release, Timestamp RoleSpec
	// Trustees are the key ceremony's trustees; Threshold should be the ceremony's t.
	Trustees RoleSpec
	// Enrolment is the enrolment authority.
	Enrolment RoleSpec
	// Privacy is the privacy office.
	Privacy RoleSpec
}

// NewRoot builds and validates a root document.
func NewRoot(version uint64, expires time.Time, spec RootRoles) (*Root, error) {
	r := &Root{Version: version, Expires: canonicalTime(expires), Keys: map[sig.KeyID]Key{}}
	build := func(spec RoleSpec) RoleKeys {
		rk := RoleKeys{Threshold: spec.Threshold}
		for _, k := range spec.Keys {
			r.Keys[k.ID()] = Key{Algorithm: sig.Algorithm, Public: k.Bytes()}
			if !slices.Contains(rk.KeyIDs, k.ID()) {
				rk.KeyIDs = append(rk.KeyIDs, k.ID())
			}
		}
		slices.Sort(rk.KeyIDs)
		return rk
	}
	r.Roles = Roles{
		Root: build(spec.Root), Release: build(spec.Release), Timestamp: build(spec.Timestamp),
		Trustees: build(spec.Trustees), Enrolment: build(spec.Enrolment), Privacy: build(spec.Privacy),
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Root) payloadType() string { return TypeRoot }

func (r *Root) role(name Role) (RoleKeys, bool) {
	switch name {
	case RoleRoot:
		return r.Roles.Root, true
	case RoleRelease:
		return r.Roles.Release, true
	case RoleTimestamp:
		return r.Roles.Timestamp, true
	case RoleTrustees:
		return r.Roles.Trustees, true
	case RoleEnrolment:
		return r.Roles.Enrolment, true
	case RolePrivacy:
		return r.Roles.Privacy, true
	}
	return RoleKeys{}, false
}

func (r *Root) validate() error {
	if r.Version == 0 {
		return fmt.Errorf("%w: root version must be at least 1", ErrMalformed)
	}
	if err := checkTime("root expires", r.Expires); err != nil {
		return err
	}
	if len(r.Keys) == 0 || len(r.Keys) > MaxRootKeys {
		return fmt.Errorf("%w: root lists %d keys, want 1..%d", ErrMalformed, len(r.Keys), MaxRootKeys)
	}
	r.pub = make(map[sig.KeyID]*sig.PublicKey, len(r.Keys))
	for id, k := range r.Keys {
		if k.Algorithm != sig.Algorithm {
			return fmt.Errorf("%w: root key %s: algorithm %q, want %q", ErrMalformed, id.Short(), k.Algorithm, sig.Algorithm)
		}
		pk, err := sig.ParsePublicKey(k.Public)
		if err != nil {
			return fmt.Errorf("%w: root key %s: %v", ErrMalformed, id.Short(), err)
		}
		if pk.ID() != id {
			return fmt.Errorf("%w: root key listed as %s has ID %s", ErrMalformed, id.Short(), pk.ID().Short())
		}
		r.pub[id] = pk
	}
	used := map[sig.KeyID]bool{}
	for _, name := range roles {
		rk, _ := r.role(name)
		if rk.Threshold < 1 || rk.Threshold > len(rk.KeyIDs) {
			return fmt.Errorf("%w: role %s: threshold %d with %d keys", ErrMalformed, name, rk.Threshold, len(rk.KeyIDs))
		}
		for i, id := range rk.KeyIDs {
			if _, ok := r.Keys[id]; !ok {
				return fmt.Errorf("%w: role %s names key %s that the root does not list", ErrMalformed, name, id.Short())
			}
			if i > 0 && id <= rk.KeyIDs[i-1] {
				return fmt.Errorf("%w: role %s: key IDs must be sorted without repeats", ErrMalformed, name)
			}
			used[id] = true
		}
	}
	if len(used) != len(r.Keys) {
		return fmt.Errorf("%w: root lists keys that no role uses", ErrMalformed)
	}
	return nil
}

// PublicKey returns the trusted key with the given ID, or nil.
func (r *Root) PublicKey(id sig.KeyID) *sig.PublicKey { return r.pub[id] }

// verifyRole checks that env is of payloadType and carries at least the role's threshold of
// valid signatures by the role's keys, and returns its payload.
func (r *Root) verifyRole(env *Envelope, role Role, payloadType string) ([]byte, error) {
	if env.PayloadType != payloadType {
		return nil, fmt.Errorf("%w: got %q, want %q", ErrWrongType, env.PayloadType, payloadType)
	}
	rk, ok := r.role(role)
	if !ok {
		return nil, fmt.Errorf("release: unknown role %q", role)
	}
	msg := PAE(env.PayloadType, env.Payload)
	serr := &SignatureError{Role: role, Threshold: rk.Threshold}
	for _, s := range env.Signatures {
		if !slices.Contains(rk.KeyIDs, s.KeyID) {
			serr.Unknown = append(serr.Unknown, s.KeyID)
			continue
		}
		if err := r.pub[s.KeyID].Verify(msg, s.Sig, sigContext); err != nil {
			serr.Invalid = append(serr.Invalid, s.KeyID)
			continue
		}
		serr.Valid++
	}
	if serr.Valid < rk.Threshold {
		return nil, serr
	}
	return env.Payload, nil
}

func decodeRoot(payload []byte) (*Root, error) {
	var r Root
	if err := unmarshalStrict(payload, &r, "root"); err != nil {
		return nil, err
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// ParseTrustedRoot decodes a root envelope that the caller trusts out of band (the root pinned
// in a device image) and checks that it is signed by a threshold of its own root keys. It does
// not check expiry: an expired pinned root may still be the start of a chain to a current one.
func ParseTrustedRoot(data []byte) (*Root, error) {
	env, err := ParseEnvelope(data)
	if err != nil {
		return nil, err
	}
	r, err := decodeRoot(env.Payload)
	if err != nil {
		return nil, err
	}
	if _, err := r.verifyRole(env, RoleRoot, TypeRoot); err != nil {
		return nil, fmt.Errorf("root version %d is not signed by its own root keys: %w", r.Version, err)
	}
	return r, nil
}

// VerifyNext verifies the root that follows r, as TUF does: next must be version r.Version+1
// and be signed by a threshold of r's root keys and by a threshold of its own root keys.
// Expiry is checked only on the newest root, by the caller.
func (r *Root) VerifyNext(data []byte) (*Root, error) {
	env, err := ParseEnvelope(data)
	if err != nil {
		return nil, err
	}
	if _, err := r.verifyRole(env, RoleRoot, TypeRoot); err != nil {
		return nil, fmt.Errorf("not signed by the root keys of trusted root version %d: %w", r.Version, err)
	}
	next, err := decodeRoot(env.Payload)
	if err != nil {
		return nil, err
	}
	if next.Version <= r.Version {
		return nil, fmt.Errorf("%w: root version %d is not newer than trusted version %d", ErrRollback, next.Version, r.Version)
	}
	if next.Version != r.Version+1 {
		return nil, fmt.Errorf("%w: root version %d follows trusted version %d", ErrRootVersion, next.Version, r.Version)
	}
	if _, err := next.verifyRole(env, RoleRoot, TypeRoot); err != nil {
		return nil, fmt.Errorf("root version %d is not signed by its own root keys: %w", next.Version, err)
	}
	return next, nil
}

// Equal reports whether r and o encode to the same document.
func (r *Root) Equal(o *Root) bool {
	a, err1 := marshalCanonical(r)
	b, err2 := marshalCanonical(o)
	return err1 == nil && err2 == nil && bytes.Equal(a, b)
}
