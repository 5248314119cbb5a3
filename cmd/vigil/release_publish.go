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
	fs := newFlagSet("release publish", stderr)
	from := fs.String("from", "", "staging `DIR` written by `vigil release sign`")
	var to listFlag
	fs.Var(&to, "to", "destination `LOCATIONS`: directories or s3://bucket[/prefix] (repeatable, comma-separated)")
	attempts := fs.Int("attempts", 8, "tries per destination before giving up")
	backoff := fs.Duration("backoff", 500*time.Millisecond, "first wait after a failure; doubles up to 30s")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	fail := func(err error) error { return fmt.Errorf("release publish: %w", err) }
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
	var regions []release.Region
	for _, loc := range to {
		st, err := openStore(ctx, loc, true)
		if err != nil {
			return fail(fmt.Errorf("flag -to: %w", err))
		}
		regions = append(regions, release.Region{Name: loc, Store: st})
	}
	p, err := release.NewPublisher(release.PublisherConfig{
		Attempts:       *attempts,
		InitialBackoff: *backoff,
		MaxBackoff:     max(30*time.Second, *backoff),
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
	return publishStage(ctx, stage, p, regions, stdout)
}

// publishStage publishes, in order, every staged root (oldest first), every staged key epoch,
// and for every model the release its staged pointer names.
func publishStage(ctx context.Context, stage store.Store, p *release.Publisher, regions []release.Region, stdout io.Writer) error {
	roots, err := numbered(ctx, stage, "root/", ".root.json")
	if err != nil {
		return err
	}
	for _, v := range roots {
		data, err := stage.Get(ctx, release.RootKey(v))
		if err != nil {
			return err
		}
		if err := p.PublishRoot(ctx, regions, data); err != nil {
			return fmt.Errorf("root version %d: %w", v, err)
		}
		fmt.Fprintf(stdout, "published root version %d\n", v)
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
		if err := p.PublishKeyEpoch(ctx, regions, doc, pk); err != nil {
			return fmt.Errorf("key epoch %d: %w", e, err)
		}
		fmt.Fprintf(stdout, "published key epoch %d\n", e)
	}
	keys, err := stage.List(ctx, "releases/")
	if err != nil {
		return err
	}
	published := 0
	for _, k := range keys {
		model, ok := strings.CutSuffix(strings.TrimPrefix(k, "releases/"), "/latest.json")
		if !ok || strings.Contains(model, "/") {
			continue
		}
		b, err := stagedBundle(ctx, stage, model)
		if err != nil {
			return err
		}
		if err := p.Publish(ctx, regions, b); err != nil {
			return fmt.Errorf("%s version %d: %w", model, b.Manifest.Version, err)
		}
		fmt.Fprintf(stdout, "published %s version %d (%d artifacts) to %d store(s)\n", model, b.Manifest.Version, len(b.Files), len(regions))
		published++
	}
	if len(roots)+len(epochs)+published == 0 {
		return errors.New("flag -from: the staging directory holds nothing to publish")
	}
	return nil
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
