package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/vigilauth/vigil/internal/atomicfile"
	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/store"
)

// runAddSignature is `vigil release sign --add-signature FILE -key KEY`: one signer of a
// threshold adds their signature to a document on their own machine. It shows what is being
// signed first, because the signer's machine is where that has to be checked.
func runAddSignature(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("release sign --add-signature", stdout, envPassphrase...)
	var keys listFlag
	fs.Var(&keys, "key", "private key `FILES` to sign with (key files, or exec:PROGRAM for a hardware key)")
	out := fs.String("out", "", "write the signed document to `FILE` (default: replace the input)")
	stage := fs.String("stage", "", "staging `DIR` whose roots to report the signature count against (optional)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: vigil release sign --add-signature FILE --key KEY [--out FILE] [--stage DIR]")
		printFlags(fs.Output(), fs)
		printEnv(fs.Output(), envPassphrase)
	}
	if err := parseReleaseFlags(fs, reorder(args), stdout); err != nil {
		return usageErr(err)
	}
	fail := func(err error) error { return fmt.Errorf("release sign --add-signature: %w", err) }
	if fs.NArg() != 1 {
		return usageErr(fail(errors.New("give exactly one FILE to sign")))
	}
	if err := requireStageDir(*stage); err != nil {
		return usageErr(fail(err))
	}
	in := fs.Arg(0)
	data, err := readFileFlag("add-signature", in, release.MaxEnvelopeBytes)
	if err != nil {
		return usageErr(fail(err))
	}
	signers, err := readKeys("key", keys)
	if err != nil {
		return usageErr(fail(err))
	}
	if err := describeDocument(stdout, in, data); err != nil {
		return fail(err)
	}
	signed, err := release.Cosign(data, signers...)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", in, err))
	}
	dest := *out
	if dest == "" {
		dest = in
	}
	if err := atomicfile.Write(dest, signed, 0o644); err != nil {
		return fail(err)
	}
	fmt.Fprintf(stdout, "added %d signature(s); wrote %s\n", len(signers), dest)
	return reportSignatures(ctx, stdout, stderr, *stage, signed)
}

// runMergeSignatures is `vigil release sign --merge -out FILE FILE...`: the copies that
// separate signers signed become one document with every signature.
func runMergeSignatures(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("release sign --merge", stdout, envPassphrase...)
	out := fs.String("out", "", "write the merged document to `FILE` (it may be one of the inputs)")
	stage := fs.String("stage", "", "staging `DIR` whose roots to report the signature count against (optional)")
	if err := parseReleaseFlags(fs, reorder(args), stdout); err != nil {
		return usageErr(err)
	}
	fail := func(err error) error { return fmt.Errorf("release sign --merge: %w", err) }
	if *out == "" {
		return usageErr(fail(errors.New("flag -out is required")))
	}
	if fs.NArg() < 2 {
		return usageErr(fail(errors.New("give at least two signed copies of one document")))
	}
	if err := requireStageDir(*stage); err != nil {
		return usageErr(fail(err))
	}
	var envs [][]byte
	for _, f := range fs.Args() {
		data, err := readFileFlag("merge", f, release.MaxEnvelopeBytes)
		if err != nil {
			return usageErr(fail(err))
		}
		envs = append(envs, data)
	}
	merged, err := release.MergeSignatures(envs...)
	if err != nil {
		return fail(err)
	}
	if err := atomicfile.Write(*out, merged, 0o644); err != nil {
		return fail(err)
	}
	env, _ := release.ParseEnvelope(merged)
	fmt.Fprintf(stdout, "merged %d copies: %d signature(s); wrote %s\n", len(envs), len(env.Signatures), *out)
	return reportSignatures(ctx, stdout, stderr, *stage, merged)
}

// reorder moves flags before positional arguments, so that `--add-signature FILE -key K` parses.
// It is used only by commands whose flags all take a value (a "-name value" pair is moved whole).
func reorder(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if len(a) > 1 && a[0] == '-' {
			flags = append(flags, a)
			if !containsEq(a) && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}

func containsEq(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '=' {
			return true
		}
	}
	return false
}

