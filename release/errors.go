package release

import (
	"errors"
	"fmt"
	"strings"

	"github.com/vigilauth/vigil/crypto/sig"
)

// Errors callers branch on with errors.Is. Returned errors wrap them with the object and the
// field at fault.
var (
	// ErrMalformed means a document or envelope is not valid canonical, strict encoding.
	ErrMalformed = errors.New("release: malformed document")
	// ErrWrongType means an envelope carries a different document type than expected.
	ErrWrongType = errors.New("release: wrong document type")
	// ErrUnknownKey means signatures were made by keys the trusted root does not give the role.
	ErrUnknownKey = errors.New("release: signature by a key not trusted for the role")
	// ErrBadSignature means a signature by a trusted key did not verify (tampered or corrupt).
	ErrBadSignature = errors.New("release: invalid signature")
	// ErrThreshold means fewer valid signatures than the role's threshold.
	ErrThreshold = errors.New("release: signature threshold not met")
	// ErrExpired means a document is past its expiry.
	ErrExpired = errors.New("release: expired")
	// ErrLifetime means a document expires further ahead than devices accept: a pointer valid
	// for more than MaxPointerLifetime.
	ErrLifetime = errors.New("release: expiry too far ahead")
	// ErrStale means the store offers nothing newer than the installed release while the
	// installed release's manifest has expired: the device runs a model its signers no longer
	// vouch for. Either no release was published for longer than a manifest lives, or someone
	// holding the timestamp key keeps pointing devices at an old release. Errors wrapping it also
	// wrap ErrExpired.
	ErrStale = errors.New("release: installed release is stale")
	// ErrPolicy means a task asks for privacy settings outside the signed privacy policy.
	ErrPolicy = errors.New("release: outside the privacy policy")
	// ErrRollback means a document is older than one the device already trusts or runs.
	ErrRollback = errors.New("release: rollback refused")
	// ErrMixAndMatch means documents that must agree (pointer, manifest, artifacts) do not.
	ErrMixAndMatch = errors.New("release: documents do not match")
	// ErrHashMismatch means an object's SHA-256 or size differs from the signed one.
	ErrHashMismatch = errors.New("release: hash mismatch")
	// ErrRootVersion means a root update skips or repeats a version.
	ErrRootVersion = errors.New("release: root version out of sequence")
	// ErrUpToDate means the store offers nothing newer than the installed version. It is not a
	// failure; Fetch returns it so callers can tell "nothing to do" from "installed".
	ErrUpToDate = errors.New("release: already up to date")
	// ErrNoRelease means the store holds no release of the model: its latest pointer is absent,
	// the device has none installed and no newer root was refused. Like ErrUpToDate it is not a failure (a stream the
	// organisation has not published yet); a missing manifest or artifact that a signed pointer
	// names is one, and does not match it.
	ErrNoRelease = errors.New("release: nothing published yet")
	// ErrConflict means a store already holds a different object under a write-once key: a
	// different release with the same version exists. Publishing never overwrites it.
	ErrConflict = errors.New("release: conflicting object already published")
	// ErrUnverified means a store holds a document the publisher cannot verify and could not
	// replace: it never reports success for such a region.
	ErrUnverified = errors.New("release: region holds a document that does not verify")
	// ErrVersionJump means a signer was asked for a version far above the newest one; a typo
	// there would burn every version below it.
	ErrVersionJump = errors.New("release: version jumps far ahead")
)

// SignatureError reports why an envelope did not carry enough valid signatures for a role.
// It unwraps to ErrThreshold and, when they explain the shortfall, to ErrUnknownKey and
// ErrBadSignature.
type SignatureError struct {
	Role      Role
	Threshold int
	Valid     int
	Unknown   []sig.KeyID // signatures by keys the role does not hold
	Invalid   []sig.KeyID // signatures by role keys that did not verify
}

func (e *SignatureError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "release: %s role: %d valid signature(s), threshold %d", e.Role, e.Valid, e.Threshold)
	if len(e.Invalid) > 0 {
		fmt.Fprintf(&b, "; invalid signature by %s", shortIDs(e.Invalid))
	}
	if len(e.Unknown) > 0 {
		fmt.Fprintf(&b, "; signed by untrusted key %s", shortIDs(e.Unknown))
	}
	return b.String()
}

// Unwrap implements the multi-error form of errors.Is.
func (e *SignatureError) Unwrap() []error {
	errs := []error{ErrThreshold}
	if len(e.Invalid) > 0 {
		errs = append(errs, ErrBadSignature)
	}
	if len(e.Unknown) > 0 {
		errs = append(errs, ErrUnknownKey)
	}
	return errs
}

func shortIDs(ids []sig.KeyID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = id.Short()
	}
	return strings.Join(s, ", ")
}
