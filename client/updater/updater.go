package updater

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/vigilauth/vigil/release"
)

// Updater keeps one device's global model up to date (see the package doc). Its methods are
// safe for concurrent use; Poll calls run one at a time.
type Updater struct {
	cfg  Config
	disk *disk

	pollMu    sync.Mutex // serialises Poll; guards verifier and rootSaved
	verifier  *release.Verifier
	rootSaved uint64 // version of the root in root.json (or the pinned one)

	mu        sync.Mutex // guards what follows
	root      uint64     // version of the newest trusted root
	rootEnv   []byte     // its signed envelope
	st        *state
	current   *Model
	previous  *Model
	candidate *Model
	shadow    *shadow                  // nil without a candidate
	refused   []release.RefusedRelease // the verifier's, after the last poll
}

// New opens the state directory (creating it on first start), loads the installed models and
// the trust state, and removes anything a crash left behind.
func New(cfg Config) (*Updater, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	d := &disk{dir: cfg.Dir}
	return open(cfg, d)
}

func open(cfg Config, d *disk) (*Updater, error) {
	if err := os.MkdirAll(filepath.Join(cfg.Dir, versionsDir), 0o700); err != nil {
		return nil, fmt.Errorf("updater: %w", err)
	}
	if err := removeTemp(cfg.Dir); err != nil {
		return nil, err
	}
	rootEnv, rootVersion, err := loadRoot(cfg.Dir, cfg.PinnedRoot)
	if err != nil {
		return nil, err
	}
	st, err := d.loadState(cfg.Model)
	if err != nil {
		return nil, err
	}
	u := &Updater{cfg: cfg, disk: d, rootSaved: rootVersion, root: rootVersion, rootEnv: rootEnv, st: st}
	if err := u.loadModels(); err != nil {
		return nil, err
	}
	if err := d.collect(u.st); err != nil {
		return nil, fmt.Errorf("updater: %w", err)
	}
	u.verifier, err = release.NewVerifier(u.verifierConfig(rootEnv))
	if err != nil {
		return nil, fmt.Errorf("updater: %w", err)
	}
	// The device may have stopped after it saved a new root and before it dropped the candidate
	// that root retired.
	if err := u.dropUntrusted(false); err != nil {
		return nil, err
	}
	u.resetShadowLocked()
	return u, nil
}

// verifierConfig is the verifier's trust state from the device's: the floor with the manifest
// that set it (when the running version set it), and the releases not to fetch again.
func (u *Updater) verifierConfig(rootEnv []byte) release.VerifierConfig {
	cfg := release.VerifierConfig{Root: rootEnv, Model: u.cfg.Model, Version: u.st.Verified}
	for _, r := range u.st.Rejected {
		cfg.Skip = append(cfg.Skip, r.ref())
	}
	if u.candidate != nil {
		cfg.Skip = append(cfg.Skip, u.candidate.ref)
	}
	if u.current != nil && u.current.Version == u.st.Verified {
		cfg.Installed = u.current.manifest
	}
	return cfg
}

