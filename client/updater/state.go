package updater

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"

	"github.com/vigilauth/vigil/internal/atomicfile"
	"github.com/vigilauth/vigil/models"
)

const (
	stateFormat = "vigil-updater-state-v1"
	stateFile   = "state.json"
	rootFile    = "root.json"
	versionsDir = "versions"
	manifestArt = "manifest.json"
	tempPrefix  = ".tmp-"
)

// slot is an installed version in state.json with the SHA-256 of each of its files, checked
// whenever the files are loaded.
type slot struct {
	Version uint64            `json:"version"`
	Files   map[string]string `json:"files"` // file name -> lowercase hex SHA-256
}

// state is state.json, the single record of what the device runs. Replacing it is the switch
// that installs, promotes, rejects and rolls back.
type state struct {
	Format string `json:"format"`
	Model  string `json:"model"`
	// Verified is the rollback floor: the newest version the device verified and installed
	// (first install or promotion). The verifier refuses anything older. It is never raised by a
	// release the device refused or only staged, so a release signed with stolen keys at version
	// 2^64-1 cannot lock out what follows; and a root rotation that drops the keys which signed
	// the installed release resets it to 0 (then Verified < Current.Version until the next
	// install). A staged candidate and rejected versions are not fetched again.
	Verified  uint64   `json:"verified"`
	Current   *slot    `json:"current"`
	Previous  *slot    `json:"previous"`
	Candidate *slot    `json:"candidate"`
	Rejected  []uint64 `json:"rejected"`
}

func (s *state) clone() *state {
	c := *s
	c.Rejected = slices.Clone(s.Rejected)
	return &c
}

func (s *state) reject(v uint64) {
	s.Rejected = append(s.Rejected, v)
	if len(s.Rejected) > maxRejected {
		s.Rejected = s.Rejected[len(s.Rejected)-maxRejected:]
	}
}

// slots returns the versions state.json names.
func (s *state) slots() []*slot {
	var out []*slot
	for _, x := range []*slot{s.Current, s.Previous, s.Candidate} {
		if x != nil {
			out = append(out, x)
		}
	}
	return out
}

func (s *state) validate(model string) error {
	if s.Format != stateFormat {
		return fmt.Errorf("format %q, want %q", s.Format, stateFormat)
	}
	if s.Model != model {
		return fmt.Errorf("state is for model %q, the device runs %q", s.Model, model)
	}
	if len(s.Rejected) > maxRejected {
		return fmt.Errorf("%d rejected versions, at most %d", len(s.Rejected), maxRejected)
	}
	for _, x := range s.slots() {
		if x.Version == 0 {
			return errors.New("version 0 in a slot")
		}
		if !slotShape(x.Files) {
			return fmt.Errorf("version %d must list %s, %s and %s (and %s for a population model)", x.Version,
				models.ArtifactParams, models.ArtifactMeta, manifestArt, models.ArtifactPopulation)
		}
	}
	if s.Current == nil && (s.Previous != nil || s.Candidate != nil) {
		return errors.New("previous or candidate without a current model")
	}
	if s.Previous != nil && s.Previous.Version >= s.Current.Version {
		return fmt.Errorf("previous version %d is not older than current %d", s.Previous.Version, s.Current.Version)
	}
	if s.Candidate != nil && s.Candidate.Version <= s.Current.Version {
		return fmt.Errorf("candidate version %d is not newer than current %d", s.Candidate.Version, s.Current.Version)
	}
	return nil
}

// slotShape reports whether a slot lists the files of a version, and nothing else: parameters,
// metadata and manifest, and for a population model its population.
func slotShape(files map[string]string) bool {
	n := 3
	if files[models.ArtifactPopulation] != "" {
		n++
	}
	return files[models.ArtifactParams] != "" && files[models.ArtifactMeta] != "" && files[manifestArt] != "" && len(files) == n
}

func decodeState(data []byte, model string) (*state, error) {
	if len(data) > maxStateBytes {
		return nil, fmt.Errorf("%w: %s is %d bytes", ErrCorrupt, stateFile, len(data))
	}
	var s state
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, stateFile, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: %s: trailing data", ErrCorrupt, stateFile)
	}
	if err := s.validate(model); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, stateFile, err)
	}
	return &s, nil
}

