package enrolment

import (
	"encoding/binary"
	"fmt"

	"github.com/vigilauth/vigil/crypto/sig"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// The ML-DSA context strings of what a device signs with its enrolment key, one per statement,
// so that a signature made for one can never be taken for another (or for an update, which
// has its own context, he.UpdateContext).
const (
	// RegisterContext is the context of the proof in a RegisterRequest.
	RegisterContext = "vigil/enrolment/register/v1"
	// RecordProofContext is the context of EnrollRequest.record_proof.
	RecordProofContext = "vigil/enrolment/record-proof/v1"
)

// registrationMessage encodes the fields of a RegisterRequest that its proof covers: device ID,
// token, region and signing key, each length-prefixed so that no two requests encode alike.
func registrationMessage(req *vigilv1.RegisterRequest) []byte {
	return fields(req.GetDeviceId(), req.GetToken(), req.GetRegion(), string(req.GetSigningKey()))
}

// SignRegistration sets req's signing key to key's public key and its proof to key's signature
// over the request's other fields, proving that the device holds the key the record will name.
func SignRegistration(req *vigilv1.RegisterRequest, key *sig.PrivateKey) error {
	req.SigningKey = key.Public().Bytes()
	proof, err := key.Sign(registrationMessage(req), RegisterContext)
	if err != nil {
		return fmt.Errorf("enrolment: %w", err)
	}
	req.Proof = proof
	return nil
}

// ProveRecord returns the record proof a device sends to the coordinator with its device record:
// its signature, under the record's key, over its device ID and the certificate request (DER)
// of its TLS key, or an empty request when it is already certified and only registers. It ties
// the record, which anyone who saw it could copy, to the one who holds its key.
func ProveRecord(key *sig.PrivateKey, deviceID string, csr []byte) ([]byte, error) {
	proof, err := key.Sign(fields(deviceID, string(csr)), RecordProofContext)
	if err != nil {
		return nil, fmt.Errorf("enrolment: %w", err)
	}
	return proof, nil
}

// VerifyRecordProof checks a proof made by ProveRecord under the record's key; the error wraps
// sig.ErrBadSignature.
func VerifyRecordProof(key *sig.PublicKey, deviceID string, csr, proof []byte) error {
	if err := key.Verify(fields(deviceID, string(csr)), proof, RecordProofContext); err != nil {
		return fmt.Errorf("enrolment: record proof: %w", err)
	}
	return nil
}

func fields(fs ...string) []byte {
	n := 0
	for _, f := range fs {
		n += 4 + len(f)
	}
	out := make([]byte, 0, n)
	for _, f := range fs {
		out = binary.BigEndian.AppendUint32(out, uint32(len(f)))
		out = append(out, f...)
	}
	return out
}
