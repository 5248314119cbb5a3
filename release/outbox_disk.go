package release

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/vigilauth/vigil/internal/atomicfile"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The outbox directory holds one file per kept release, <version, 20 digits>.bundle, and
// regions.json with the newest version each region is known to hold. Every file is written
// whole to a temporary file, synced and renamed into place, so a crash leaves the old file or
// the new one; temporary files left by a crash are removed when the outbox is opened.

// MaxQueuedBundleBytes bounds one queued release file, so that a corrupt outbox directory cannot
// make the coordinator allocate without limit. (It belongs with the caps in limits.go.)
const MaxQueuedBundleBytes = 1 << 30

const (
	queuedFormat   = "vigil-outbox-bundle-v1"
	progressFormat = "vigil-outbox-regions-v1"
	progressFile   = "regions.json"
	queuedSuffix   = ".bundle"
	tempPrefix     = ".tmp-"
)

// queuedFile is the on-disk form of a queued release. []byte fields are base64 in JSON.
type queuedFile struct {
	Format   string            `json:"format"`
	Latest   []byte            `json:"latest"`
	Manifest []byte            `json:"manifest"`
	Files    map[string][]byte `json:"files"`
}

func queuedName(v uint64) string { return fmt.Sprintf("%020d%s", v, queuedSuffix) }

func encodeQueued(b *Bundle) ([]byte, error) {
	data, err := json.Marshal(queuedFile{Format: queuedFormat, Latest: b.LatestEnvelope, Manifest: b.ManifestEnvelope, Files: b.Files})
	if err != nil {
		return nil, fmt.Errorf("release: outbox: %w", err)
	}
	return data, nil
}

func writeQueued(dir string, b *Bundle) error {
	data, err := encodeQueued(b)
	if err != nil {
		return err
	}
	return writeFileAtomic(dir, queuedName(b.Manifest.Version), data)
}

// decodeQueued strictly decodes a queued release file and checks that its parts agree (pointer
// names the manifest, every artifact present with the signed size and hash). Signatures are not
// checked: the outbox signed them itself, and devices check them.
func decodeQueued(data []byte) (*Bundle, error) {
	if len(data) > MaxQueuedBundleBytes {
		return nil, fmt.Errorf("%w: queued release of %d bytes, at most %d", ErrMalformed, len(data), MaxQueuedBundleBytes)
	}
	var f queuedFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: queued release: %v", ErrMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: queued release: trailing data", ErrMalformed)
	}
	if f.Format != queuedFormat {
		return nil, fmt.Errorf("%w: queued release format %q, want %q", ErrMalformed, f.Format, queuedFormat)
	}
	b := &Bundle{ManifestEnvelope: f.Manifest, LatestEnvelope: f.Latest, Files: f.Files}
	if _, err := bundleObjects(b); err != nil {
		return nil, err
	}
	_, doc, err := DecodeUnverified(f.Manifest)
	if err != nil {
		return nil, err
	}
	b.Manifest = doc.(*Manifest) // bundleObjects checked the type
	return b, nil
}

// loadQueue reads every kept release of model in dir and removes temporary files.
func loadQueue(dir, model string) (map[uint64]*queued, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("release: outbox: %w", err)
	}
	queue := map[uint64]*queued{}
	for _, e := range entries {
		name := e.Name()
		if atomicfile.IsTemp(name) {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return nil, fmt.Errorf("release: outbox: %w", err)
			}
			continue
		}
		digits, ok := strings.CutSuffix(name, queuedSuffix)
		if !ok {
			continue
		}
		v, err := strconv.ParseUint(digits, 10, 64)
		if err != nil || queuedName(v) != name {
			return nil, fmt.Errorf("release: outbox: %s: not a queued release name", filepath.Join(dir, name))
		}
		b, err := readQueued(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		if b.Manifest.Model != model || b.Manifest.Version != v {
			return nil, fmt.Errorf("release: outbox: %s: %w: holds %s version %d", filepath.Join(dir, name), ErrMixAndMatch, b.Manifest.Model, b.Manifest.Version)
		}
		q, err := newQueued(b)
		if err != nil {
			return nil, fmt.Errorf("release: outbox: %s: %w", filepath.Join(dir, name), err)
		}
		queue[v] = q
	}
	return queue, nil
}

func readQueued(path string) (*Bundle, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("release: outbox: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxQueuedBundleBytes+1))
	if err != nil {
		return nil, fmt.Errorf("release: outbox: %s: %w", path, err)
	}
	b, err := decodeQueued(data)
	if err != nil {
		return nil, fmt.Errorf("release: outbox: %s: %w", path, err)
	}
	return b, nil
}

func removeQueued(dir string, v uint64) error {
	if err := os.Remove(filepath.Join(dir, queuedName(v))); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("release: outbox: %w", err)
	}
	return nil
}

// progressDoc is regions.json: the newest version each region is known to hold.
type progressDoc struct {
	Format    string            `json:"format"`
	Published map[string]uint64 `json:"published"`
}

func loadProgress(dir string) (map[string]uint64, error) {
	path := filepath.Join(dir, progressFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]uint64{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("release: outbox: %w", err)
	}
	p, err := decodeProgress(data)
	if err != nil {
		return nil, fmt.Errorf("release: outbox: %s: %w", path, err)
	}
	return p, nil
}

func decodeProgress(data []byte) (map[string]uint64, error) {
	if len(data) > MaxEnvelopeBytes {
		return nil, fmt.Errorf("%w: region progress of %d bytes", ErrMalformed, len(data))
	}
	var p progressDoc
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: region progress: %v", ErrMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: region progress: trailing data", ErrMalformed)
	}
	if p.Format != progressFormat {
		return nil, fmt.Errorf("%w: region progress format %q, want %q", ErrMalformed, p.Format, progressFormat)
	}
	if p.Published == nil {
		p.Published = map[string]uint64{}
	}
	return p.Published, nil
}

func writeProgress(dir string, published map[string]uint64) error {
	data, err := json.Marshal(progressDoc{Format: progressFormat, Published: published})
	if err != nil {
		return fmt.Errorf("release: outbox: %w", err)
	}
	return writeFileAtomic(dir, progressFile, data)
}

// writeFileAtomic replaces dir/name with data.
func writeFileAtomic(dir, name string, data []byte) error {
	if err := atomicfile.Write(filepath.Join(dir, name), data, 0o600); err != nil {
		return fmt.Errorf("release: outbox: %w", err)
	}
	return nil
}
