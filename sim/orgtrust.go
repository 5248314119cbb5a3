package sim

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/vigilauth/vigil/crypto/he"
	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/release"
)

// OrgTrust is an organisation's trust set up on one host, as `vigil setup` and the demo make
// it: the trustees' key ceremony, with every trustee's own test decryption; a root of trust
// whose trustees role is the trustees' ceremony keys and whose enrolment role is the
// enrolment authority's key; the key epoch approved by the trustees whose test decryption
// passed; and the privacy policy signed by the privacy office. The coordinator holds none of
// the keys that sign the key epoch, device records or the policy.
type OrgTrust struct {
	Ceremony    *he.LocalResult
	Signers     []*sig.PrivateKey // the trustees' ceremony keys, in roster order
	Keys        *release.KeySet
	Root        *release.Root
	PublicKey   []byte // the key epoch's canonical encoding
	KeyDocument []byte // its document, signed by the approving trustees
	Policy      []byte // the signed privacy policy; nil when none was asked for
}

// NewOrgTrust runs the ceremony for trustees ids with threshold t and builds the rest; enrol
// is the enrolment authority's public key (nil: the key set makes one, for tests). A nil
// policy signs none (the demo's --insecure-no-dp, which no policy can allow).
func NewOrgTrust(ids []string, threshold int, enrol *sig.PublicKey, policy *release.PrivacyPolicy, now time.Time, keyLife time.Duration) (*OrgTrust, error) {
	params := he.DefaultParams()
	res, err := he.RunLocalCeremony(params, 1, ids, threshold)
	if err != nil {
		return nil, fmt.Errorf("key ceremony: %w", err)
	}
	o := &OrgTrust{Ceremony: res}
	for _, ident := range res.Identities {
		k, err := ident.SigningKey()
		if err != nil {
			return nil, err
		}
		o.Signers = append(o.Signers, k)
	}
	o.Keys, err = release.NewKeySetWith(rand.Reader, now.Add(365*24*time.Hour), release.KeySetOptions{
		Trustees: o.Signers, TrusteeThreshold: threshold, Enrolment: enrol,
	})
	if err != nil {
		return nil, err
	}
	if o.Root, err = release.ParseTrustedRoot(o.Keys.RootEnvelope); err != nil {
		return nil, err
	}
	if o.PublicKey, err = res.Key.MarshalBinary(); err != nil {
		return nil, err
	}
	// A trustee signs the key epoch only if its own test decryption passed: its approval.
	var approved []release.Signer
	for i, a := range res.Approvals {
		if a == nil || a.Trustee != ids[i] || a.Verify(res.Roster, res.Key) != nil {
			continue
		}
		approved = append(approved, o.Signers[i])
	}
	if len(approved) < threshold {
		return nil, fmt.Errorf("key ceremony: only %d of %d trustees approved key epoch 1, %d must", len(approved), len(ids), threshold)
	}
	doc := release.NewKeyEpoch(1, params.ID(), o.PublicKey, now, now.Add(keyLife))
	if o.KeyDocument, err = release.Sign(doc, approved...); err != nil {
		return nil, err
	}
	if policy != nil {
		if o.Policy, err = o.Keys.SignPrivacyPolicy(policy); err != nil {
			return nil, fmt.Errorf("privacy policy: %w", err)
		}
	}
	return o, nil
}

// DefaultPolicy is the privacy policy `vigil setup` and the demo sign: the floors and
// ceilings a coordinator's tasks must keep to, valid for a year.
func DefaultPolicy(minNoise float64, minParticipants, minTolerated uint32, maxClip float64, now time.Time) *release.PrivacyPolicy {
	now = now.UTC().Truncate(time.Second) // signed documents carry whole UTC seconds
	return &release.PrivacyPolicy{
		Version: 1, Created: now, Expires: now.AddDate(1, 0, 0),
		MinNoiseMultiplier: minNoise, MinParticipants: minParticipants, MaxParticipants: he.MaxContributors,
		MaxClipNorm: maxClip, MinToleratedDevices: minTolerated,
	}
}
