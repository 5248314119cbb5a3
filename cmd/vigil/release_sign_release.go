package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/store"
)

// evalFlag parses "name=value,name=value".
func evalFlag(v string) (map[string]float64, error) {
	out := map[string]float64{}
	for _, kv := range strings.Split(v, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		name, val, ok := strings.Cut(kv, "=")
		f, err := strconv.ParseFloat(val, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("flag -eval: %q is not name=number", kv)
		}
		out[name] = f
	}
	return out, nil
}

// readArtifacts reads every regular file of dir (not recursing) as an artifact.
func readArtifacts(dir string) (map[string][]byte, error) {
	if dir == "" {
		return nil, errors.New("flag -artifacts is required")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("flag -artifacts: %w", err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := readFileFlag("artifacts", filepath.Join(dir, e.Name()), store.MaxObjectBytes)
		if err != nil {
			return nil, err
		}
		files[e.Name()] = data
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("flag -artifacts: %s holds no files", dir)
	}
	return files, nil
}

// maxVersionStep is how far above the newest staged version `sign release` goes without -force.
const maxVersionStep = 100

// newestStaged returns the newest version of model whose manifest is staged (0 if none).
func newestStaged(ctx context.Context, st store.Store, model string) (uint64, error) {
	keys, err := st.List(ctx, release.ReleasePrefix(model))
	if err != nil {
		return 0, err
	}
	var newest uint64
	for _, k := range keys {
		rest, ok := strings.CutSuffix(strings.TrimPrefix(k, release.ReleasePrefix(model)), "/manifest.json")
		if !ok {
			continue
		}
		if v, err := strconv.ParseUint(rest, 10, 64); err == nil {
			newest = max(newest, v)
		}
	}
	return newest, nil
}

// checkPointerLifetime refuses a pointer expiry that devices would refuse (more than
// release.MaxPointerLifetime after now), naming the flag, before anything is signed.
func checkPointerLifetime(flagName string, exp, now time.Time) error {
	if exp.After(now.Add(release.MaxPointerLifetime)) {
		return fmt.Errorf("flag -%s: %w: %s is more than %v ahead, and devices refuse a pointer valid that long (keep it at hours)",
			flagName, release.ErrLifetime, exp.UTC().Format(time.RFC3339), release.MaxPointerLifetime)
	}
	return nil
}

func runSignRelease(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("release sign release", stdout, envPassphrase...)
	stage := fs.String("stage", "", "staging `DIR` (a filesystem store) to write the release into")
	model := fs.String("model", "", "model `NAME`")
	version := fs.Uint64("version", 0, "release `VERSION`, greater than every earlier one")
	parent := fs.Int64("parent", -1, "parent `VERSION`; -1 for the version before --version")
	artifacts := fs.String("artifacts", "", "`DIR` whose files are the release's artifacts")
	expires := fs.String("expires", "720h", "manifest expiry: a duration or an RFC 3339 time")
	latestExpires := fs.String("latest-expires", "6h", "latest pointer expiry; keep it short")
	rounds := fs.Uint64("rounds", 0, "federated rounds the model was trained for")
	devices := fs.Uint64("devices", 0, "devices whose updates the model includes")
	epsilon := fs.Float64("epsilon", 0, "DP epsilon spent")
	delta := fs.Float64("delta", 0, "DP delta spent")
	evals := fs.String("eval", "", "evaluation figures, `name=value,...`")
	releaseKey := fs.String("release-key", "", "release role private key `FILE` (or exec:PROGRAM)")
	tsKey := fs.String("timestamp-key", "", "timestamp role private key `FILE` (or exec:PROGRAM)")
	force := fs.Bool("force", false, fmt.Sprintf("sign a version more than %d above the newest staged one (a typo there burns every version below it)", maxVersionStep))
	if err := parseReleaseFlags(fs, args, stdout); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	fail := func(err error) error { return usageErr(fmt.Errorf("release sign release: %w", err)) }
	if *model == "" {
		return fail(errors.New("flag -model is required"))
	}
	if *version == 0 {
		return fail(errors.New("flag -version is required (at least 1)"))
	}
	par := *version - 1
	if *parent >= 0 {
		par = uint64(*parent)
	}
	now := time.Now()
	exp, err := parseTime("expires", *expires, now)
	if err != nil {
		return fail(err)
	}
	lexp, err := parseTime("latest-expires", *latestExpires, now)
	if err != nil {
		return fail(err)
	}
	if err := checkPointerLifetime("latest-expires", lexp, now); err != nil {
		return fail(err)
	}
	eval, err := evalFlag(*evals)
	if err != nil {
		return fail(err)
	}
	files, err := readArtifacts(*artifacts)
	if err != nil {
		return fail(err)
	}
	rel, err := readKey("release-key", *releaseKey)
	if err != nil {
		return fail(err)
	}
	ts, err := readKey("timestamp-key", *tsKey)
	if err != nil {
		return fail(err)
	}
	st, err := openStage(*stage, false)
	if err != nil {
		return fail(err)
	}
	root, err := stagedRoot(ctx, st, *stage, stderr)
	if err != nil {
		return fail(fmt.Errorf("flag -stage: %w", err))
	}
	newest, err := newestStaged(ctx, st, *model)
	if err != nil {
		return fail(err)
	}
	if *version <= newest {
		return refusedErr(fmt.Errorf("release sign release: flag -version: %w: %s version %d is staged in %s; a new release needs a version above it",
			release.ErrRollback, *model, newest, *stage))
	}
	if *version > newest+maxVersionStep && !*force {
		return refusedErr(fmt.Errorf("release sign release: flag -version: %w: %d is %d above the newest staged version %d; devices never accept a version below one they installed, so check it and give -force if it is meant",
			release.ErrVersionJump, *version, *version-newest, newest))
	}
	b, err := release.Build(release.Spec{
		Model: *model, Version: *version, Parent: par, Created: now, Expires: exp,
		Training: release.Training{Rounds: *rounds, Devices: *devices, Epsilon: *epsilon, Delta: *delta, Eval: eval},
		Files:    files, LatestExpires: lexp,
	}, rel, ts)
	if err != nil {
		return fail(err)
	}
	// Check against the staged root before writing anything: a release signed with the wrong
	// key would be refused by every device, and its version burned.
	if _, err := release.VerifyDocument(root, b.ManifestEnvelope); err != nil {
		return refusedErr(fmt.Errorf("release sign release: flag -release-key: the manifest does not verify under root version %d: %w", root.Version, err))
	}
	if _, err := release.VerifyDocument(root, b.LatestEnvelope); err != nil {
		return refusedErr(fmt.Errorf("release sign release: flag -timestamp-key: the pointer does not verify under root version %d: %w", root.Version, err))
	}
	if err := stagePublisher(root).Publish(ctx, []release.Region{{Name: "stage", Store: st}}, b); err != nil {
		return refusedErr(fmt.Errorf("release sign release: %w", err))
	}
	fmt.Fprintf(stdout, "%s version %d (parent %d): %d artifact(s), manifest expires %s, pointer expires %s\nstaged in %s\n",
		*model, *version, par, len(files), exp.UTC().Format(time.RFC3339), lexp.UTC().Format(time.RFC3339), *stage)
	return nil
}

func runSignLatest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("release sign latest", stdout, envPassphrase...)
	stage := fs.String("stage", "", "staging `DIR` holding the release")
	model := fs.String("model", "", "model `NAME`")
	version := fs.Uint64("version", 0, "version to point to (default: the one the staged pointer names)")
	expires := fs.String("expires", "6h", "pointer expiry: a duration or an RFC 3339 time")
	tsKey := fs.String("timestamp-key", "", "timestamp role private key `FILE` (or exec:PROGRAM)")
	if err := parseReleaseFlags(fs, args, stdout); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	fail := func(err error) error { return usageErr(fmt.Errorf("release sign latest: %w", err)) }
	if *model == "" {
		return fail(errors.New("flag -model is required"))
	}
	now := time.Now()
	exp, err := parseTime("expires", *expires, now)
	if err != nil {
		return fail(err)
	}
	if err := checkPointerLifetime("expires", exp, now); err != nil {
		return fail(err)
	}
	ts, err := readKey("timestamp-key", *tsKey)
	if err != nil {
		return fail(err)
	}
	st, err := openStage(*stage, false)
	if err != nil {
		return fail(err)
	}
	root, err := stagedRoot(ctx, st, *stage, stderr)
	if err != nil {
		return fail(fmt.Errorf("flag -stage: %w", err))
	}
	// The staged pointer: its version is the default, and the floor. A pointer to a lower
	// version would not replace it (the publisher never moves a pointer back), and devices that
	// installed the higher one never go back anyway.
	v := *version
	data, err := st.Get(ctx, release.LatestKey(*model))
	switch {
	case err == nil:
		_, doc, err := release.DecodeUnverified(data)
		l, ok := doc.(*release.Latest)
		switch {
		case (err != nil || !ok) && v == 0:
			return fail(fmt.Errorf("staged pointer %s: %v", release.LatestKey(*model), err))
		case err != nil || !ok:
			// Junk: the pointer signed now replaces it.
		case v == 0:
			v = l.Version
		case v < l.Version:
			return refusedErr(fmt.Errorf("release sign latest: flag -version: %w: the staged pointer %s names version %d; devices never go back to a lower version, so withdraw a bad version by releasing a higher one with `vigil release sign release`",
				release.ErrRollback, release.LatestKey(*model), l.Version))
		}
	case !errors.Is(err, store.ErrNotFound):
		return fail(err)
	case v == 0:
		return fail(fmt.Errorf("no -version given and no staged pointer: %w", err))
	}
	data, err = st.Get(ctx, release.ManifestKey(*model, v))
	if err != nil {
		return fail(err)
	}
	_, doc, err := release.DecodeUnverified(data)
	m, ok := doc.(*release.Manifest)
	if err != nil || !ok {
		return fail(fmt.Errorf("staged manifest %s: %v", release.ManifestKey(*model, v), err))
	}
	env, err := release.SignLatestFor(m, exp, ts)
	if err != nil {
		return fail(err)
	}
	if _, err := release.VerifyDocument(root, env); err != nil {
		return refusedErr(fmt.Errorf("release sign latest: flag -timestamp-key: the pointer does not verify under root version %d: %w", root.Version, err))
	}
	if err := stagePublisher(root).PublishLatest(ctx, []release.Region{{Name: "stage", Store: st}}, env); err != nil {
		return refusedErr(fmt.Errorf("release sign latest: %w", err))
	}
	fmt.Fprintf(stdout, "pointer to %s version %d, expires %s\n", *model, v, exp.UTC().Format(time.RFC3339))
	return nil
}

