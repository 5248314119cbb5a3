package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/store"
)

func runReleasePublish(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("release publish", stdout, envMinIO...)
	from := fs.String("from", "", "staging `DIR` written by `vigil release sign`")
	var to listFlag
	fs.Var(&to, "to", "destination `LOCATIONS`: directories or s3://bucket[/prefix] (repeatable, comma-separated)")
	attempts := fs.Int("attempts", 8, "tries per destination before giving up")
	backoff := fs.Duration("backoff", 500*time.Millisecond, "first wait after a failure; doubles up to 30s")
	all := fs.Bool("all", false, "also publish every older staged release a region lacks (default: only the one each staged pointer names)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: vigil release publish --from DIR --to LOCATION[,LOCATION...] [--all]

Verifies everything it will write against the staged roots first (what devices fetch against the
newest root, older key epochs and with --all older releases against the root of their time) and
writes nothing if anything fails. A newest staged root still short of its signatures (a ceremony
under way) is left out with a warning, and nothing above the root before it is published.
Then publishes, per region and in order: roots, key epochs, releases (artifacts, manifest, then
the pointer). A region that is down does not hold up the others; run the same command again
when it is back. s3:// regions are written with the publisher credentials that
'vigil release init-region' set up, never with the admin's.
Exit codes: 0 every region verified; 1 refused (nothing written); 2 usage; 4 a region failed.`)
		printFlags(fs.Output(), fs)
		printEnv(fs.Output(), envMinIO)
	}
	if err := parseReleaseFlags(fs, args, stdout); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	fail := func(err error) error { return usageErr(fmt.Errorf("release publish: %w", err)) }
	if *from == "" {
		return fail(errors.New("flag -from is required"))
	}
	if len(to) == 0 {
		return fail(errors.New("flag -to is required"))
	}
	stage, err := openStore(ctx, *from, false)
	if err != nil {
		return fail(fmt.Errorf("flag -from: %w", err))
	}
	chain, probs, err := checkStage(ctx, stage, time.Now(), *all)
	if errors.Is(err, store.ErrNotFound) {
		return fail(fmt.Errorf("flag -from: %w", err))
	}
	if err != nil {
		return refusedErr(fmt.Errorf("release publish: %s does not verify; nothing was written: %w", *from, err))
	}
	if err := stageError(*from, probs); err != nil {
		return refusedErr(fmt.Errorf("release publish: %w", err))
	}
	chain.warn(stderr, *from)
	var regions []release.Region
	for _, loc := range to {
		// A region's bucket is made (with object lock) by `vigil release init-region`; publish
		// does not contact a region before publishing, so that one that is down fails alone.
		_, isS3, _ := s3Location(loc)
		st, err := openStore(ctx, loc, !isS3)
		if err != nil {
			return fail(fmt.Errorf("flag -to: %w", err))
		}
		if m, ok := st.(*store.MinIO); ok {
			if admin, _ := store.IsAdmin(ctx, m); admin {
				return fail(fmt.Errorf("flag -to: %s: VIGIL_MINIO_ACCESS_KEY is the region's admin; publish with the publisher credentials `vigil release init-region` set up (object lock is all that binds the admin)", loc))
			}
		}
		regions = append(regions, release.Region{Name: loc, Store: st})
	}
	p, err := release.NewPublisher(release.PublisherConfig{
		Attempts:       *attempts,
		InitialBackoff: *backoff,
		MaxBackoff:     max(30*time.Second, *backoff),
		Root:           chain.newest(),
		Sleep: func(ctx context.Context, d time.Duration) error {
			fmt.Fprintf(stderr, "release publish: a destination failed; retrying in %v\n", d)
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
				return nil
			}
		},
	})
	if err != nil {
		return fail(fmt.Errorf("flags -attempts/-backoff: %w", err))
	}
	return publishStage(ctx, stage, chain, p, regions, *all, stdout)
}

// regionResult tracks one region through a publication: once a step fails there, later steps
// skip it, so it never gets a release before the root that signs it.
type regionResult struct {
	region release.Region
	err    error
	done   []string
}

// step publishes one staged item to every region still healthy.
func step(results []*regionResult, what string, publish func([]release.Region) error) {
	var live []*regionResult
	var regions []release.Region
	for _, r := range results {
		if r.err == nil {
			live, regions = append(live, r), append(regions, r.region)
		}
	}
	if len(live) == 0 {
		return
	}
	err := publish(regions)
	for _, r := range live {
		switch {
		case err == nil:
			r.done = append(r.done, what)
		case !isRegionErrs(err):
			r.err = fmt.Errorf("%s: %w", what, err) // the item itself is at fault
		default:
			r.done = append(r.done, what)
			for _, e := range unjoin(err) {
				var re *release.RegionError
				if errors.As(e, &re) && re.Region == r.region.Name {
					r.err, r.done = fmt.Errorf("%s: %w", what, e), r.done[:len(r.done)-1]
				}
			}
		}
	}
}

func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func isRegionErrs(err error) bool {
	for _, e := range unjoin(err) {
		var re *release.RegionError
		if !errors.As(e, &re) {
			return false
		}
	}
	return true
}

// publishStage publishes, in order, every root of the verified chain (oldest first; a pending
// root above it is not published), every staged key epoch, and for every model the release its
// staged pointer names (with all, first every older staged release). Then it reads each region
// back as a device would, and reports per region.
func publishStage(ctx context.Context, stage store.Store, chain *stageChain, p *release.Publisher, regions []release.Region, all bool, stdout io.Writer) error {
	results := make([]*regionResult, len(regions))
	for i, r := range regions {
		results[i] = &regionResult{region: r}
	}
	for i, r := range chain.roots {
		data := chain.envs[i]
		// Each root is published by a publisher that trusts its predecessor, so that what a
		// region already holds under its key is judged as devices judge it.
		rp := p
		if i > 0 {
			rp = p.WithRoot(chain.roots[i-1], nil)
		}
		step(results, fmt.Sprintf("root version %d", r.Version), func(rs []release.Region) error { return rp.PublishRoot(ctx, rs, data) })
	}
	epochs, err := numbered(ctx, stage, "keyepochs/", ".json")
	if err != nil {
		return err
	}
	for _, e := range epochs {
		doc, err := stage.Get(ctx, release.KeyEpochKey(e))
		if err != nil {
			return err
		}
		pk, err := stage.Get(ctx, release.CollectiveKeyKey(e))
		if err != nil {
			return err
		}
		step(results, fmt.Sprintf("key epoch %d", e), func(rs []release.Region) error { return p.PublishKeyEpoch(ctx, rs, doc, pk) })
	}
	models, err := stagedModels(ctx, stage)
	if err != nil {
		return err
	}
	for _, model := range models {
		b, err := stagedBundle(ctx, stage, model)
		if err != nil {
			return err
		}
		if all {
			older, err := numbered(ctx, stage, release.ReleasePrefix(model), "/manifest.json")
			if err != nil {
				return err
			}
			for _, v := range older {
				if v >= b.Manifest.Version {
					continue
				}
				menv, files, err := stagedFiles(ctx, stage, model, v)
				if err != nil {
					return err
				}
				step(results, fmt.Sprintf("%s version %d", model, v), func(rs []release.Region) error { return p.PublishFiles(ctx, rs, menv, files) })
			}
		}
		step(results, fmt.Sprintf("%s version %d (%d artifact(s), pointer)", model, b.Manifest.Version, len(b.Files)),
			func(rs []release.Region) error { return p.Publish(ctx, rs, b) })
	}
	if len(chain.roots)+len(epochs)+len(models) == 0 {
		return usageErr(errors.New("release publish: flag -from: the staging directory holds nothing to publish"))
	}
	// Read every region back as a device that trusts the staged root would: success is
	// reported only for a region whose pointers verify and name what was published.
	rootEnv := chain.newestEnv()
	for _, r := range results {
		if r.err != nil {
			continue
		}
		for _, model := range models {
			v, err := release.NewVerifier(release.VerifierConfig{Root: rootEnv, Model: model})
			if err != nil {
				return err
			}
			if _, err := v.Fetch(ctx, r.region.Store, time.Now()); err != nil {
				r.err = fmt.Errorf("read back %s: %w", model, err)
			}
		}
	}
	var failed, refused []error
	for _, r := range results {
		if r.err == nil {
			fmt.Fprintf(stdout, "%s: published and verified: %s\n", r.region.Name, strings.Join(r.done, ", "))
			continue
		}
		fmt.Fprintf(stdout, "%s: FAILED: %v\n", r.region.Name, r.err)
		e := fmt.Errorf("region %s: %w", r.region.Name, r.err)
		if errors.Is(r.err, release.ErrConflict) || errors.Is(r.err, release.ErrUnverified) || isVerification(r.err) {
			refused = append(refused, e)
		} else {
			failed = append(failed, e)
		}
	}
	if len(refused) > 0 {
		return refusedErr(fmt.Errorf("release publish: %w", errors.Join(append(refused, failed...)...)))
	}
	if len(failed) > 0 {
		denied, down := 0, 0
		for _, err := range failed {
			if errors.Is(err, store.ErrDenied) {
				denied++
			} else {
				down++
			}
		}
		var advice []string
		if denied > 0 {
			advice = append(advice, "a region that refuses the publisher's credentials: check VIGIL_MINIO_ACCESS_KEY and VIGIL_MINIO_SECRET_KEY, or set it up again with vigil release init-region")
		}
		if down > 0 {
			advice = append(advice, "a region that did not answer: run the same command again when it is back")
		}
		return withCode(exitRegion, fmt.Errorf("release publish: %w (%s)", errors.Join(failed...), strings.Join(advice, "; ")))
	}
	return nil
}

// isVerification reports errors that mean something does not verify.
func isVerification(err error) bool {
	for _, e := range []error{release.ErrRollback, release.ErrExpired, release.ErrHashMismatch, release.ErrMixAndMatch,
		release.ErrBadSignature, release.ErrUnknownKey, release.ErrThreshold, release.ErrRootVersion, release.ErrWrongType, release.ErrMalformed} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// stagedModels lists the models that have a staged pointer.
func stagedModels(ctx context.Context, stage store.Store) ([]string, error) {
	keys, err := stage.List(ctx, "releases/")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, k := range keys {
		model, ok := strings.CutSuffix(strings.TrimPrefix(k, "releases/"), "/latest.json")
		if ok && !strings.Contains(model, "/") {
			out = append(out, model)
		}
	}
	return out, nil
}

// stagedFiles reads the manifest and artifacts of a staged version.
func stagedFiles(ctx context.Context, stage store.Store, model string, v uint64) ([]byte, map[string][]byte, error) {
	menv, err := stage.Get(ctx, release.ManifestKey(model, v))
	if err != nil {
		return nil, nil, err
	}
	_, doc, err := release.DecodeUnverified(menv)
	m, ok := doc.(*release.Manifest)
	if err != nil || !ok {
		return nil, nil, fmt.Errorf("%s: not a manifest: %v", release.ManifestKey(model, v), err)
	}
	files := map[string][]byte{}
	for _, a := range m.Artifacts {
		data, err := stage.Get(ctx, release.ArtifactKey(model, v, a.Name))
		if err != nil {
			return nil, nil, err
		}
		files[a.Name] = data
	}
	return menv, files, nil
}

// numbered lists the numbers N of keys prefix+N+suffix, ascending.
func numbered(ctx context.Context, st store.Store, prefix, suffix string) ([]uint64, error) {
	keys, err := st.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, k := range keys {
		s, ok := strings.CutSuffix(strings.TrimPrefix(k, prefix), suffix)
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(s, 10, 64); err == nil {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// stagedBundle reassembles the bundle the staged pointer of model names. Nothing is verified
// here beyond consistency; the Publisher refuses parts that do not match.
func stagedBundle(ctx context.Context, stage store.Store, model string) (*release.Bundle, error) {
	ptr, err := stage.Get(ctx, release.LatestKey(model))
	if err != nil {
		return nil, err
	}
	_, doc, err := release.DecodeUnverified(ptr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", release.LatestKey(model), err)
	}
	l, ok := doc.(*release.Latest)
	if !ok {
		return nil, fmt.Errorf("%s: not a latest pointer", release.LatestKey(model))
	}
	menv, err := stage.Get(ctx, release.ManifestKey(model, l.Version))
	if err != nil {
		return nil, err
	}
	_, mdoc, err := release.DecodeUnverified(menv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", release.ManifestKey(model, l.Version), err)
	}
	m, ok := mdoc.(*release.Manifest)
	if !ok {
		return nil, fmt.Errorf("%s: not a manifest", release.ManifestKey(model, l.Version))
	}
	b := &release.Bundle{Manifest: m, ManifestEnvelope: menv, LatestEnvelope: ptr, Files: map[string][]byte{}}
	for _, a := range m.Artifacts {
		data, err := stage.Get(ctx, release.ArtifactKey(model, m.Version, a.Name))
		if err != nil {
			return nil, err
		}
		b.Files[a.Name] = data
	}
	return b, nil
}
