package aggregation

import (
	"errors"
	"fmt"
	"math"
)

// Average divides sum by denominator into a new slice.
func Average(sum []float64, denominator float64) ([]float64, error) {
	if !(denominator > 0) || math.IsInf(denominator, 0) {
		return nil, fmt.Errorf("aggregation: denominator %v must be positive and finite", denominator)
	}
	avg := make([]float64, len(sum))
	for i, v := range sum {
		avg[i] = v / denominator
	}
	return avg, nil
}

// ServerOptimizer turns the averaged device update into the next global parameters.
type ServerOptimizer interface {
	// Step returns the next global parameters; it does not modify global or avgDelta.
	Step(global, avgDelta []float64) ([]float64, error)
}

// FedAvg is the server step of federated averaging (McMahan et al. 2017): the global model moves
// by the average device delta, scaled by LearningRate (1 is plain averaging of device models).
type FedAvg struct {
	LearningRate float64
}

var _ ServerOptimizer = FedAvg{}

// Step implements ServerOptimizer.
func (o FedAvg) Step(global, avgDelta []float64) ([]float64, error) {
	lr := o.LearningRate
	if lr == 0 {
		lr = 1
	}
	if !(lr > 0) || lr > 10 {
		return nil, fmt.Errorf("aggregation: server learning rate %v out of range (0, 10]", lr)
	}
	if len(global) != len(avgDelta) {
		return nil, fmt.Errorf("%w: delta has %d values, the model has %d", ErrBadUpdate, len(avgDelta), len(global))
	}
	next := make([]float64, len(global))
	for i := range global {
		next[i] = global[i] + lr*avgDelta[i]
		if math.IsNaN(next[i]) || math.IsInf(next[i], 0) {
			return nil, errors.New("aggregation: server step produced a non-finite parameter")
		}
	}
	return next, nil
}