// loadModels loads the versions state.json names. The running model must load; a damaged
// previous model is forgotten, and a damaged candidate is dropped and fetched again.
func (u *Updater) loadModels() error {
	load := func(x *slot) (*Model, error) {
		if x == nil {
			return nil, nil
		}
		files, err := u.disk.readVersion(x)
		if err != nil {
			return nil, err
		}
		m, err := parseModel(u.cfg.Model, x.Version, u.cfg.FeatureSet, u.cfg.Population, files)
		if err == nil {
			err = m.setManifest(files[manifestArt])
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return m, nil
	}
	var err error
	if u.current, err = load(u.st.Current); err != nil {
		return fmt.Errorf("updater: running model v%d: %w", u.st.Current.Version, err)
	}
	next := u.st.clone()
	if u.previous, err = load(u.st.Previous); err != nil {
		next.Previous = nil
	}
	if u.candidate, err = load(u.st.Candidate); err != nil {
		next.Candidate = nil
	}
	if next.Previous != u.st.Previous || next.Candidate != u.st.Candidate {
		if err := u.disk.saveState(next); err != nil {
			return err
		}
		u.st = next
	}
	return nil
}

// loadRoot returns the newer of the pinned root and the one saved in root.json.
func loadRoot(dir string, pinned []byte) ([]byte, uint64, error) {
	pr, err := release.ParseTrustedRoot(pinned)
	if err != nil {
		return nil, 0, fmt.Errorf("updater: pinned root: %w", err)
	}
	path := filepath.Join(dir, rootFile)
	saved, err := readSmall(path)
	if errors.Is(err, os.ErrNotExist) {
		return pinned, pr.Version, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("updater: %w", err)
	}
	sr, err := release.ParseTrustedRoot(saved)
	if err != nil {
		return nil, 0, fmt.Errorf("updater: %s: %w: %w", path, ErrCorrupt, err)
	}
	if sr.Version > pr.Version {
		return saved, sr.Version, nil
	}
	return pinned, pr.Version, nil
}

func removeTemp(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("updater: %w", err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("updater: %w", err)
			}
		}
	}
	return nil
}

// Poll checks the store once. If a newer release verifies, it is staged as the candidate (or,
// on a device without a model, installed) and the event says so; with nothing new the event
// is NoChange, or, once the running release's manifest has expired, an error wrapping
// release.ErrStale. Verification failures are returned as errors wrapping the release package's
// sentinels, and nothing changes. A genuine release that cannot run on this device is rejected
// for good (event Rejected).
func (u *Updater) Poll(ctx context.Context) (Event, error) {
	u.pollMu.Lock()
	defer u.pollMu.Unlock()
	// One deadline for the whole poll: a store that drips bytes cannot hold it longer.
	ctx, cancel := context.WithTimeout(ctx, u.cfg.PollTimeout)
	defer cancel()
	if err := u.syncFloor(); err != nil {
		return Event{}, err
	}
	rootBefore := u.verifier.Root().Version
	b, err := u.verifier.Fetch(ctx, u.cfg.Store, u.cfg.Now())
	if rerr := u.saveRoot(); rerr != nil && err == nil {
		err = rerr
	}
	if ferr := u.saveFloorReset(); ferr != nil && err == nil {
		err = ferr
	}
	if u.verifier.Root().Version != rootBefore {
		if derr := u.dropUntrusted(true); derr != nil && (err == nil || errors.Is(err, release.ErrUpToDate)) {
			err = derr
		}
	}
	u.mu.Lock()
	u.root, u.rootEnv = u.verifier.Root().Version, u.verifier.RootEnvelope()
	u.refused = u.verifier.Refused()
	u.mu.Unlock()
	if errors.Is(err, release.ErrUpToDate) {
		return Event{Kind: NoChange, Version: u.verifier.Version()}, nil
	}
	if err != nil {
		return Event{}, fmt.Errorf("updater: poll: %w", err)
	}
	v := b.Manifest.Version
	m, perr := parseModel(u.cfg.Model, v, u.cfg.FeatureSet, u.cfg.Population, b.Files)
	// Only Poll installs directly, and Poll calls are serialised, so what is read here holds
	// until the commit below. Promotions keep the input width (it is checked at staging).
	u.mu.Lock()
	running := u.current
	// After a rotation reset the floor, the running model was signed by keys the root no
	// longer trusts: a genuine release replaces it directly, without a shadow comparison
	// against it.
	direct := running == nil || u.st.Verified < running.Version
	population := u.cfg.Population != nil // nothing to compare in shadow: installed at once
	u.mu.Unlock()
	if perr == nil && population && u.cfg.PopulationBounds != nil {
		if err := u.cfg.PopulationBounds.CheckPopulation(m.Population); err != nil {
			perr = fmt.Errorf("%w: %s v%d: %w", ErrIncompatible, u.cfg.Model, v, err)
		}
	}
	if perr == nil && !direct && !population && m.Spec.InputDim() != running.Spec.InputDim() {
		perr = fmt.Errorf("%w: v%d reads %d features, the running model %d", ErrIncompatible, v, m.Spec.InputDim(), running.Spec.InputDim())
	}
	ref, err := manifestRef(v, b.ManifestEnvelope)
	if err != nil {
		return Event{}, fmt.Errorf("updater: poll: %w", err)
	}
	var x *slot
	if perr == nil {
		m.manifest, m.ref = b.ManifestEnvelope, ref
		// Written outside the lock, so that scoring is not held up by the disk: no other
		// operation touches a directory the state does not name, and the new one is never one
		// it names.
		files := keep(b.Files, population)
		files[manifestArt] = b.ManifestEnvelope
		dir, err := u.disk.writeVersion(v, files)
		if err != nil {
			return Event{}, err
		}
		x = &slot{Version: v, Dir: dir, Files: map[string]string{}}
		for name, data := range files {
			x.Files[name] = sha256Hex(data)
		}
	}

	u.mu.Lock()
	defer u.mu.Unlock()
	next := u.st.clone()
	if perr != nil {
		// Refused: remembered so it is not fetched again, but the floor stays where it is.
		next.reject(rejection{Version: v, ManifestSHA256: ref.ManifestSHA256})
		if err := u.commitLocked(next); err != nil {
			return Event{}, err
		}
		u.verifier.Skip(ref)
		return Event{Kind: Rejected, Version: v, Reason: perr}, nil
	}
	ev := Event{Kind: Staged, Version: v}
	if direct || population {
		next.Current, next.Previous, next.Candidate = x, nil, nil
		if !direct {
			next.Previous = u.st.Current // a population model replaced is kept for Rollback
		}
		next.Verified = v
		ev = Event{Kind: Installed, Version: v}
		if running != nil {
			ev.Replaced = running.Version
		}
	} else {
		next.Candidate = x
	}
	if err := u.commitLocked(next); err != nil {
		return Event{}, err
	}
	if ev.Kind == Installed {
		if err := u.verifier.SetInstalledManifest(b.ManifestEnvelope); err != nil {
			return Event{}, fmt.Errorf("updater: %w", err)
		}
		prev := (*Model)(nil)
		if next.Previous != nil {
			prev = u.current
		}
		u.current, u.previous, u.candidate = m, prev, nil
	} else {
		u.verifier.Skip(ref)
		u.candidate = m
	}
	u.resetShadowLocked()
	return ev, nil
}

