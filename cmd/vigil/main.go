// Command vigil runs every role of Vigil from one binary: the in-process demo, the coordinator,
// trustees and device clients as separate processes, and the tools for operators and privacy
// reviewers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
)

// command is one subcommand of the vigil binary.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"agent", "run the device agent: local API for applications, vigil.js, --demo-app", runAgent},
		{"demo", "run a coordinator and simulated devices in one process for a few rounds", runDemo},
		{"setup", "create an organisation locally: CA, root of trust, key ceremony, trustee credentials", runSetup},
		{"coordinator", "run the coordinator: federated rounds over gRPC, /metrics for Prometheus", runCoordinator},
		{"status", "show a running coordinator: rounds, devices, trustees, regions, privacy budget", runStatus},
		{"admin", "operate a running coordinator: pause, resume, abort a round, remove a device", runAdmin},
		{"client", "run one device agent against a coordinator", runClient},
		{"trustee", "run a trustee holding one share of the HE secret key, or run the key ceremony", runTrustee},
		{"eval", "measure the behavioural models on recorded data (keystrokes, mouse)", runEval},
		{"loadtest", "measure a coordinator process under a fleet of devices sending encrypted updates", runLoadtest},
		{"privacy", "tools for privacy reviewers: epsilon, plan, curve, ledger, report", runPrivacy},
		{"enrol", "the enrolment authority: create it, issue one-time tokens, serve device registrations", runEnrol},
		{"pki", "transport identity: create the CA, issue trustee certificates, revoke", runPKI},
		{"audit", "verify decision logs and create checkpoint keys", runAudit},
		{"siem", "deliver decisions as OCSF events to a Splunk HEC endpoint or a syslog-over-TLS receiver", runSIEM},
		{"console", "read-only web pages for operators: the verified decision log, the SIEM backlog (mutual TLS)", runConsole},
		{"release", "sign, verify, publish and inspect model releases: keygen, sign, verify, publish, inspect, init-region, status", runRelease},
		{"preflight", "check a start-up kit from vigil setup --kits before its service starts", runPreflight},
		{"version", "print the build: version, VCS revision, Go version", runVersion},
		{"completion", "print shell completion for bash, zsh or fish", runCompletion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0) // help was asked for and printed
		}
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			// Stopped by SIGINT or SIGTERM before it finished: not a usage error.
			fmt.Fprintln(os.Stderr, "vigil: interrupted")
			os.Exit(130)
		}
		fmt.Fprintln(os.Stderr, "vigil:", dashedFlags(err.Error()))
		// A command whose exit codes mean something (vigil release) says which; anything else
		// is 2.
		var coded interface{ ExitCode() int }
		if errors.As(err, &coded) {
			os.Exit(coded.ExitCode())
		}
		os.Exit(2)
	}
}

// flagNamedOneDash matches a flag named with one dash by the flag package ("flag provided but
// not defined: -x", "invalid value ... for flag -x") or by messages written in its style
// ("flag -dir is required").
var flagNamedOneDash = regexp.MustCompile(`(\bflag(?: provided but not defined:| needs an argument:)? )-([A-Za-z])`)

// dashedFlags writes flags in msg as the help and the documentation do, with two dashes.
func dashedFlags(msg string) string {
	return flagNamedOneDash.ReplaceAllString(msg, "$1--$2")
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return usageError{errors.New("no command given")}
	}
	if isHelp(args[0]) {
		usage(stdout) // asked for: on stdout, so that `vigil --help | less` shows it
		return nil
	}
	if args[0] == "--version" {
		return runVersion(ctx, nil, stdout, stderr)
	}
	if args[0] == "__complete" {
		return runComplete(ctx, args[1:], stdout, io.Discard)
	}
	if asksHelp(args) {
		// Help that was asked for goes to stdout, so that `vigil <command> -h | less` shows it,
		// whichever writer the command prints its usage to.
		stderr = stdout
	}
	for _, c := range commands() {
		if c.name == args[0] {
			rest, err := expandConfig(args[1:])
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			return pointAtHelp(args, fromConfig(args[1:], c.run(ctx, rest, stdout, stderr)))
		}
	}
	usage(stderr)
	if strings.HasPrefix(args[0], "-") {
		for _, a := range args[1:] {
			for _, c := range commands() {
				if c.name == a {
					return fmt.Errorf("unknown command %q: flags come after the command (vigil %s %s ...)", args[0], a, args[0])
				}
			}
		}
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: vigil <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'vigil <command> -h' for a command's flags.")
}

// asksHelp reports whether the command line asks for help: -h, -help or --help before any
// "--".
func asksHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}
