package release

import (
	"bytes"
	"fmt"
)

// roleFor is the role whose keys sign documents of payloadType.
func roleFor(payloadType string) (Role, bool) {
	switch payloadType {
	case TypeRoot:
		return RoleRoot, true
	case TypeManifest:
		return RoleRelease, true
	case TypeLatest:
		return RoleTimestamp, true
	case TypeKeyEpoch:
		return RoleTrustees, true
	case TypeDeviceRecord:
		return RoleEnrolment, true
	case TypePrivacyPolicy:
		return RolePrivacy, true
	}
	return "", false
}

// VerifyDocument verifies an encoded envelope under root, with the role its type names (a
// root document by root's root keys, as its successor must be), and returns the decoded
// document. It checks no expiry and no version order: tools use it to check what they are about
// to sign or publish, devices use Verifier.
func VerifyDocument(root *Root, data []byte) (Document, error) {
	env, doc, err := DecodeUnverified(data)
	if err != nil {
		return nil, err
	}
	role, ok := roleFor(env.PayloadType)
	if !ok {
		return nil, fmt.Errorf("%w: unknown payloadType %q", ErrWrongType, env.PayloadType)
	}
	if _, err := root.verifyRole(env, role, env.PayloadType); err != nil {
		return nil, err
	}
	return doc, nil
}

// SignatureStatus says, for tools, how far an envelope is from its threshold under root: the
// role, its threshold, and the valid signatures so far.
func SignatureStatus(root *Root, data []byte) (role Role, valid, threshold int, err error) {
	env, err := ParseEnvelope(data)
	if err != nil {
		return "", 0, 0, err
	}
	role, ok := roleFor(env.PayloadType)
	if !ok {
		return "", 0, 0, fmt.Errorf("%w: unknown payloadType %q", ErrWrongType, env.PayloadType)
	}
	_, verr := root.verifyRole(env, role, env.PayloadType)
	if verr == nil {
		rk, _ := root.role(role)
		return role, rk.Threshold, rk.Threshold, nil
	}
	if se, ok := verr.(*SignatureError); ok {
		return role, se.Valid, se.Threshold, nil
	}
	return role, 0, 0, verr
}

// MergeSignatures merges envelopes of the same document signed on separate machines (each
// made by Sign or Cosign, e.g. by `vigil release sign --add-signature` on an offline root key's
// machine) into one envelope carrying every signature. The payloads and types must be
// identical; a key that signed in two envelopes keeps the first signature. Nothing is
// verified: the result is checked against the root where it is used.
func MergeSignatures(envelopes ...[]byte) ([]byte, error) {
	if len(envelopes) == 0 {
		return nil, fmt.Errorf("release: merge: no envelope given")
	}
	var merged *Envelope
	seen := map[string]bool{}
	for i, data := range envelopes {
		env, doc, err := DecodeUnverified(data)
		if err != nil {
			return nil, fmt.Errorf("release: merge: envelope %d: %w", i+1, err)
		}
		if doc == nil {
			return nil, fmt.Errorf("%w: merge: envelope %d holds no document", ErrMalformed, i+1)
		}
		if merged == nil {
			merged = &Envelope{Payload: env.Payload, PayloadType: env.PayloadType}
		} else if env.PayloadType != merged.PayloadType || !bytes.Equal(env.Payload, merged.Payload) {
			return nil, fmt.Errorf("%w: merge: envelope %d signs a different document", ErrMixAndMatch, i+1)
		}
		for _, s := range env.Signatures {
			if !seen[string(s.KeyID)] {
				seen[string(s.KeyID)] = true
				merged.Signatures = append(merged.Signatures, s)
			}
		}
	}
	if len(merged.Signatures) > MaxSignatures {
		return nil, fmt.Errorf("release: merge: %d signatures, at most %d", len(merged.Signatures), MaxSignatures)
	}
	sortSignatures(merged.Signatures)
	return merged.Marshal()
}
