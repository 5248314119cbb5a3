package client

import (
	"errors"
	"fmt"
	"slices"

	"github.com/vigilauth/vigil/models"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

func specFromProto(p *vigilv1.ModelSpec) (models.Spec, error) {
	if p == nil {
		return models.Spec{}, errors.New("no model spec")
	}
	if len(p.GetLayers()) > 64 {
		return models.Spec{}, fmt.Errorf("model has %d layers", len(p.GetLayers()))
	}
	layers := make([]int, len(p.GetLayers()))
	for i, w := range p.GetLayers() {
		layers[i] = int(w)
	}
	s := models.Spec{Layers: layers, Activation: models.Activation(p.GetActivation())}
	if err := s.Validate(); err != nil {
		return models.Spec{}, err
	}
	if uint64(s.NumParams()) != p.GetNumParams() {
		return models.Spec{}, fmt.Errorf("spec claims %d parameters, its layers make %d", p.GetNumParams(), s.NumParams())
	}
	return s, nil
}

func sameSpec(a, b models.Spec) bool {
	return a.Activation == b.Activation && slices.Equal(a.Layers, b.Layers)
}