// describeDocument prints what a signer is about to sign.
func describeDocument(w io.Writer, name string, data []byte) error {
	env, doc, err := release.DecodeUnverified(data)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	fmt.Fprintf(w, "signing %s (%s), already signed by %d key(s):\n", name, env.PayloadType, len(env.Signatures))
	switch d := doc.(type) {
	case *release.Root:
		fmt.Fprintf(w, "  root version %d, expires %s\n", d.Version, d.Expires.Format(time.RFC3339))
		for _, r := range []struct {
			name string
			rk   release.RoleKeys
		}{{"root", d.Roles.Root}, {"release", d.Roles.Release}, {"timestamp", d.Roles.Timestamp},
			{"trustees", d.Roles.Trustees}, {"enrolment", d.Roles.Enrolment}, {"privacy", d.Roles.Privacy}} {
			fmt.Fprintf(w, "  %-9s %d of", r.name, r.rk.Threshold)
			for _, id := range r.rk.KeyIDs {
				fmt.Fprintf(w, " %s", id.Short())
			}
			fmt.Fprintln(w)
		}
	case *release.Manifest:
		fmt.Fprintf(w, "  %s version %d (parent %d), %d artifact(s), expires %s\n", d.Model, d.Version, d.Parent, len(d.Artifacts), d.Expires.Format(time.RFC3339))
	case *release.Latest:
		fmt.Fprintf(w, "  pointer to %s version %d, expires %s\n", d.Model, d.Version, d.Expires.Format(time.RFC3339))
	case *release.KeyEpoch:
		fmt.Fprintf(w, "  key epoch %d, expires %s\n", d.Epoch, d.Expires.Format(time.RFC3339))
	}
	return nil
}

// requireStageDir refuses a -stage that is not a directory, before anything is signed.
func requireStageDir(dir string) error {
	if dir == "" {
		return nil
	}
	if info, err := os.Stat(dir); err != nil {
		return fmt.Errorf("flag -stage: %w (copy the stage to this machine)", err)
	} else if !info.IsDir() {
		return fmt.Errorf("flag -stage %s is not a directory", dir)
	}
	return nil
}

// reportSignatures says how far a document is from its thresholds: for a root, its own root
// keys' and (if the previous root is staged) the previous root's; for other documents, the
// newest staged root's that verifies (a pending newest root is named in a warning on warn, see
// stagedChain).
func reportSignatures(ctx context.Context, w, warn io.Writer, stageDir string, data []byte) error {
	_, doc, err := release.DecodeUnverified(data)
	if err != nil {
		return err
	}
	var prev *release.Root
	if stageDir != "" {
		// Opening the store would create a missing directory, and a root would then be
		// counted against its own keys alone: "thresholds met" where the previous root's are not.
		if err := requireStageDir(stageDir); err != nil {
			return err
		}
		st, err := store.NewFS(stageDir)
		if err != nil {
			return err
		}
		// A root is counted against its predecessor, and only the chain up to it is read; a
		// first root against its own keys alone.
		r, isRoot := doc.(*release.Root)
		var chain *stageChain
		switch {
		case isRoot && r.Version > 1:
			if chain, err = stagedChain(ctx, st, r.Version-1); err == nil {
				prev, err = chain.at(r.Version - 1)
			}
		case !isRoot:
			if chain, err = stagedChain(ctx, st, 0); err == nil {
				prev = chain.newest()
				chain.warn(warn, stageDir)
			}
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if isRoot && r.Version > 1 && prev == nil {
			return fmt.Errorf("flag -stage %s: holds no root version %d, which root version %d must be signed under", stageDir, r.Version-1, r.Version)
		}
	}
	if _, ok := doc.(*release.Root); ok {
		printRootSignatures(w, data, prev)
		return nil
	}
	if prev == nil {
		fmt.Fprintln(w, "(give -stage to check the signatures against the staged root)")
		return nil
	}
	role, valid, threshold, err := release.SignatureStatus(prev, data)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s role of root version %d: %d of %d signature(s)\n", role, prev.Version, valid, threshold)
	return nil
}

// printRootSignatures prints a root's signature counts against its own root keys and prev's.
func printRootSignatures(w io.Writer, data []byte, prev *release.Root) {
	_, doc, err := release.DecodeUnverified(data)
	r, ok := doc.(*release.Root)
	if err != nil || !ok {
		return
	}
	complete := true
	_, valid, threshold, err := release.SignatureStatus(r, data)
	if err == nil {
		fmt.Fprintf(w, "its own root keys: %d of %d signature(s)\n", valid, threshold)
		complete = complete && valid >= threshold
	}
	if prev != nil {
		_, valid, threshold, err := release.SignatureStatus(prev, data)
		if err == nil {
			fmt.Fprintf(w, "root version %d's root keys: %d of %d signature(s)\n", prev.Version, valid, threshold)
			complete = complete && valid >= threshold
		}
	}
	if complete {
		fmt.Fprintln(w, "thresholds met")
	} else {
		fmt.Fprintln(w, "thresholds NOT met: more signers must run `vigil release sign --add-signature` on a copy")
	}
}
