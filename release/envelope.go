package release

import (
	"fmt"
	"strconv"

	"github.com/vigilauth/vigil/crypto/sig"
)

// Payload types, one per document, bound into every signature through PAE.
const (
	TypeRoot     = "application/vnd.vigil.root.v1+json"
	TypeManifest = "application/vnd.vigil.manifest.v1+json"
	TypeLatest   = "application/vnd.vigil.latest.v1+json"
	TypeKeyEpoch = "application/vnd.vigil.keyepoch.v1+json"
	// TypeDeviceRecord and TypePrivacyPolicy are signed by the enrolment and privacy roles.
	TypeDeviceRecord  = "application/vnd.vigil.device.v1+json"
	TypePrivacyPolicy = "application/vnd.vigil.privacy-policy.v1+json"
)

// Signer signs documents. *sig.PrivateKey implements it; a hardware-backed key can too.
type Signer interface {
	ID() sig.KeyID
	Sign(message []byte, context string) ([]byte, error)
}

var _ Signer = (*sig.PrivateKey)(nil)

// Envelope is a DSSE v1 envelope. Payload and signatures are base64 in JSON.
type Envelope struct {
	Payload     []byte      `json:"payload"`
	PayloadType string      `json:"payloadType"`
	Signatures  []Signature `json:"signatures"`
}

// Signature is one signature of an envelope.
type Signature struct {
	KeyID sig.KeyID `json:"keyid"`
	Sig   []byte    `json:"sig"`
}

// PAE is DSSE's pre-authentication encoding, the bytes every signature covers:
// "DSSEv1" SP len(type) SP type SP len(payload) SP payload, lengths in ASCII decimal.
func PAE(payloadType string, payload []byte) []byte {
	b := make([]byte, 0, 32+len(payloadType)+len(payload))
	b = append(b, "DSSEv1 "...)
	b = strconv.AppendInt(b, int64(len(payloadType)), 10)
	b = append(b, ' ')
	b = append(b, payloadType...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(payload)), 10)
	b = append(b, ' ')
	return append(b, payload...)
}

// sigContext is the FIPS 204 context string of envelope signatures. It is empty so that the
// signatures are plain DSSE over PAE; PAE's payloadType already separates document types.
const sigContext = ""

// signEnvelope signs payload with every signer; signatures are sorted by key ID.
func signEnvelope(payloadType string, payload []byte, signers []Signer) (*Envelope, error) {
	if len(signers) == 0 {
		return nil, fmt.Errorf("release: no signer given")
	}
	if len(signers) > MaxSignatures {
		return nil, fmt.Errorf("release: %d signers, at most %d", len(signers), MaxSignatures)
	}
	msg := PAE(payloadType, payload)
	e := &Envelope{Payload: payload, PayloadType: payloadType}
	for _, s := range signers {
		sg, err := s.Sign(msg, sigContext)
		if err != nil {
			return nil, fmt.Errorf("release: signing with key %s: %w", s.ID().Short(), err)
		}
		e.Signatures = append(e.Signatures, Signature{KeyID: s.ID(), Sig: sg})
	}
	sortSignatures(e.Signatures)
	for i := 1; i < len(e.Signatures); i++ {
		if e.Signatures[i].KeyID == e.Signatures[i-1].KeyID {
			return nil, fmt.Errorf("release: key %s given twice", e.Signatures[i].KeyID.Short())
		}
	}
	return e, nil
}

func sortSignatures(s []Signature) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].KeyID < s[j-1].KeyID; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// Marshal returns the canonical encoding of e.
func (e *Envelope) Marshal() ([]byte, error) { return marshalCanonical(e) }

// ParseEnvelope strictly decodes an envelope. It checks form only (sizes, key ID syntax,
// signature order); it verifies no signature.
func ParseEnvelope(data []byte) (*Envelope, error) {
	if len(data) > MaxEnvelopeBytes {
		return nil, fmt.Errorf("%w: envelope is %d bytes, at most %d", ErrMalformed, len(data), MaxEnvelopeBytes)
	}
	var e Envelope
	if err := unmarshalStrict(data, &e, "envelope"); err != nil {
		return nil, err
	}
	if e.PayloadType == "" || len(e.PayloadType) > MaxPayloadTypeLen {
		return nil, fmt.Errorf("%w: envelope payloadType must be 1..%d bytes", ErrMalformed, MaxPayloadTypeLen)
	}
	if len(e.Signatures) == 0 || len(e.Signatures) > MaxSignatures {
		return nil, fmt.Errorf("%w: envelope has %d signatures, want 1..%d", ErrMalformed, len(e.Signatures), MaxSignatures)
	}
	for i, s := range e.Signatures {
		if !s.KeyID.Valid() {
			return nil, fmt.Errorf("%w: signature %d: keyid is not a hex SHA-256", ErrMalformed, i)
		}
		if len(s.Sig) != sig.SignatureSize {
			return nil, fmt.Errorf("%w: signature %d by %s is %d bytes, want %d", ErrMalformed, i, s.KeyID.Short(), len(s.Sig), sig.SignatureSize)
		}
		if i > 0 && s.KeyID <= e.Signatures[i-1].KeyID {
			return nil, fmt.Errorf("%w: signatures must be sorted by keyid without repeats", ErrMalformed)
		}
	}
	return &e, nil
}