// disk does the updater's file system work. Every step that a crash could interrupt asks
// crash first, so tests can stop the work at each of them.
type disk struct {
	dir   string
	crash func(step string) error // nil in production
}

func (d *disk) step(name string) error {
	if d.crash == nil {
		return nil
	}
	return d.crash(name)
}

func (d *disk) versionDir(v uint64) string {
	return filepath.Join(d.dir, versionsDir, strconv.FormatUint(v, 10))
}

// writeFile writes a new file and syncs it. An injected crash leaves half of it written.
func (d *disk) writeFile(path string, data []byte, step string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := d.step(step); err != nil {
		f.Write(data[:len(data)/2])
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := d.step(step + ":sync"); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// replaceFile atomically replaces dir/name with data.
func (d *disk) replaceFile(name string, data []byte) error {
	tmp := filepath.Join(d.dir, tempPrefix+name)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := d.writeFile(tmp, data, name+":write"); err != nil {
		return err
	}
	if err := d.step(name + ":rename"); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(d.dir, name)); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := d.step(name + ":syncdir"); err != nil {
		return err
	}
	return syncDir(d.dir)
}

func (d *disk) saveState(s *state) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := d.replaceFile(stateFile, data); err != nil {
		return fmt.Errorf("updater: save %s: %w", stateFile, err)
	}
	return nil
}

func (d *disk) loadState(model string) (*state, error) {
	data, err := readSmall(filepath.Join(d.dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return &state{Format: stateFormat, Model: model}, nil
	}
	if err != nil {
		return nil, err
	}
	s, err := decodeState(data, model)
	if err != nil {
		return nil, fmt.Errorf("updater: %s: %w", filepath.Join(d.dir, stateFile), err)
	}
	return s, nil
}

// writeVersion writes files as versions/<v>: a temporary directory, each file synced, the
// directory synced, then renamed into place and its parent synced.
func (d *disk) writeVersion(v uint64, files map[string][]byte) error {
	parent := filepath.Join(d.dir, versionsDir)
	tmp, err := os.MkdirTemp(parent, tempPrefix+strconv.FormatUint(v, 10)+"-*")
	if err != nil {
		return fmt.Errorf("updater: stage v%d: %w", v, err)
	}
	fail := func(err error) error {
		os.RemoveAll(tmp)
		return fmt.Errorf("updater: stage v%d: %w", v, err)
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := d.writeFile(filepath.Join(tmp, name), files[name], "version:"+name); err != nil {
			return fail(err)
		}
	}
	if err := d.step("version:syncdir"); err != nil {
		return fail(err)
	}
	if err := syncDir(tmp); err != nil {
		return fail(err)
	}
	final := d.versionDir(v)
	// A directory of this version not named by state.json is left over from a crash.
	if err := os.RemoveAll(final); err != nil {
		return fail(err)
	}
	if err := d.step("version:rename"); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fail(err)
	}
	if err := d.step("version:syncparent"); err != nil {
		return err
	}
	if err := syncDir(parent); err != nil {
		return fmt.Errorf("updater: stage v%d: %w", v, err)
	}
	return nil
}

// readVersion reads the files of slot x and checks them against their recorded hashes.
func (d *disk) readVersion(x *slot) (map[string][]byte, error) {
	files := map[string][]byte{}
	for name, want := range x.Files {
		path := filepath.Join(d.versionDir(x.Version), name)
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		if got := sha256Hex(data); got != want {
			return nil, fmt.Errorf("%w: %s has sha256 %s, state records %s", ErrCorrupt, path, got, want)
		}
		files[name] = data
	}
	return files, nil
}

// collect removes every entry of versions/ that s does not name: temporary directories and
// versions left behind by a crash. It runs only when the state directory is opened.
func (d *disk) collect(s *state) error {
	keep := map[string]bool{}
	for _, x := range s.slots() {
		keep[strconv.FormatUint(x.Version, 10)] = true
	}
	entries, err := os.ReadDir(filepath.Join(d.dir, versionsDir))
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !keep[e.Name()] {
			if err := os.RemoveAll(filepath.Join(d.dir, versionsDir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxStateBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxStateBytes {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrCorrupt, path, maxStateBytes)
	}
	return data, nil
}

func syncDir(dir string) error { return atomicfile.SyncDir(dir) }
