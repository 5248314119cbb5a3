package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/store"
)

func runReleaseVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("release verify", stdout, envMinIO...)
	rootFile := fs.String("root", "", "pinned root `FILE` (a root envelope, e.g. root/1.root.json)")
	model := fs.String("model", "", "model `NAME`")
	installed := fs.Uint64("installed", 0, "version the device runs; older or equal releases are refused")
	at := fs.String("at", "", "verify as of this RFC 3339 `TIME` (default now)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: vigil release verify --root FILE --model NAME [flags] LOCATION\n\nLOCATION is a directory or s3://bucket[/prefix].")
		printFlags(fs.Output(), fs)
		printEnv(fs.Output(), envMinIO)
	}
	if err := parseReleaseFlags(fs, args, stdout); err != nil {
		return err
	}
	fail := func(err error) error { return usageErr(fmt.Errorf("release verify: %w", err)) }
	if fs.NArg() > 1 && strings.HasPrefix(fs.Arg(1), "-") {
		return fail(fmt.Errorf("flags go before LOCATION: %q after %q was not read as a flag", fs.Arg(1), fs.Arg(0)))
	}
	if fs.NArg() != 1 {
		return fail(errors.New("give exactly one LOCATION (a directory or s3://bucket[/prefix])"))
	}
	loc := fs.Arg(0)
	if *model == "" {
		return fail(errors.New("flag -model is required"))
	}
	now := time.Now()
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return fail(fmt.Errorf("flag -at: %w", err))
		}
		now = t
	}
	pinned, err := readFileFlag("root", *rootFile, release.MaxEnvelopeBytes)
	if err != nil {
		return fail(err)
	}
	v, err := release.NewVerifier(release.VerifierConfig{Root: pinned, Model: *model, Version: *installed})
	if err != nil {
		return fail(fmt.Errorf("flag -root: %w", err))
	}
	st, err := openStore(ctx, loc, false)
	if err != nil {
		return fail(err)
	}
	b, err := v.Fetch(ctx, st, now)
	if errors.Is(err, release.ErrUpToDate) {
		// Nothing newer than the installed version is not a failure.
		fmt.Fprintf(stdout, "UP TO DATE %s: %s version %d is the newest, verified against root version %d (expires %s)\n",
			loc, *model, *installed, v.Root().Version, v.Root().Expires.Format(time.RFC3339))
		return nil
	}
	if err != nil {
		fmt.Fprintf(stdout, "FAIL %s: %s\n", loc, reason(err))
		return refusedErr(fmt.Errorf("release verify: %s: %w", loc, err))
	}
	m := b.Manifest
	fmt.Fprintf(stdout, "OK %s: %s version %d (parent %d) verified against root version %d\n", loc, m.Model, m.Version, m.Parent, v.Root().Version)
	_, ldoc, _ := release.DecodeUnverified(b.LatestEnvelope)
	if l, ok := ldoc.(*release.Latest); ok {
		fmt.Fprintf(stdout, "  pointer expires  %s (in %v)\n", l.Expires.Format(time.RFC3339), l.Expires.Sub(now).Round(time.Minute))
	}
	fmt.Fprintf(stdout, "  manifest expires %s (in %v), created %s\n", m.Expires.Format(time.RFC3339), m.Expires.Sub(now).Round(time.Minute), m.Created.Format(time.RFC3339))
	fmt.Fprintf(stdout, "  root version %d expires %s (in %v)\n", v.Root().Version, v.Root().Expires.Format(time.RFC3339), v.Root().Expires.Sub(now).Round(time.Minute))
	fmt.Fprintf(stdout, "  training: %d rounds, %d devices, epsilon %g, delta %g\n", m.Training.Rounds, m.Training.Devices, m.Training.Epsilon, m.Training.Delta)
	for _, a := range m.Artifacts {
		fmt.Fprintf(stdout, "  artifact %-24s %10d bytes  sha256 %s  ok\n", a.Name, a.Size, a.SHA256)
	}
	return nil
}

// reason names the failure class in words an operator can act on; the error itself says where.
func reason(err error) string {
	for _, c := range []struct {
		err  error
		what string
	}{
		{release.ErrUpToDate, "nothing newer than the installed version"},
		{release.ErrRollback, "rollback: older than what the device trusts or runs"},
		{release.ErrExpired, "expired metadata"},
		{release.ErrHashMismatch, "an object's hash or size differs from the signed one (tampered or corrupt)"},
		{release.ErrMixAndMatch, "documents do not belong together (mix-and-match)"},
		{release.ErrBadSignature, "invalid signature by a trusted key (tampered document)"},
		{release.ErrUnknownKey, "signed by a key the root does not trust for this role"},
		{release.ErrThreshold, "not enough valid signatures"},
		{release.ErrRootVersion, "root versions out of sequence"},
		{release.ErrWrongType, "wrong kind of document"},
		{release.ErrMalformed, "malformed or non-canonical document"},
		{store.ErrNotFound, "missing object"},
	} {
		if errors.Is(err, c.err) {
			return c.what + ": " + err.Error()
		}
	}
	return err.Error()
}

func runReleaseInspect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("release inspect", stdout, envMinIO...)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: vigil release inspect FILE | s3://BUCKET/KEY | s3+http(s)://HOST:PORT/BUCKET/KEY\n\nPrints a signed document and its signers WITHOUT verifying anything.")
		printEnv(fs.Output(), envMinIO)
	}
	if err := parseReleaseFlags(fs, args, stdout); err != nil {
		return err
	}
	fail := func(err error) error { return usageErr(fmt.Errorf("release inspect: %w", err)) }
	if fs.NArg() != 1 {
		return fail(errors.New("give exactly one " + inspectForms))
	}
	loc := fs.Arg(0)
	data, err := inspectRead(ctx, loc)
	if err != nil {
		return fail(err)
	}
	env, doc, err := release.DecodeUnverified(data)
	if env == nil {
		return fail(fmt.Errorf("%s: %w", loc, err))
	}
	fmt.Fprintf(stdout, "NOT VERIFIED: %s\ntype %s\n", loc, env.PayloadType)
	for _, s := range env.Signatures {
		fmt.Fprintf(stdout, "signature by key %s\n", s.KeyID)
	}
	if err != nil {
		return fail(fmt.Errorf("%s: payload: %w", loc, err))
	}
	pretty, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(stdout, "%s\n", pretty)
	return nil
}

// inspectForms are the locations inspect reads.
const inspectForms = "FILE, s3://BUCKET/KEY or s3+http(s)://HOST:PORT/BUCKET/KEY"

// inspectRead reads the document inspect prints: an object of a region, named by the locations
// the other release commands take (s3://BUCKET/KEY with VIGIL_MINIO_ENDPOINT, or
// s3+http(s)://HOST:PORT/BUCKET/KEY, credentials from the environment) followed by its key, or
// a file.
func inspectRead(ctx context.Context, loc string) ([]byte, error) {
	cfg, ok, err := s3Location(loc)
	if !ok {
		if strings.Contains(loc, "://") {
			return nil, fmt.Errorf("%s: unknown scheme; give a %s", loc, inspectForms)
		}
		return readFileFlag("", loc, release.MaxEnvelopeBytes)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	// s3Location reads what follows the bucket as the store's prefix; here it is the key.
	key := cfg.Prefix
	cfg.Prefix = ""
	if cfg.Bucket == "" || key == "" {
		return nil, fmt.Errorf("%s: name an object: give a %s", loc, inspectForms)
	}
	st, err := store.NewMinIO(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	data, err := st.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	return data, nil
}
