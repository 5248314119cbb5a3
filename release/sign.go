package release

import "fmt"

// Document is one of *Root, *Manifest, *Latest, *KeyEpoch, *DeviceRecord or *PrivacyPolicy.
type Document interface {
	payloadType() string
	validate() error
}

var (
	_ Document = (*Root)(nil)
	_ Document = (*Manifest)(nil)
	_ Document = (*Latest)(nil)
	_ Document = (*KeyEpoch)(nil)
	_ Document = (*DeviceRecord)(nil)
	_ Document = (*PrivacyPolicy)(nil)
)

// Sign validates doc, encodes it canonically and returns the encoded envelope signed by every
// signer. A root rotation is signed by the old root keys and the new ones together.
func Sign(doc Document, signers ...Signer) ([]byte, error) {
	if err := doc.validate(); err != nil {
		return nil, err
	}
	payload, err := marshalCanonical(doc)
	if err != nil {
		return nil, err
	}
	env, err := signEnvelope(doc.payloadType(), payload, signers)
	if err != nil {
		return nil, err
	}
	return env.Marshal()
}

// DecodeUnverified strictly decodes an envelope and its document WITHOUT checking any
// signature, for inspection tools. Never act on what it returns.
func DecodeUnverified(data []byte) (*Envelope, Document, error) {
	env, err := ParseEnvelope(data)
	if err != nil {
		return nil, nil, err
	}
	var doc Document
	switch env.PayloadType {
	case TypeRoot:
		doc, err = decodeRoot(env.Payload)
	case TypeManifest:
		doc, err = decodeManifest(env.Payload)
	case TypeLatest:
		doc, err = decodeLatest(env.Payload)
	case TypeKeyEpoch:
		doc, err = decodeKeyEpoch(env.Payload)
	case TypeDeviceRecord:
		doc, err = decodeDeviceRecord(env.Payload)
	case TypePrivacyPolicy:
		doc, err = decodePrivacyPolicy(env.Payload)
	default:
		err = fmt.Errorf("%w: unknown payloadType %q", ErrWrongType, env.PayloadType)
	}
	if err != nil {
		return env, nil, err
	}
	return env, doc, nil
}

// Cosign adds the signatures of signers to an encoded envelope, for documents that several
// parties sign on separate machines (a threshold of trustees approving a key epoch, offline
// root keys): each signs the same payload and the envelopes are merged. The payload must
// decode as the document its type names; a signer that already signed is refused.
func Cosign(envelope []byte, signers ...Signer) ([]byte, error) {
	env, doc, err := DecodeUnverified(envelope)
	if err != nil {
		return nil, err
	}
	if doc == nil {
		return nil, fmt.Errorf("%w: nothing to sign", ErrMalformed)
	}
	add, err := signEnvelope(env.PayloadType, env.Payload, signers)
	if err != nil {
		return nil, err
	}
	merged := append(append([]Signature(nil), env.Signatures...), add.Signatures...)
	if len(merged) > MaxSignatures {
		return nil, fmt.Errorf("release: %d signatures, at most %d", len(merged), MaxSignatures)
	}
	sortSignatures(merged)
	for i := 1; i < len(merged); i++ {
		if merged[i].KeyID == merged[i-1].KeyID {
			return nil, fmt.Errorf("release: key %s has already signed", merged[i].KeyID.Short())
		}
	}
	env.Signatures = merged
	return env.Marshal()
}
