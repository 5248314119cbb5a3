package release

import (
	"fmt"
	"sort"
	"time"
)

// Spec describes a release to build.
type Spec struct {
	Model    string
	Version  uint64
	Parent   uint64
	Created  time.Time
	Expires  time.Time // manifest expiry
	Training Training
	Files    map[string][]byte // artifact name -> bytes

	// LatestExpires is the expiry of the pointer; keep it short (hours). Devices refuse one
	// more than MaxPointerLifetime ahead of their clock, and Publisher refuses to publish it.
	LatestExpires time.Time
}

// Build hashes the files, signs the manifest with the release signer and the pointer with the
// timestamp signer, and returns the bundle to publish.
func Build(s Spec, release, timestamp Signer) (*Bundle, error) {
	m := &Manifest{
		Created:  canonicalTime(s.Created),
		Expires:  canonicalTime(s.Expires),
		Model:    s.Model,
		Parent:   s.Parent,
		Training: s.Training,
		Version:  s.Version,
	}
	names := make([]string, 0, len(s.Files))
	for name := range s.Files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		data := s.Files[name]
		m.Artifacts = append(m.Artifacts, Artifact{Name: name, SHA256: sha256Hex(data), Size: int64(len(data))})
	}
	menv, err := Sign(m, release)
	if err != nil {
		return nil, fmt.Errorf("release: manifest: %w", err)
	}
	lenv, err := SignLatestFor(m, s.LatestExpires, timestamp)
	if err != nil {
		return nil, err
	}
	files := make(map[string][]byte, len(s.Files))
	for k, v := range s.Files {
		files[k] = v
	}
	return &Bundle{Manifest: m, ManifestEnvelope: menv, LatestEnvelope: lenv, Files: files}, nil
}

// SignLatestFor signs a pointer to manifest m that expires at expires. The coordinator calls it
// to re-sign the pointer before the previous one expires.
func SignLatestFor(m *Manifest, expires time.Time, timestamp Signer) ([]byte, error) {
	payload, err := marshalCanonical(m)
	if err != nil {
		return nil, err
	}
	l := &Latest{Expires: canonicalTime(expires), ManifestSHA256: sha256Hex(payload), Model: m.Model, Version: m.Version}
	env, err := Sign(l, timestamp)
	if err != nil {
		return nil, fmt.Errorf("release: latest pointer: %w", err)
	}
	return env, nil
}
