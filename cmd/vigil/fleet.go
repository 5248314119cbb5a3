package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
)

// globalSpec is the architecture of the shared keystroke model the demo and the coordinator
// train by default.
func globalSpec() models.Spec {
	n := keystroke.NumFeatures
	return models.Spec{Layers: []int{n, 12, 4, 12, n}, Activation: models.Tanh}
}

// deviceData is one simulated device's behaviour as feature vectors: windows it trains on, and
// later windows it never trains on, which measure the global model.
type deviceData struct {
	id      string
	train   [][]float64
	heldOut [][]float64
}

// syntheticDevice returns a device typing as the synthetic typist seed.
func syntheticDevice(id string, seed uint64, windows, window int) deviceData {
	return split(id, featureRows(keystroke.NewTypist(seed).Type(windows*window), window))
}

// featureRows returns the feature vectors of the usable windows of ks.
func featureRows(ks []keystroke.Keystroke, window int) [][]float64 {
	var e keystroke.Extractor
	var rows [][]float64
	for _, w := range keystroke.Windows(ks, window) {
		f := make([]float64, keystroke.NumFeatures)
		if err := e.Extract(f, w); err == nil {
			rows = append(rows, f)
		}
	}
	return rows
}

// split keeps the last quarter of a device's windows (its most recent behaviour) out of training.
func split(id string, rows [][]float64) deviceData {
	cut := len(rows) - max(1, len(rows)/4)
	return deviceData{id: id, train: rows[:cut], heldOut: rows[cut:]}
}

// aaltoDevices returns up to n devices, one per participant file in dir with at least
// minWindows usable windows, and what reading the files dropped.
func aaltoDevices(dir string, n, window, minWindows int) ([]deviceData, keystroke.ReadStats, error) {
	files, err := keystroke.AaltoFiles(dir)
	if err != nil {
		return nil, keystroke.ReadStats{}, err
	}
	var (
		devs  []deviceData
		stats keystroke.ReadStats
	)
	for _, path := range files {
		if len(devs) == n {
			break
		}
		p, st, err := keystroke.ReadAaltoFile(path)
		if err != nil {
			return nil, stats, err
		}
		stats.Add(st)
		rows := featureRows(p.Keystrokes(), window)
		if len(rows) < minWindows {
			continue
		}
		id := "aalto-" + p.ID
		if p.ID == "" {
			id = "aalto-" + strings.TrimSuffix(filepath.Base(path), "_keystrokes.txt.gz")
		}
		devs = append(devs, split(id, rows))
	}
	if len(devs) == 0 {
		return nil, stats, errors.New("no participant has enough windows")
	}
	if len(devs) < n {
		return devs, stats, fmt.Errorf("only %d participants in %s have at least %d windows of %d keystrokes, %d devices asked for", len(devs), dir, minWindows, window, n)
	}
	return devs, stats, nil
}

// aaltoFileDevice returns a device typing as the participant of one Aalto file.
func aaltoFileDevice(id, path string, window int) (deviceData, error) {
	p, _, err := keystroke.ReadAaltoFile(path)
	if err != nil {
		return deviceData{}, err
	}
	rows := featureRows(p.Keystrokes(), window)
	if len(rows) < 4 {
		return deviceData{}, fmt.Errorf("%s has %d usable windows of %d keystrokes; at least 4 are needed", path, len(rows), window)
	}
	return split(id, rows), nil
}
