package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/store"
)

// `vigil release sign` writes signed documents into a staging directory laid out exactly like a
// store, which `vigil release publish` then copies to the regions' stores.
func runReleaseSign(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	kinds := map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"root":            runSignRoot,
		"release":         runSignRelease,
		"latest":          runSignLatest,
		"keyepoch":        runSignKeyEpoch,
		"--add-signature": runAddSignature,
		"-add-signature":  runAddSignature,
		"--merge":         runMergeSignatures,
		"-merge":          runMergeSignatures,
	}
	const usage = `usage: vigil release sign root|release|latest|keyepoch [flags]
       vigil release sign --add-signature FILE -key KEY [-out FILE] [-stage DIR]
       vigil release sign --merge -out FILE FILE...

Threshold signing on separate machines: one signer signs a document (e.g. 'sign root -partial'),
each further signer runs --add-signature on a copy of the file on their own machine, and the
copies are merged with --merge (or the file is passed from signer to signer).`
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprintln(stdout, usage)
		return nil
	}
	if len(args) == 0 || kinds[args[0]] == nil {
		fmt.Fprintln(stderr, usage)
		if len(args) == 0 {
			return usageErr(errors.New("release sign: say what to sign"))
		}
		return usageErr(fmt.Errorf("release sign: unknown document %q", args[0]))
	}
	return kinds[args[0]](ctx, args[1:], stdout, stderr)
}

func readPubs(flagName string, paths []string) ([]*sig.PublicKey, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("flag -%s is required", flagName)
	}
	var out []*sig.PublicKey
	for _, p := range paths {
		k, err := sig.ReadPublicKeyFile(p)
		if err != nil {
			return nil, fmt.Errorf("flag -%s: %w", flagName, err)
		}
		out = append(out, k)
	}
	return out, nil
}

// openStage opens the staging directory. Only `sign root` makes a new one (create): the other
// commands need a staged root, and store.NewFS would otherwise make a mistyped -stage before
// they fail for want of one.
func openStage(dir string, create bool) (*store.FS, error) {
	if dir == "" {
		return nil, errors.New("flag -stage is required")
	}
	if !create {
		if info, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("flag -stage: %w (sign root makes a new stage)", err)
		} else if !info.IsDir() {
			return nil, fmt.Errorf("flag -stage %s is not a directory", dir)
		}
	}
	return store.NewFS(dir)
}

// stagePublisher writes into a staging directory, verifying what it holds against root.
func stagePublisher(root *release.Root) *release.Publisher {
	p, _ := release.NewPublisher(release.PublisherConfig{Attempts: 1, Root: root})
	return p
}

