package vigilv1

import (
	"fmt"
)

// Every size bound of the API, in one place. Servers check them before doing any work.
const (
	// MaxMessageBytes bounds any single gRPC message: an update of MaxParams parameters, in the
	// clear (8 MiB) or encrypted (128 ciphertexts of 262,232 bytes, about 33.6 MB, since
	// ciphertexts carry two moduli), with room for its envelope.
	MaxMessageBytes = 40 << 20
	// MaxParams bounds the dimension of a model and of an update.
	MaxParams = 1 << 20
	// MaxCiphertexts bounds the ciphertexts of one encrypted update or sum.
	MaxCiphertexts = 1024
	// MaxCiphertextBytes bounds one serialised ciphertext or decryption share.
	MaxCiphertextBytes = 1 << 20
	// MaxIDLen bounds device, trustee and region identifiers.
	MaxIDLen = 64
	// MaxTokenLen bounds enrolment tokens.
	MaxTokenLen = 256
	// MaxCertificateBytes bounds certificates and certificate requests.
	MaxCertificateBytes = 16 << 10
	// MaxDeviceRecordBytes bounds a signed device record: an envelope holding an ML-DSA-65
	// public key and one or a few ML-DSA-65 signatures, all base64, about 8 KB with one.
	MaxDeviceRecordBytes = 32 << 10
	// NonceSize is the exact length of a task nonce.
	NonceSize = 16
)

// ValidID reports whether id is a well-formed device, trustee or region identifier: 1 to
// MaxIDLen characters of [A-Za-z0-9._-]. what names the field in the error.
func ValidID(what, id string) error {
	if id == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("%s is %d bytes long, the limit is %d", what, len(id), MaxIDLen)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%s %q has the character %q; only letters, digits, '.', '_' and '-' are allowed", what, id, r)
		}
	}
	return nil
}
