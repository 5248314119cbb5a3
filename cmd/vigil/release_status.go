package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/store"
)

// runReleaseStatus is `vigil release status`: what every region holds, checked as a device
// would check it, with the expiries that need action coming up.
func runReleaseStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("release status", stdout, envMinIO...)
	rootFile := fs.String("root", "", "pinned root `FILE` devices ship with (e.g. root/1.root.json)")
	warnRoot := fs.Duration("warn-root", 30*24*time.Hour, "warn when the newest root expires within `DURATION`")
	warnManifest := fs.Duration("warn-manifest", 7*24*time.Hour, "warn when a published manifest expires within `DURATION`")
	warnPointer := fs.Duration("warn-pointer", time.Hour, "warn when a pointer expires within `DURATION` (the coordinator re-signs pointers every few hours)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: vigil release status --root FILE LOCATION...

For each region (a directory or s3://bucket[/prefix]): the newest root it holds and its expiry,
for every model the version its pointer names with the pointer's and the manifest's expiries,
the versions stored, and whether everything verifies as a device would check it. Stored roots
and key epochs are read as devices read them, the first version that verifies, oldest first; a
newest version that does not verify (junk written over it, which devices skip but a plain GET
returns) is a warning, which publishing again clears.
Exit codes: 0 all verified; 1 something does not verify or has expired; 2 usage;
3 everything verifies but something expires within the warning windows.`)
		printFlags(fs.Output(), fs)
		printEnv(fs.Output(), envMinIO)
	}
	if err := parseReleaseFlags(fs, reorder(args), stdout); err != nil {
		return err
	}
	fail := func(err error) error { return usageErr(fmt.Errorf("release status: %w", err)) }
	if fs.NArg() == 0 {
		return fail(errors.New("give at least one LOCATION"))
	}
	if *warnRoot < 0 || *warnManifest < 0 || *warnPointer < 0 {
		return fail(fmt.Errorf("flags -warn-root %v, -warn-manifest %v, -warn-pointer %v: a warning window cannot be negative", *warnRoot, *warnManifest, *warnPointer))
	}
	pinned, err := readFileFlag("root", *rootFile, release.MaxEnvelopeBytes)
	if err != nil {
		return fail(err)
	}
	if _, err := release.ParseTrustedRoot(pinned); err != nil {
		return fail(fmt.Errorf("flag -root: %w", err))
	}
	now := time.Now()
	warns, errs := 0, 0
	report := func(level, format string, a ...any) {
		switch level {
		case "WARN":
			warns++
		case "FAIL":
			errs++
		}
		fmt.Fprintf(stdout, "  %-4s "+format+"\n", append([]any{level}, a...)...)
	}
	expiry := func(what string, at time.Time, window time.Duration) {
		left := at.Sub(now).Round(time.Minute)
		switch {
		case left <= 0:
			report("FAIL", "%s expired at %s", what, at.Format(time.RFC3339))
		case left < window:
			report("WARN", "%s expires in %v (%s)", what, left, at.Format(time.RFC3339))
		default:
			report("OK", "%s expires in %v (%s)", what, left, at.Format(time.RFC3339))
		}
	}
	for _, loc := range fs.Args() {
		fmt.Fprintf(stdout, "%s\n", loc)
		st, err := openStore(ctx, loc, false)
		if err != nil {
			report("FAIL", "cannot open: %v", err)
			continue
		}
		rv, err := release.NewVerifier(release.VerifierConfig{Root: pinned, Model: "status"})
		if err != nil {
			return fail(err)
		}
		if err := rv.UpdateRoots(ctx, st); err != nil {
			if !isVerification(err) {
				report("FAIL", "unreachable: %v", err)
				continue
			}
			// A root that does not verify: devices stay on the one they trust, and so does this.
			report("FAIL", "root: %s", reason(err))
		}
		root := rv.Root()
		expiry(fmt.Sprintf("root version %d", root.Version), root.Expires, *warnRoot)
		// Roots up to the newest were taken from the pinned file or checked in turn by
		// UpdateRoots; the stored copies of the older ones are what a new device or an
		// operator fetches, so each must be whole and signed by its own keys. As devices do,
		// the first version that verifies is the root; junk written over it is a warning.
		if versions, err := numbered(ctx, st, "root/", ".root.json"); err == nil {
			for _, v := range versions {
				if v > root.Version {
					continue
				}
				writeOnce(ctx, st, release.RootKey(v), release.MaxEnvelopeBytes, report, func(data []byte) error {
					r, err := release.ParseTrustedRoot(data)
					if err == nil && r.Version != v {
						err = fmt.Errorf("holds root version %d", r.Version)
					}
					return err
				})
			}
		}
		models, err := stagedModels(ctx, st)
		if err != nil {
			report("FAIL", "cannot list releases: %v", err)
			continue
		}
		if len(models) == 0 {
			report("WARN", "no release published")
		}
		for _, model := range models {
			v, err := release.NewVerifier(release.VerifierConfig{Root: rv.RootEnvelope(), Model: model})
			if err != nil {
				return fail(err)
			}
			b, err := v.Fetch(ctx, st, now)
			if err != nil {
				report("FAIL", "%s: %s", model, reason(err))
				continue
			}
			stored, _ := numbered(ctx, st, release.ReleasePrefix(model), "/manifest.json")
			report("OK", "%s version %d verified (versions stored: %v)", model, b.Manifest.Version, stored)
			_, ldoc, _ := release.DecodeUnverified(b.LatestEnvelope)
			if l, ok := ldoc.(*release.Latest); ok {
				expiry(fmt.Sprintf("%s pointer", model), l.Expires, *warnPointer)
			}
			expiry(fmt.Sprintf("%s version %d manifest", model, b.Manifest.Version), b.Manifest.Expires, *warnManifest)
		}
		if epochs, err := numbered(ctx, st, "keyepochs/", ".json"); err == nil && len(epochs) > 0 {
			e := epochs[len(epochs)-1]
			k, pk, err := rv.FetchKeyEpoch(ctx, st, e, now)
			if err != nil {
				report("FAIL", "key epoch %d: %s", e, reason(err))
			} else {
				expiry(fmt.Sprintf("key epoch %d", e), k.Expires, *warnManifest)
				newestCopy(ctx, st, release.KeyEpochKey(e), release.MaxEnvelopeBytes, report, func(data []byte) error {
					_, err := rv.VerifyKeyEpoch(data, pk, now)
					return err
				})
				newestCopy(ctx, st, release.CollectiveKeyKey(e), int64(len(pk)), report, func(data []byte) error {
					if !bytes.Equal(data, pk) {
						return fmt.Errorf("%w: not the signed collective key", release.ErrHashMismatch)
					}
					return nil
				})
			}
		}
	}
	switch {
	case errs > 0:
		return refusedErr(fmt.Errorf("release status: %d problem(s), %d warning(s)", errs, warns))
	case warns > 0:
		return withCode(exitWarn, fmt.Errorf("release status: %d warning(s)", warns))
	}
	return nil
}

// writeOnce reports a write-once document as devices read it: its stored versions oldest first,
// as many as a device reads (release.MaxObjectVersions), the first that check accepts being the
// document. None is a FAIL; junk after it is a WARN (newestCopy). Status read only the newest
// version and failed, for good, on a plain PUT over a root that devices and publish read past
// (a review).
func writeOnce(ctx context.Context, st store.Store, key string, limit int64, report func(level, format string, a ...any), check func([]byte) error) {
	vs, err := store.GetVersions(ctx, st, key, limit, release.MaxObjectVersions)
	if err != nil {
		report("FAIL", "%s: %v", key, err)
		return
	}
	var first error
	for _, data := range vs {
		err := check(data)
		if err == nil {
			newestCopy(ctx, st, key, limit, report, check)
			return
		}
		first = cmp.Or(first, err)
	}
	if len(vs) > 1 {
		report("FAIL", "%s: none of its %d stored versions verifies; the oldest: %v", key, len(vs), first)
		return
	}
	report("FAIL", "%s: %v", key, first)
}

// newestCopy warns when the newest version of a write-once object, which a plain GET returns
// (`vigil release inspect`, an operator fetching a root), is not the genuine one devices read:
// a plain PUT or a delete over it by someone holding the bucket's admin credentials. Devices
// skip it; `vigil release publish` puts a copy of the genuine one back on top.
func newestCopy(ctx context.Context, st store.Store, key string, limit int64, report func(level, format string, a ...any), check func([]byte) error) {
	if _, ok := st.(store.VersionReader); !ok {
		return // no history: the one version was checked
	}
	data, err := store.GetLimit(ctx, st, key, limit)
	switch {
	case errors.Is(err, store.ErrNotFound):
		report("WARN", "%s: the newest stored version is a delete marker: a plain GET finds nothing, devices read the versions under it; publish again to put the genuine one back on top", key)
		return
	case errors.Is(err, store.ErrTooLarge):
	case err != nil:
		report("FAIL", "%s: %v", key, err)
		return
	default:
		if err = check(data); err == nil {
			return
		}
	}
	report("WARN", "%s: the newest stored version does not verify (%v): devices skip it, a plain GET returns it; publish again to put the genuine one back on top", key, err)
}