func runSignRoot(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("release sign root", stdout, envPassphrase...)
	stage := fs.String("stage", "", "staging `DIR` to write root/<version>.root.json into")
	version := fs.Uint64("version", 0, "root `VERSION` (1 for the first root, previous+1 for a rotation)")
	expires := fs.String("expires", "8760h", "expiry: a duration from now or an RFC 3339 time")
	var rootPubs, releasePubs, tsPubs, trusteePubs, enrolPubs, privacyPubs, keys listFlag
	fs.Var(&rootPubs, "root", "root role public key `FILES` (repeatable, comma-separated)")
	fs.Var(&releasePubs, "release", "release role public key `FILES`")
	fs.Var(&tsPubs, "timestamp", "timestamp role public key `FILES`")
	fs.Var(&trusteePubs, "trustees", "trustees role public key `FILES`: the trustees' signing keys, which approve key epochs")
	fs.Var(&enrolPubs, "enrolment", "enrolment role public key `FILES`: the enrolment authority, which signs device records")
	fs.Var(&privacyPubs, "privacy", "privacy role public key `FILES`: the privacy office, which signs the privacy policy")
	rootT := fs.Int("root-threshold", 1, "root signatures a key change needs")
	releaseT := fs.Int("release-threshold", 1, "release signatures a manifest needs")
	tsT := fs.Int("timestamp-threshold", 1, "timestamp signatures a pointer needs")
	trusteeT := fs.Int("trustees-threshold", 2, "trustee signatures a key epoch needs (the ceremony's t)")
	enrolT := fs.Int("enrolment-threshold", 1, "enrolment signatures a device record needs")
	privacyT := fs.Int("privacy-threshold", 1, "privacy signatures a privacy policy needs")
	fs.Var(&keys, "key", "private key `FILES` to sign with: the new root keys, and for a rotation also the previous root's (key files, or exec:PROGRAM for a hardware key)")
	partial := fs.Bool("partial", false, "write the root even if it lacks signatures, for other signers to add theirs with --add-signature on their own machines (publish refuses it until the thresholds are met)")
	if err := parseReleaseFlags(fs, args, stdout); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	fail := func(err error) error { return usageErr(fmt.Errorf("release sign root: %w", err)) }
	if *version == 0 {
		return fail(errors.New("flag -version is required (at least 1)"))
	}
	exp, err := parseTime("expires", *expires, time.Now())
	if err != nil {
		return fail(err)
	}
	var specs [6]release.RoleSpec
	for i, r := range []struct {
		flag  string
		paths []string
		t     int
	}{
		{"root", rootPubs, *rootT}, {"release", releasePubs, *releaseT}, {"timestamp", tsPubs, *tsT},
		{"trustees", trusteePubs, *trusteeT}, {"enrolment", enrolPubs, *enrolT}, {"privacy", privacyPubs, *privacyT},
	} {
		pks, err := readPubs(r.flag, r.paths)
		if err != nil {
			return fail(err)
		}
		specs[i] = release.RoleSpec{Keys: pks, Threshold: r.t}
	}
	signers, err := readKeys("key", keys)
	if err != nil {
		return fail(err)
	}
	root, err := release.NewRoot(*version, exp, release.RootRoles{
		Root: specs[0], Release: specs[1], Timestamp: specs[2], Trustees: specs[3], Enrolment: specs[4], Privacy: specs[5],
	})
	if err != nil {
		return fail(err)
	}
	env, err := release.Sign(root, signers...)
	if err != nil {
		return fail(err)
	}
	st, err := openStage(*stage, true)
	if err != nil {
		return fail(err)
	}
	var prev *release.Root
	if *version > 1 {
		prevData, err := st.Get(ctx, release.RootKey(*version-1))
		switch {
		case err == nil:
			if prev, err = release.ParseTrustedRoot(prevData); err != nil {
				return fail(fmt.Errorf("staged root version %d: %w", *version-1, err))
			}
		case !errors.Is(err, store.ErrNotFound):
			return fail(err)
		default:
			fmt.Fprintf(stderr, "warning: root version %d is not in %s; not checking the rotation signatures\n", *version-1, *stage)
		}
	}
	// Refuse to write a root that devices would refuse: it must carry its own threshold and,
	// for a rotation, the previous root's. A partial root is written for others to complete.
	if !*partial {
		if _, err := release.ParseTrustedRoot(env); err != nil {
			return fail(fmt.Errorf("flag -key: %w (sign with -partial and collect the other signatures with --add-signature)", err))
		}
		if prev != nil {
			if _, err := prev.VerifyNext(env); err != nil {
				return fail(fmt.Errorf("flag -key: %w", err))
			}
		}
	}
	if err := st.Create(ctx, release.RootKey(*version), env); err != nil {
		if errors.Is(err, store.ErrExist) {
			return fail(fmt.Errorf("root version %d is already staged in %s; add signatures to it with --add-signature", *version, *stage))
		}
		return fail(err)
	}
	fmt.Fprintf(stdout, "root version %d signed by %d key(s), expires %s\nwrote %s\n", *version, len(signers), exp.UTC().Format(time.RFC3339), filepath.Join(*stage, release.RootKey(*version)))
	printRootSignatures(stdout, env, prev)
	return nil
}
