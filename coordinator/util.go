package coordinator

import (
	"slices"

	"github.com/vigilauth/vigil/models"
)

func specEqual(a, b models.Spec) bool {
	return a.Activation == b.Activation && slices.Equal(a.Layers, b.Layers)
}
