package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
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
	env             []string // environment variables the command reads (see envMinIO)
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
	printHelp(c.stdout, c.FlagSet, c.synopsis, c.about, c.env...)
}

// printHelp is the one layout of every command's help: the usage line, what the command does,
// its flags and the environment variables it reads.
func printHelp(w io.Writer, fs *flag.FlagSet, synopsis, about string, env ...string) {
	fmt.Fprintf(w, "usage: %s\n", synopsis)
	if about != "" {
		fmt.Fprintf(w, "\n%s\n", about)
	}
	printFlags(w, fs)
	printEnv(w, env)
}

// printFlags lists fs's flags as they are typed, --name PLACEHOLDER, each with its description
// and default on the lines below. The placeholder is the word in backquotes in the flag's
// description, else one named after the flag, never a Go type name.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintln(w, "\nflags:")
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if p := placeholder(f, name, usage); p != "" {
			line += " " + p
		}
		fmt.Fprintln(w, line)
		if def := f.DefValue; !isZeroDefault(def) {
			if g, ok := f.Value.(flag.Getter); ok {
				if _, isString := g.Get().(string); isString {
					def = fmt.Sprintf("%q", def)
				}
			}
			usage += " (default " + def + ")"
		}
		fmt.Fprintf(w, "        %s\n", strings.ReplaceAll(usage, "\n", "\n        "))
	})
}

// placeholder names a flag's value: unquoted is what flag.UnquoteUsage found, the word in
// backquotes or the value's Go type ("" for a boolean); usage is the flag's description.
func placeholder(f *flag.Flag, unquoted, usage string) string {
	if _, ok := f.Value.(durationFlag); ok {
		return "DURATION"
	}
	switch unquoted {
	case "":
		return ""
	case "int", "uint", "int64", "uint64":
		return "N"
	case "float":
		return "NUMBER"
	case "duration":
		return "DURATION"
	case "string", "value":
	default:
		if !strings.ContainsAny(unquoted, " \t") {
			return short(strings.ToUpper(unquoted))
		}
	}
	last := f.Name[strings.LastIndex(f.Name, "-")+1:]
	switch {
	case last == "listen" || last == "addr" || last == "address" || last == "endpoint" || strings.Contains(usage, "address"):
		return "ADDR"
	case last == "dir" || strings.HasPrefix(usage, "directory") || strings.Contains(usage, " directory"):
		return "DIR"
	case last == "file" || last == "path" || strings.HasPrefix(usage, "file") || strings.Contains(usage, " file"):
		return "FILE"
	}
	return short(strings.ToUpper(last))
}

// short spells the common placeholders one way.
func short(p string) string {
	switch p {
	case "DIRECTORY":
		return "DIR"
	case "ADDRESS":
		return "ADDR"
	}
	return p
}

// isZeroDefault reports a default not worth printing.
func isZeroDefault(def string) bool {
	switch def {
	case "", "0", "false", "0s", "[]":
		return true
	}
	return false
}

// Environment variables, listed in the help of the commands that read them.
var (
	envMinIO = []string{
		"VIGIL_MINIO_ENDPOINT    host:port of the S3/MinIO server of s3:// locations",
		"VIGIL_MINIO_ACCESS_KEY  access key of s3:// locations (a region's publisher or reader, never its admin)",
		"VIGIL_MINIO_SECRET_KEY  secret key of s3:// locations",
		"VIGIL_MINIO_REGION      the bucket's region (default us-east-1)",
		"VIGIL_MINIO_TLS         true: talk https to VIGIL_MINIO_ENDPOINT",
	}
	envPassphrase = []string{
		"VIGIL_KEY_PASSPHRASE_FILE  file holding the passphrase of encrypted private keys",
		"VIGIL_KEY_PASSPHRASE       the passphrase itself (VIGIL_KEY_PASSPHRASE_FILE is preferred)",
	}
)

func printEnv(w io.Writer, env []string) {
	if len(env) == 0 {
		return
	}
	fmt.Fprintln(w, "\nenvironment:")
	for _, e := range env {
		fmt.Fprintf(w, "  %s\n", e)
	}
}

