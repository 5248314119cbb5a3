package release

import (
	"slices"

	"github.com/vigilauth/vigil/crypto/sig"
)

// SignatureCheck is one signature of an envelope checked on its own against a role of a root.
type SignatureCheck struct {
	KeyID sig.KeyID
	// InRole: the key is one of the role's keys. A signature by any other key never counts,
	// even when the root lists the key for another role.
	InRole bool
	// Err says why the signature does not verify under the key; nil when it does.
	Err error
}

// Valid reports whether the signature counts toward the role's threshold.
func (c SignatureCheck) Valid() bool { return c.InRole && c.Err == nil }

// CheckSignatures verifies each signature of env under r's role separately, for tools that
// show who signed a document (verifyRole stops at the threshold's verdict). It says nothing of
// the payload; VerifyDocument is what decides whether a document is trusted.
func (r *Root) CheckSignatures(env *Envelope, role Role) (checks []SignatureCheck, threshold int) {
	rk, _ := r.role(role)
	msg := PAE(env.PayloadType, env.Payload)
	for _, s := range env.Signatures {
		c := SignatureCheck{KeyID: s.KeyID, InRole: slices.Contains(rk.KeyIDs, s.KeyID)}
		if c.InRole {
			c.Err = r.pub[s.KeyID].Verify(msg, s.Sig, sigContext)
		}
		checks = append(checks, c)
	}
	return checks, rk.Threshold
}

// RoleKeyIDs returns the keys of role and how many of them must sign.
func (r *Root) RoleKeyIDs(role Role) (ids []sig.KeyID, threshold int) {
	rk, _ := r.role(role)
	return slices.Clone(rk.KeyIDs), rk.Threshold
}
