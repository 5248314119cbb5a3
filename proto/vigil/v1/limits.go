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
	// MaxInstalledModels bounds the models a device reports running (GetTaskRequest.installed):
	// a device runs a few, and the coordinator keeps each device's report in memory.
	MaxInstalledModels = 8

	// MaxEnrollRequestBytes bounds an EnrollRequest: a certificate request, a device record
	// and its proof, a token: a few KiB, with room.
	MaxEnrollRequestBytes = 128 << 10
	// MaxSmallRequestBytes bounds the request of every method that carries identifiers and
	// versions only (a GetTaskRequest is under 200 bytes).
	MaxSmallRequestBytes = 64 << 10
)

// maxRequestBytes is the table of per-method request limits, by full method name. Only the
// methods that carry an update or a contribution accept MaxMessageBytes.
var maxRequestBytes = map[string]int{
	Coordinator_Enroll_FullMethodName:       MaxEnrollRequestBytes,
	Coordinator_GetTask_FullMethodName:      MaxSmallRequestBytes,
	Coordinator_SubmitUpdate_FullMethodName: MaxMessageBytes,
	Coordinator_GetModel_FullMethodName:     MaxSmallRequestBytes,
	Coordinator_GetKeyEpoch_FullMethodName:  MaxSmallRequestBytes,

	Trustee_Info_FullMethodName:            MaxSmallRequestBytes,
	Trustee_CommitSum_FullMethodName:       MaxMessageBytes, // per message: one contribution
	Trustee_CommitPart_FullMethodName:      MaxMessageBytes,
	Trustee_DecryptionShare_FullMethodName: MaxSmallRequestBytes,

	Admin_Status_FullMethodName:       MaxSmallRequestBytes,
	Admin_PauseRounds_FullMethodName:  MaxSmallRequestBytes,
	Admin_ResumeRounds_FullMethodName: MaxSmallRequestBytes,
	Admin_AbortRound_FullMethodName:   MaxSmallRequestBytes,
	Admin_RemoveDevice_FullMethodName: MaxSmallRequestBytes,
}

// MaxRequestBytes returns the largest request message method, a full method name such as
// Coordinator_GetTask_FullMethodName, accepts: MaxSmallRequestBytes for a method not in the
// table, so that a method added without thought gets the small limit, not the large one.
func MaxRequestBytes(method string) int {
	if n, ok := maxRequestBytes[method]; ok {
		return n
	}
	return MaxSmallRequestBytes
}

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

// ValidInstalled reports whether installed, a device's report of what it runs (model name ->
// release version), is well formed: at most MaxInstalledModels models, each named as an
// identifier, each with a version above zero (zero is "none", which a device leaves out).
func ValidInstalled(installed map[string]uint64) error {
	if len(installed) > MaxInstalledModels {
		return fmt.Errorf("installed names %d models, the limit is %d", len(installed), MaxInstalledModels)
	}
	for model, v := range installed {
		if err := ValidID("installed model", model); err != nil {
			return err
		}
		if v == 0 {
			return fmt.Errorf("installed model %q has version 0; leave out a model that is not installed", model)
		}
	}
	return nil
}