// dropUntrusted drops what the trusted root no longer vouches for. A candidate whose manifest
// does not verify under it was signed by keys a rotation retired, perhaps stolen ones:
// promoting it would install the thief's release, and skipping its pointer would hide a release
// the release team publishes under the new keys. With legacy set (the root has just changed),
// rejections read from a v1 state go too: without a manifest hash they refuse every release of
// their version, the release team's included.
func (u *Updater) dropUntrusted(legacy bool) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	next := u.st.clone()
	var unskip []release.ReleaseRef
	drop := u.candidate != nil
	if drop {
		if _, err := release.VerifyDocument(u.verifier.Root(), u.candidate.manifest); err == nil {
			drop = false
		}
	}
	if drop {
		next.Candidate = nil
		unskip = append(unskip, u.candidate.ref)
	}
	if legacy {
		next.Rejected = slices.DeleteFunc(next.Rejected, func(r rejection) bool {
			if r.ManifestSHA256 == "" {
				unskip = append(unskip, r.ref())
				return true
			}
			return false
		})
	}
	if len(unskip) == 0 {
		return nil
	}
	if err := u.commitLocked(next); err != nil {
		return err
	}
	for _, r := range unskip {
		u.verifier.Unskip(r)
	}
	if drop {
		u.candidate = nil
		u.resetShadowLocked()
	}
	return nil
}

