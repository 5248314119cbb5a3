package release

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"time"
)

// Manifest describes one released model version.
type Manifest struct {
	Artifacts []Artifact `json:"artifacts"` // sorted by name
	Created   time.Time  `json:"created"`
	Expires   time.Time  `json:"expires"`
	Model     string     `json:"model"`
	Parent    uint64     `json:"parent"` // version this one was trained from; 0 for the first
	Training  Training   `json:"training"`
	Version   uint64     `json:"version"`
}

// Artifact is one file of a release.
type Artifact struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"` // lowercase hex
	Size   int64  `json:"size"`
}

// Training records how the model was produced, for devices and reviewers.
type Training struct {
	Delta   float64            `json:"delta"`   // DP delta spent so far
	Devices uint64             `json:"devices"` // devices whose updates the model includes
	Epsilon float64            `json:"epsilon"` // DP epsilon spent so far
	Eval    map[string]float64 `json:"eval"`    // evaluation figures by name (e.g. "eer")
	Rounds  uint64             `json:"rounds"`  // federated rounds the model has been trained for
}

func (m *Manifest) payloadType() string { return TypeManifest }

func (m *Manifest) validate() error {
	if err := validName("manifest model", m.Model); err != nil {
		return err
	}
	if m.Version == 0 {
		return fmt.Errorf("%w: manifest version must be at least 1", ErrMalformed)
	}
	if m.Parent >= m.Version {
		return fmt.Errorf("%w: manifest parent %d must be older than version %d", ErrMalformed, m.Parent, m.Version)
	}
	if err := checkTime("manifest created", m.Created); err != nil {
		return err
	}
	if err := checkTime("manifest expires", m.Expires); err != nil {
		return err
	}
	if !m.Expires.After(m.Created) {
		return fmt.Errorf("%w: manifest expires before it is created", ErrMalformed)
	}
	if len(m.Artifacts) == 0 || len(m.Artifacts) > MaxArtifacts {
		return fmt.Errorf("%w: manifest has %d artifacts, want 1..%d", ErrMalformed, len(m.Artifacts), MaxArtifacts)
	}
	for i, a := range m.Artifacts {
		if err := validName("artifact name", a.Name); err != nil {
			return err
		}
		if i > 0 && a.Name <= m.Artifacts[i-1].Name {
			return fmt.Errorf("%w: artifacts must be sorted by name without repeats", ErrMalformed)
		}
		if err := validSHA256("artifact "+a.Name+" sha256", a.SHA256); err != nil {
			return err
		}
		if a.Size < 0 {
			return fmt.Errorf("%w: artifact %s has negative size", ErrMalformed, a.Name)
		}
	}
	if n := m.filesSize(); n > MaxReleaseBytes {
		return fmt.Errorf("%w: manifest declares %d bytes of artifacts, at most %d (MaxReleaseBytes)", ErrMalformed, n, MaxReleaseBytes)
	}
	t := m.Training
	if !finite(t.Epsilon) || t.Epsilon < 0 || !finite(t.Delta) || t.Delta < 0 || t.Delta >= 1 {
		return fmt.Errorf("%w: training epsilon %v / delta %v out of range", ErrMalformed, t.Epsilon, t.Delta)
	}
	if len(t.Eval) > MaxEvalFigures {
		return fmt.Errorf("%w: %d evaluation figures, at most %d", ErrMalformed, len(t.Eval), MaxEvalFigures)
	}
	for name, v := range t.Eval {
		if err := validName("evaluation figure", name); err != nil {
			return err
		}
		if !finite(v) {
			return fmt.Errorf("%w: evaluation figure %s is not finite", ErrMalformed, name)
		}
	}
	return nil
}

// filesSize returns what the artifacts' signed sizes add up to, or math.MaxInt64 if that
// overflows (a signed size is any int64 the signer chose).
func (m *Manifest) filesSize() int64 {
	var n int64
	for _, a := range m.Artifacts {
		if a.Size > math.MaxInt64-n {
			return math.MaxInt64
		}
		n += max(a.Size, 0)
	}
	return n
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// Artifact returns the artifact with the given name.
func (m *Manifest) Artifact(name string) (Artifact, bool) {
	for _, a := range m.Artifacts {
		if a.Name == name {
			return a, true
		}
	}
	return Artifact{}, false
}

// VerifyArtifact checks that data is the artifact name of m, by size and SHA-256.
func VerifyArtifact(m *Manifest, name string, data []byte) error {
	a, ok := m.Artifact(name)
	if !ok {
		return fmt.Errorf("%w: manifest %s v%d has no artifact %q", ErrMixAndMatch, m.Model, m.Version, name)
	}
	if int64(len(data)) != a.Size {
		return fmt.Errorf("%w: artifact %s is %d bytes, manifest says %d", ErrHashMismatch, name, len(data), a.Size)
	}
	if got := sha256Hex(data); got != a.SHA256 {
		return fmt.Errorf("%w: artifact %s has sha256 %s, manifest says %s", ErrHashMismatch, name, got[:12], a.SHA256[:12])
	}
	return nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func decodeManifest(payload []byte) (*Manifest, error) {
	var m Manifest
	if err := unmarshalStrict(payload, &m, "manifest"); err != nil {
		return nil, err
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return &m, nil
}
