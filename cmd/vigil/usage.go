package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
)

// usageError is a mistake on the command line (exit status 2); the message names the flag or
// argument.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// ExitCode is 2, as for every command-line mistake.
func (e usageError) ExitCode() int { return 2 }

// cmdFlags is a command's flag set with the one usage printer of the CLI: help goes to stdout
// when asked for (-h, --help; exit 0), and a wrong flag gives a one-line error naming it and
// pointing at -h (exit 2), without a page of flags on stderr.
type cmdFlags struct {
	*flag.FlagSet
	synopsis, about string
	stdout          io.Writer
}

// newCmdFlags returns the flag set of `vigil <name>`; synopsis is its usage line and about
// what it does.
func newCmdFlags(name, synopsis, about string, stdout io.Writer) *cmdFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &cmdFlags{FlagSet: fs, synopsis: synopsis, about: about, stdout: stdout}
}

// printUsage writes the command's help to its stdout.
func (c *cmdFlags) printUsage() {
	fmt.Fprintf(c.stdout, "usage: %s\n", c.synopsis)
	if c.about != "" {
		fmt.Fprintf(c.stdout, "\n%s\n", c.about)
	}
	fmt.Fprintln(c.stdout, "\nflags:")
	c.SetOutput(c.stdout)
	c.PrintDefaults()
	c.SetOutput(io.Discard)
}

// parseCmdFlags parses args; it prints help and returns flag.ErrHelp (exit 0) when asked for it,
// and a usageError for a wrong flag or a stray argument.
func parseCmdFlags(c *cmdFlags, args []string) error {
	err := c.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		c.printUsage()
		return flag.ErrHelp
	case err != nil:
		return usageError{fmt.Errorf("%s: %w (see 'vigil %s -h')", c.Name(), err, c.Name())}
	case c.NArg() > 0:
		return usageError{fmt.Errorf("%s: unexpected argument %q (see 'vigil %s -h')", c.Name(), c.Arg(0), c.Name())}
	}
	return nil
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help" || arg == "help"
}

// printSubcommands writes the help of a command made of subcommands.
func printSubcommands(w io.Writer, synopsis string, subs []command) {
	fmt.Fprintf(w, "usage: %s\n\ncommands:\n", synopsis)
	for _, s := range subs {
		fmt.Fprintf(w, "  %-14s %s\n", s.name, s.summary)
	}
}

// runVersion is `vigil version`: the build.
func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newCmdFlags("version", "vigil version", "Print the binary's version, VCS revision and Go version.", stdout)
	if err := parseCmdFlags(fs, args); err != nil {
		return err
	}
	_, err := fmt.Fprintf(stdout, "vigil %s\n", buildVersion())
	return err
}