func runSignKeyEpoch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("release sign keyepoch", stdout, envPassphrase...)
	stage := fs.String("stage", "", "staging `DIR`")
	epoch := fs.Uint64("epoch", 0, "key `EPOCH` (at least 1)")
	params := fs.String("params", "", "`ID` of the HE parameter set")
	pkFile := fs.String("public-key", "", "`FILE` holding the serialised collective public key")
	expires := fs.String("expires", "2160h", "expiry: a duration or an RFC 3339 time")
	var keys listFlag
	fs.Var(&keys, "key", "trustee private key `FILES` (the trustees role signs key epochs; each trustee may instead add theirs with --add-signature)")
	partial := fs.Bool("partial", false, "write the document even if it lacks the trustees' threshold, for the others to add their signatures")
	if err := parseReleaseFlags(fs, args, stdout); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	fail := func(err error) error { return usageErr(fmt.Errorf("release sign keyepoch: %w", err)) }
	now := time.Now()
	exp, err := parseTime("expires", *expires, now)
	if err != nil {
		return fail(err)
	}
	pk, err := readFileFlag("public-key", *pkFile, store.MaxObjectBytes)
	if err != nil {
		return fail(err)
	}
	signers, err := readKeys("key", keys)
	if err != nil {
		return fail(err)
	}
	doc, err := release.Sign(release.NewKeyEpoch(*epoch, *params, pk, now, exp), signers...)
	if err != nil {
		return fail(fmt.Errorf("flags -epoch/-params: %w", err))
	}
	st, err := openStage(*stage, false)
	if err != nil {
		return fail(err)
	}
	root, err := stagedRoot(ctx, st, *stage, stderr)
	if err != nil {
		return fail(fmt.Errorf("flag -stage: %w", err))
	}
	if _, err := release.VerifyDocument(root, doc); err != nil && !*partial {
		return refusedErr(fmt.Errorf("release sign keyepoch: flag -key: the key epoch does not verify under root version %d: %w", root.Version, err))
	}
	if err := stagePublisher(nil).PublishKeyEpoch(ctx, []release.Region{{Name: "stage", Store: st}}, doc, pk); err != nil {
		return refusedErr(fmt.Errorf("release sign keyepoch: %w", err))
	}
	fmt.Fprintf(stdout, "key epoch %d (%s), %d-byte collective key, expires %s\n", *epoch, *params, len(pk), exp.UTC().Format(time.RFC3339))
	return nil
}