// newFlags returns the flag set of `vigil <name>` with the CLI's one usage printer, for
// commands that pass their flags around as a *flag.FlagSet: -h prints printHelp's page (usage
// line, the command's summary, flags, the environment variables in env) on help and Parse
// returns flag.ErrHelp (exit 0); a wrong flag prints nothing, and the error Parse returns is the
// one line the command reports (exit 2). help is the command's stdout; a command given only
// stderr passes that, which run points at stdout when help is asked for.
func newFlags(name string, help io.Writer, env ...string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// The flag package writes a parse error to the output before it calls Usage, and nothing
	// before Usage when help was asked for: that is how the two are told apart.
	failed := &failWriter{}
	fs.SetOutput(failed)
	fs.Usage = func() {
		if !failed.wrote {
			printHelp(help, fs, "vigil "+name+" [flags]", sentence(summaryOf(name)), env...)
		}
	}
	return fs
}

// sentence makes a one-line summary ("run the coordinator: ...") read as a sentence.
func sentence(summary string) string {
	if summary == "" {
		return ""
	}
	return strings.ToUpper(summary[:1]) + summary[1:] + "."
}

// summaryOf returns the one-line summary of `vigil <name>` from the command tables, so that
// a command's help and the list of commands say the same.
func summaryOf(name string) string {
	if sub, ok := strings.CutPrefix(name, "trustee "); ok {
		for _, c := range trusteeCommands() {
			if c.name == sub {
				return c.summary
			}
		}
	}
	if sub, ok := strings.CutPrefix(name, "privacy "); ok {
		for _, c := range privacySubcommands() {
			if c.name == sub {
				return c.summary
			}
		}
	}
	for _, c := range commands() {
		if c.name == name {
			return c.summary
		}
	}
	return ""
}

// flagErrors are the flag package's messages for a wrong flag.
var flagErrors = []string{"flag provided but not defined: ", "flag needs an argument: ", "invalid value ", "invalid boolean value ", "invalid boolean flag "}

// pointAtHelp makes a wrong flag of a command that parses with newFlags read as one of
// parseCmdFlags does: the command and where its flags are listed, exit 2. args is the command
// line after vigil; other errors pass unchanged.
func pointAtHelp(args []string, err error) error {
	if err == nil || strings.Contains(err.Error(), "(see 'vigil ") {
		return err
	}
	for _, m := range flagErrors {
		if strings.Contains(err.Error(), m) {
			var path []string
			for _, a := range args {
				if strings.HasPrefix(a, "-") {
					break
				}
				path = append(path, a)
			}
			cmd := strings.Join(path, " ")
			if strings.HasPrefix(err.Error(), cmd+": ") {
				return usageError{fmt.Errorf("%w (see 'vigil %s -h')", err, cmd)}
			}
			return usageError{fmt.Errorf("%s: %w (see 'vigil %s -h')", cmd, err, cmd)}
		}
	}
	return err
}

// failWriter records that the flag package reported an error, and discards it: the error is
// also returned by Parse, and the command reports it once.
type failWriter struct{ wrote bool }

func (f *failWriter) Write(p []byte) (int, error) {
	f.wrote = true
	return len(p), nil
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
		return usageError{fmt.Errorf("%w (see 'vigil %s -h')", unexpectedArgument(c.Name(), c.FlagSet), c.Name())}
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

// unexpectedArgument refuses fs's first argument, in command cmd, which takes none. Two slips
// are common enough to name: the directory given without its flag ("vigil setup org", in a
// command with a --dir not given), and the value of a true-or-false flag given after a space
// ("--insecure-plaintext false", which such a flag does not take).
func unexpectedArgument(cmd string, fs *flag.FlagSet) error {
	arg := fs.Arg(0)
	if _, err := strconv.ParseBool(arg); err == nil {
		return fmt.Errorf("%s: unexpected argument %q (a true-or-false flag takes its value after '=', as --flag=%s)", cmd, arg, arg)
	}
	if fs.Lookup("dir") != nil && !setFlag(fs, "dir") && !strings.HasPrefix(arg, "-") {
		return fmt.Errorf("%s: unexpected argument %q (did you mean --dir %s? flags come before arguments, and this command takes none)", cmd, arg, arg)
	}
	return fmt.Errorf("%s: unexpected argument %q", cmd, arg)
}
