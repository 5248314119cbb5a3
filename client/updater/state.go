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
	"strings"

	"github.com/vigilauth/vigil/internal/atomicfile"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/release"
)

const (
	stateFormat = "vigil-updater-state-v2"
	// stateFormatV1 is the format before rejections recorded manifest hashes and each install
	// had a directory of its own; it is read, and replaced at the next change.
	stateFormatV1 = "vigil-updater-state-v1"
	stateFile     = "state.json"
	rootFile      = "root.json"
	versionsDir   = "versions"
	manifestArt   = "manifest.json"
	tempPrefix    = ".tmp-"
)

// slot is an installed version in state.json with the SHA-256 of each of its files, checked
// whenever the files are loaded.
type slot struct {
	Version uint64 `json:"version"`
	// Dir is the slot's directory in versions/, "<version>-<n>": every install gets one of its
	// own, so that installing another release of a version the device holds (after a rotation,
	// the release team's own release of the version number a thief's release took) never
	// writes over the files of the one running. Empty in a v1 state: "<version>".
	Dir   string            `json:"dir,omitempty"`
	Files map[string]string `json:"files"` // file name -> lowercase hex SHA-256
}

// dir returns the name of x's directory in versions/.
func (x *slot) dir() string {
	if x.Dir == "" {
		return strconv.FormatUint(x.Version, 10)
	}
	return x.Dir
}

// rejection is a release the device refused: it is not fetched again.
type rejection struct {
	Version uint64 `json:"version"`
	// ManifestSHA256 is the SHA-256 of its manifest payload, as pointers name it: another release
	// of the same version (published under new keys after a rotation) is not refused with it.
	// Empty only in a rejection read from a v1 state, which refuses every release of Version
	// until the next root update.
	ManifestSHA256 string `json:"manifest_sha256,omitempty"`
}

func (r rejection) ref() release.ReleaseRef {
	return release.ReleaseRef{Version: r.Version, ManifestSHA256: r.ManifestSHA256}
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
	// install). A staged candidate and rejected releases are not fetched again: the same
	// version and manifest, not the version alone.
	Verified  uint64      `json:"verified"`
	Current   *slot       `json:"current"`
	Previous  *slot       `json:"previous"`
	Candidate *slot       `json:"candidate"`
	Rejected  []rejection `json:"rejected"`
}

// stateV1 is state.json as updaters wrote it before format v2.
type stateV1 struct {
	Format    string   `json:"format"`
	Model     string   `json:"model"`
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

func (s *state) reject(r rejection) {
	s.Rejected = append(s.Rejected, r)
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
	for _, r := range s.Rejected {
		if r.Version == 0 || r.ManifestSHA256 != "" && !validSHA256(r.ManifestSHA256) {
			return fmt.Errorf("rejected release v%d with manifest hash %q", r.Version, r.ManifestSHA256)
		}
	}
	dirs := map[string]bool{}
	for _, x := range s.slots() {
		if x.Version == 0 {
			return errors.New("version 0 in a slot")
		}
		if !slotShape(x.Files) {
			return fmt.Errorf("version %d must list %s, %s and %s (and %s for a population model)", x.Version,
				models.ArtifactParams, models.ArtifactMeta, manifestArt, models.ArtifactPopulation)
		}
		// A path element of its own version's: nothing outside versions/.
		if x.Dir != "" && (filepath.Base(x.Dir) != x.Dir || !strings.HasPrefix(x.Dir, strconv.FormatUint(x.Version, 10)+"-")) {
			return fmt.Errorf("version %d in directory %q", x.Version, x.Dir)
		}
		if dirs[x.dir()] {
			return fmt.Errorf("two versions in directory %q", x.dir())
		}
		dirs[x.dir()] = true
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
	var format struct {
		Format string `json:"format"`
	}
	err := json.Unmarshal(data, &format)
	if err == nil && format.Format == stateFormatV1 {
		var old stateV1
		if err = decodeStrict(data, &old); err == nil {
			s = state{Format: stateFormat, Model: old.Model, Verified: old.Verified, Current: old.Current, Previous: old.Previous, Candidate: old.Candidate}
			for _, v := range old.Rejected {
				s.Rejected = append(s.Rejected, rejection{Version: v})
			}
		}
	} else if err == nil {
		err = decodeStrict(data, &s)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, stateFile, err)
	}
	if err := s.validate(model); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, stateFile, err)
	}
	return &s, nil
}

// decodeStrict decodes one JSON value into v, refusing unknown fields and trailing data.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data")
	}
	return nil
}

// validSHA256 reports whether s is a SHA-256 in lowercase hex.
func validSHA256(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
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

// versionDir is the directory of slot x.
func (d *disk) versionDir(x *slot) string {
	return filepath.Join(d.dir, versionsDir, x.dir())
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

// writeVersion writes files as a new directory versions/<v>-<n> and returns its name: a
// temporary directory, each file synced, the directory synced, then renamed into place and its
// parent synced. It never replaces a directory: the running model's may be of the same version.
func (d *disk) writeVersion(v uint64, files map[string][]byte) (string, error) {
	parent := filepath.Join(d.dir, versionsDir)
	tmp, err := os.MkdirTemp(parent, tempPrefix+strconv.FormatUint(v, 10)+"-*")
	if err != nil {
		return "", fmt.Errorf("updater: stage v%d: %w", v, err)
	}
	fail := func(err error) (string, error) {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("updater: stage v%d: %w", v, err)
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
	// The temporary name is unique among temporary directories; without its prefix it must be
	// unused too, as Rename would replace an empty directory.
	name := strings.TrimPrefix(filepath.Base(tmp), tempPrefix)
	final := filepath.Join(parent, name)
	if _, err := os.Lstat(final); !errors.Is(err, os.ErrNotExist) {
		return fail(fmt.Errorf("%s exists", final))
	}
	if err := d.step("version:rename"); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fail(err)
	}
	if err := d.step("version:syncparent"); err != nil {
		return "", err
	}
	if err := syncDir(parent); err != nil {
		return "", fmt.Errorf("updater: stage v%d: %w", v, err)
	}
	return name, nil
}

// readVersion reads the files of slot x and checks them against their recorded hashes.
func (d *disk) readVersion(x *slot) (map[string][]byte, error) {
	files := map[string][]byte{}
	for name, want := range x.Files {
		path := filepath.Join(d.versionDir(x), name)
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
		keep[x.dir()] = true
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
