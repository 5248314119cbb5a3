package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
)

// trusteeCommands are the subcommands of `vigil trustee`.
var trusteeCommands = []struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}{
	{"init", "create this trustee's ceremony identity in --dir", runTrusteeInit},
	{"roster", "assemble the ceremony roster from the trustees' public identities", runTrusteeRoster},
	{"deal", "make this trustee's dealing for a roster", runTrusteeDeal},
	{"finish", "verify all dealings and write this trustee's share and the key epoch", runTrusteeFinish},
	{"ceremony", "run the whole ceremony for n trustees on this (air-gapped) host", runTrusteeCeremony},
	{"serve", "serve decryption shares over gRPC from the share in --dir", runTrusteeServe},
}

// runTrustee runs one trustee role: the key ceremony steps and the trustee service.
//
// The distributed ceremony, with files carried between hosts by any untrusted means:
//
//	each trustee:   vigil trustee init --dir D --id ID           (publishes D/identity.pub)
//	anyone:         vigil trustee roster --out roster.bin --threshold T A.pub B.pub C.pub
//	each trustee:   vigil trustee deal --dir D --roster roster.bin --out ID.dealing
//	each trustee:   vigil trustee finish --dir D --roster roster.bin *.dealing
//	each trustee:   vigil trustee serve --dir D --listen HOST:PORT --min-contributors M ...
//
// Trustees compare the roster digest that roster, deal and finish print, and the key digest
// that finish prints, out of band; the coordinator publishes D/key-epoch.bin, signed.
func runTrustee(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		trusteeUsage(stderr)
		if len(args) == 0 {
			return errors.New("trustee: no subcommand given")
		}
		return flag.ErrHelp
	}
	for _, c := range trusteeCommands {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	trusteeUsage(stderr)
	return fmt.Errorf("trustee: unknown subcommand %q", args[0])
}

func trusteeUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: vigil trustee <subcommand> [flags]\n\nsubcommands:")
	for _, c := range trusteeCommands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'vigil trustee <subcommand> -h' for its flags.")
}

// newTrusteeFlags returns a flag set for `vigil trustee name` writing to stderr.
func newTrusteeFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("trustee "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// trusteeRequireFlag reports a missing required string flag by name.
func trusteeRequireFlag(cmd, name, value string) error {
	if value == "" {
		return fmt.Errorf("trustee %s: --%s is required", cmd, name)
	}
	return nil
}
