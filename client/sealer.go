package client

import (
	"context"
	"fmt"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// Sealer protects a model delta for the wire, as the task asks and the device allows.
type Sealer interface {
	Seal(ctx context.Context, t *vigilv1.Task, delta []float64) (*vigilv1.Update, error)
}

// InsecurePlaintext sends the delta in the clear, so the coordinator sees this device's update.
// It exists for debugging and must be chosen explicitly.
type InsecurePlaintext struct{}

// Seal implements Sealer.
func (InsecurePlaintext) Seal(_ context.Context, t *vigilv1.Task, delta []float64) (*vigilv1.Update, error) {
	if enc := t.GetEncryption().GetEncoding(); enc != vigilv1.UpdateEncoding_UPDATE_ENCODING_PLAINTEXT {
		return nil, fmt.Errorf("client: the task asks for %v, this device is configured for plaintext only", enc)
	}
	return &vigilv1.Update{
		Encoding:  vigilv1.UpdateEncoding_UPDATE_ENCODING_PLAINTEXT,
		Dimension: uint64(len(delta)),
		Values:    delta,
	}, nil
}
