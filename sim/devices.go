package sim

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
	"github.com/vigilauth/vigil/models/mouse"
)

// FeatureSet is what the federated model is learnt over: summaries of keystroke windows, the
// same rows every device's personal autoencoder (models.UserModel) learns from.
const FeatureSet = keystroke.TimingFeatureSet

// GlobalSpec is the global autoencoder the federation trains: the architecture of the user
// models' autoencoder, which starts from it.
func GlobalSpec() models.Spec {
	spec, err := models.AutoencoderSpec(keystroke.NewLayout(), models.UserModelConfig{})
	if err != nil {
		// The layout and the default configuration are constants; TestGlobalSpec checks them.
		panic(fmt.Sprintf("vigil: default model spec: %v", err))
	}
	return spec
}

// Device is one simulated device's behaviour as the rows it learns from: normalised
// summaries of windows it trains on (Features), and of later windows it never trains on
// (HeldOut), which measure the global model.
type Device struct {
	ID      string
	HeldOut [][]float64
	train   [][]float64
	// windows are the timings of disjoint windows of the training part: the device's
	// enrolment, which population rounds describe; mouse its mouse enrolment, one window per
	// action (none for a recorded participant: the Aalto data has no mouse).
	windows, mouse []models.Window
}

// Features implements client.LocalData.
func (d Device) Features() [][]float64 { return d.train }

// Windows implements client.WindowData.
func (d Device) Windows() []models.Window { return d.windows }

// WindowsOf implements client.FeatureWindows.
func (d Device) WindowsOf(featureSet string) []models.Window {
	switch featureSet {
	case keystroke.TimingFeatureSet:
		return d.windows
	case mouse.FeatureSet:
		return d.mouse
	}
	return nil
}

// mouseActions is how many actions enrol a simulated device's mouse, as the agent's default
// (agent.Config.MouseEnrolActions).
const mouseActions = 100

// SyntheticDevice returns a device typing as the synthetic typist seed and moving its pointer
// as the synthetic mouse user seed.
func SyntheticDevice(id string, seed uint64, windows, window int) (Device, error) {
	d, err := deviceRows(id, keystroke.NewTypist(seed).Type(windows*window), window)
	if err == nil {
		d.mouse = mouse.NewMover(seed).Windows(mouseActions)
	}
	return d, err
}

// deviceRows keeps the last quarter of a device's keystrokes (its most recent behaviour) out of
// training, summarises windows every half window in each part, and normalises both with the
// device's own normaliser fitted on its training part, as a user model does.
func deviceRows(id string, ks []keystroke.Keystroke, window int) (Device, error) {
	cut := len(ks) - len(ks)/4
	train, heldOut := keystroke.Summaries(ks[:cut], window, window/2), keystroke.Summaries(ks[cut:], window, window/2)
	if len(train) < 4 || len(heldOut) < 1 {
		return Device{}, fmt.Errorf("device %s: %d and %d usable windows of %d keystrokes; need at least 4 to train and 1 to hold out",
			id, len(train), len(heldOut), window)
	}
	norm, rows, err := models.NormaliseSummaries(keystroke.NewLayout(), nil, train, models.UserModelConfig{})
	if err != nil {
		return Device{}, fmt.Errorf("device %s: %w", id, err)
	}
	d := Device{ID: id, train: rows, windows: keystroke.TimingWindows(ks[:cut], window)}
	for _, r := range heldOut {
		out := make([]float64, len(r))
		norm.Apply(out, r)
		d.HeldOut = append(d.HeldOut, out)
	}
	return d, nil
}

// AaltoDevices returns up to n devices, one per participant file in dir with at least
// minWindows usable windows, and what reading the files dropped.
func AaltoDevices(dir string, n, window, minWindows int) ([]Device, keystroke.ReadStats, error) {
	files, err := keystroke.AaltoFiles(dir)
	if err != nil {
		return nil, keystroke.ReadStats{}, err
	}
	var (
		devs  []Device
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
		id := "aalto-" + p.ID
		if p.ID == "" {
			id = "aalto-" + strings.TrimSuffix(filepath.Base(path), "_keystrokes.txt.gz")
		}
		d, err := deviceRows(id, p.Keystrokes(), window)
		if err != nil || len(d.train) < minWindows {
			continue
		}
		devs = append(devs, d)
	}
	if len(devs) == 0 {
		return nil, stats, errors.New("no participant has enough windows")
	}
	if len(devs) < n {
		return devs, stats, fmt.Errorf("only %d participants in %s have at least %d windows of %d keystrokes, %d devices asked for", len(devs), dir, minWindows, window, n)
	}
	return devs, stats, nil
}

// AaltoFileDevice returns a device typing as the participant of one Aalto file.
func AaltoFileDevice(id, path string, window int) (Device, error) {
	p, _, err := keystroke.ReadAaltoFile(path)
	if err != nil {
		return Device{}, err
	}
	d, err := deviceRows(id, p.Keystrokes(), window)
	if err != nil {
		return Device{}, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}