// syncFloor raises the verifier's floor to a promotion made since the last poll. A promoted
// release whose manifest no longer verifies (a rotation retired its key while it was in
// shadow) cannot be a floor: the floor is reset instead, as the rotation would have done.
func (u *Updater) syncFloor() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	floor, cur := u.st.Verified, u.current
	if cur == nil || cur.Version != floor || u.verifier.Version() >= floor {
		return nil
	}
	if err := u.verifier.SetInstalledManifest(cur.manifest); err == nil {
		return nil
	}
	next := u.st.clone()
	next.Verified = u.verifier.Version()
	return u.commitLocked(next)
}

// saveFloorReset persists a floor that a root rotation reset.
func (u *Updater) saveFloorReset() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if f := u.verifier.Version(); f < u.st.Verified {
		next := u.st.clone()
		next.Verified = f
		return u.commitLocked(next)
	}
	return nil
}

// commitLocked makes next the state (replacing state.json is the switch) and removes the
// versions next no longer names. The caller updates the models (and Poll the verifier).
func (u *Updater) commitLocked(next *state) error {
	if err := u.disk.saveState(next); err != nil {
		return err
	}
	prev := u.st
	u.st = next
	// Remove the directories next no longer names. Left-over files cost only space, and the
	// next start removes them.
	keep := map[string]bool{}
	for _, x := range next.slots() {
		keep[x.dir()] = true
	}
	for _, x := range prev.slots() {
		if !keep[x.dir()] {
			_ = os.RemoveAll(u.disk.versionDir(x))
		}
	}
	return nil
}

// saveRoot persists the verifier's root if a rotation made it newer than the saved one.
func (u *Updater) saveRoot() error {
	r := u.verifier.Root()
	if r.Version <= u.rootSaved {
		return nil
	}
	if err := u.disk.replaceFile(rootFile, u.verifier.RootEnvelope()); err != nil {
		return fmt.Errorf("updater: save %s: %w", rootFile, err)
	}
	u.rootSaved = r.Version
	return nil
}

// Root returns the signed envelope of the newest root of trust the updater has verified,
// rotation by rotation from the pinned one, for the device's other checks against the root
// (privacy policies, key epochs) to follow it.
func (u *Updater) Root() []byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.rootEnv
}

// Current returns the running model, or nil if none is installed yet.
func (u *Updater) Current() *Model {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.current
}

// Candidate returns the model in shadow evaluation, or nil.
func (u *Updater) Candidate() *Model {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.candidate
}

// Previous returns the model Rollback would return to, or nil.
func (u *Updater) Previous() *Model {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.previous
}

// Status describes the updater's state, for logs and the CLI.
type Status struct {
	Model                        string
	Current, Previous, Candidate uint64 // 0: none
	// Verified is the rollback floor: the newest version verified and installed; nothing older
	// is accepted. It is below Current after a root rotation dropped the keys that signed it.
	Verified uint64
	// Rejected lists the versions of the most recent rejected releases.
	Rejected []uint64
	// ShadowWindows counts the windows the candidate has been scored on.
	ShadowWindows int
	// RootVersion is the version of the newest trusted root.
	RootVersion uint64
	// Refused lists the releases whose files matched no stored copy when last read (tampered or
	// truncated in the store), each read again at its Retry; until then every poll whose
	// pointer names one fails with an error wrapping release.ErrHashMismatch.
	Refused []release.RefusedRelease
}

// Status returns the updater's state.
func (u *Updater) Status() Status {
	u.mu.Lock()
	defer u.mu.Unlock()
	ver := func(x *slot) uint64 {
		if x == nil {
			return 0
		}
		return x.Version
	}
	s := Status{
		Model: u.cfg.Model, Current: ver(u.st.Current), Previous: ver(u.st.Previous), Candidate: ver(u.st.Candidate),
		Verified: u.st.Verified, RootVersion: u.root,
	}
	for _, r := range u.st.Rejected {
		s.Rejected = append(s.Rejected, r.Version)
	}
	if u.shadow != nil {
		s.ShadowWindows = u.shadow.n
	}
	s.Refused = slices.Clone(u.refused)
	return s
}
