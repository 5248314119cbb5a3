package release

import "fmt"

// Document is one of *Root, *Manifest, *Latest or *KeyEpoch.
type Document interface {
	payloadType() string
	validate() error
}

var (
	_ Document = (*Root)(nil)
	_ Document = (*Manifest)(nil)
	_ Document = (*Latest)(nil)
	_ Document = (*KeyEpoch)(nil)
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
	default:
		err = fmt.Errorf("%w: unknown payloadType %q", ErrWrongType, env.PayloadType)
	}
	if err != nil {
		return env, nil, err
	}
	return env, doc, nil
}
