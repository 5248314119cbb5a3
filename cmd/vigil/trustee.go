package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// trusteeCommands are the subcommands of `vigil trustee`.
func trusteeCommands() []command {
	return []command{
		{"init", "create this trustee's ceremony identity in --dir", runTrusteeInit},
		{"roster", "assemble the ceremony roster from the trustees' public identities", runTrusteeRoster},
		{"deal", "make this trustee's dealing for a roster; publish only a commitment to it", runTrusteeDeal},
		{"reveal", "check every trustee's commitment, then publish this trustee's dealing", runTrusteeReveal},
		{"finish", "verify all commitments and dealings and write this trustee's share and the key epoch", runTrusteeFinish},
		{"challenge", "start this trustee's test decryption of the new key epoch", runTrusteeChallenge},
		{"respond", "decrypt another trustee's challenge with this trustee's share", runTrusteeRespond},
		{"approve", "finish this trustee's test decryption and, if it succeeds, approve the key epoch", runTrusteeApprove},
		{"ceremony", "run the whole ceremony for n trustees on this (air-gapped) host", runTrusteeCeremony},
		{"serve", "serve decryption shares over gRPC from the share in --dir", runTrusteeServe},
	}
}

// runTrustee runs one trustee role: the key ceremony steps and the trustee service.
//
// The distributed ceremony, with files carried between hosts by any untrusted means:
//
//	each trustee:   vigil trustee init --dir D --id ID           (publishes D/identity.pub)
//	anyone:         vigil trustee roster --out roster.bin --threshold T A.pub B.pub C.pub
//	each trustee:   vigil trustee deal --dir D --roster roster.bin --out ID.commit
//	                (keeps its dealing in D, publishes only the commitment)
//	each trustee, once all n commitments are in:
//	                vigil trustee reveal --dir D --roster roster.bin --commitments A.commit,... --out ID.dealing
//	each trustee:   vigil trustee finish --dir D --roster roster.bin --commitments A.commit,... --dealings A.dealing,...
//	each trustee:   vigil trustee challenge --dir D --roster roster.bin --out ID.challenge
//	every other trustee, for each challenge (each tests every set of t with its maker):
//	                vigil trustee respond --dir D --roster roster.bin --challenge X.challenge --out ID-for-X.response
//	each trustee:   vigil trustee approve --dir D --roster roster.bin --responses Y-for-ID.response,... --out ID.approval
//	each trustee:   vigil trustee serve --dir D --root ROOT --listen HOST:PORT --min-contributors M ...
//
// Trustees compare the roster digest that roster and deal print, and the key digest that
// finish and approve print, out of band; the key epoch D/key-epoch.bin is signed only with
// the trustees' approvals, each made after that trustee's own test decryption succeeded.
func runTrustee(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		trusteeUsage(stderr)
		if len(args) == 0 {
			return errors.New("trustee: no subcommand given")
		}
		return flag.ErrHelp
	}
	for _, c := range trusteeCommands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	trusteeUsage(stderr)
	return fmt.Errorf("trustee: unknown subcommand %q", args[0])
}

func trusteeUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: vigil trustee <subcommand> [flags]\n\nsubcommands:")
	for _, c := range trusteeCommands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'vigil trustee <subcommand> -h' for its flags.")
}

// newTrusteeFlags returns the flag set of `vigil trustee name`.
func newTrusteeFlags(name string, stdout io.Writer) *flag.FlagSet {
	return newFlags("trustee "+name, stdout)
}

// parseTrusteeFlags parses args into fs, refuses positional arguments and reports every
// required flag left empty, by name.
func parseTrusteeFlags(fs *flag.FlagSet, args []string, required ...string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	cmd := strings.TrimPrefix(fs.Name(), "trustee ")
	if err := trusteeNoArgs(cmd, fs); err != nil {
		return err
	}
	var errs []error
	for _, name := range required {
		errs = append(errs, trusteeRequireFlag(cmd, name, fs.Lookup(name).Value.String()))
	}
	return errors.Join(errs...)
}

// trusteeRequireFlag reports a missing required string flag by name.
func trusteeRequireFlag(cmd, name, value string) error {
	if value == "" {
		return fmt.Errorf("trustee %s: --%s is required", cmd, name)
	}
	return nil
}
