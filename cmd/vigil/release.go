package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vigilauth/vigil/store"
)

// runRelease is `vigil release`: the operator's tools for keys, signed releases and stores.
func runRelease(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	subs := []struct {
		name, summary string
		run           func(context.Context, []string, io.Writer, io.Writer) error
	}{
		{"keygen", "make an ML-DSA-65 key pair (PREFIX.key, encrypted under a passphrase, and PREFIX.pub)", runReleaseKeygen},
		{"sign", "sign a root, a release, a fresh latest pointer or a key epoch into a staging directory; --add-signature, --merge", runReleaseSign},
		{"publish", "verify a staging directory against its roots, then copy it to every region, retrying", runReleasePublish},
		{"status", "per region: what is published, whether it verifies, versions and expiries, with warnings", runReleaseStatus},
		{"verify", "verify the newest release in a store against a pinned root; say exactly what failed", runReleaseVerify},
		{"inspect", "print a signed document WITHOUT verifying it", runReleaseInspect},
		{"init-region", "set up a region's bucket with the admin credentials: object lock, publisher and reader users, policies", runReleaseInitRegion},
	}
	usage := func(w io.Writer) {
		fmt.Fprintln(w, "usage: vigil release <command> [flags]\n\ncommands:")
		for _, s := range subs {
			fmt.Fprintf(w, "  %-11s %s\n", s.name, s.summary)
		}
		fmt.Fprintln(w, "\nStores: a directory, or s3://bucket[/prefix] on MinIO with credentials from")
		fmt.Fprintln(w, "VIGIL_MINIO_ENDPOINT, VIGIL_MINIO_ACCESS_KEY, VIGIL_MINIO_SECRET_KEY (VIGIL_MINIO_TLS=1 for https).")
		fmt.Fprintln(w, "Encrypted keys: VIGIL_KEY_PASSPHRASE_FILE (or VIGIL_KEY_PASSPHRASE); a hardware key is -key exec:PROGRAM.")
		fmt.Fprintln(w, "\nExit codes: 0 done (or nothing to do); 1 refused: something does not verify, expired or conflicts;")
		fmt.Fprintln(w, "2 usage: a flag or file is wrong; 3 warnings: something expires soon; 4 a region failed (retry).")
	}
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		usage(stdout)
		return nil
	}
	if len(args) == 0 {
		usage(stderr)
		return usageErr(errors.New("release: no command given"))
	}
	for _, s := range subs {
		if s.name == args[0] {
			err := s.run(ctx, args[1:], stdout, stderr)
			if errors.Is(err, flag.ErrHelp) {
				return nil // the flag package printed the help that was asked for
			}
			return err
		}
	}
	usage(stderr)
	return usageErr(fmt.Errorf("release: unknown command %q", args[0]))
}

// Exit codes of `vigil release` (main turns an error with ExitCode into the process's).
const (
	exitRefused = 1 // something does not verify, has expired, or conflicts
	exitUsage   = 2 // a flag or a file is wrong
	exitWarn    = 3 // everything verifies but something expires soon
	exitRegion  = 4 // a region could not be brought up to date (an outage: retry)
)

// exitError carries the exit code of a failed command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// ExitCode is the process exit code for e.
func (e *exitError) ExitCode() int { return e.code }

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return &exitError{code: code, err: err}
}

func usageErr(err error) error   { return withCode(exitUsage, err) }
func refusedErr(err error) error { return withCode(exitRefused, err) }

// listFlag collects a repeatable, comma-separated flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// parseTime reads a flag that is either a duration from now ("720h") or an RFC 3339 time, and
// refuses one that is not after now.
func parseTime(name, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, fmt.Errorf("flag -%s is required", name)
	}
	if d, err := time.ParseDuration(v); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("flag -%s: %s is not in the future", name, v)
		}
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("flag -%s: %q is neither a duration (720h) nor an RFC 3339 time", name, v)
	}
	if !t.After(now) {
		return time.Time{}, fmt.Errorf("flag -%s: %s is not in the future", name, v)
	}
	return t, nil
}

// minioFromEnv returns the MinIO settings of the environment; endpoint, if not empty, replaces
// VIGIL_MINIO_ENDPOINT.
func minioFromEnv(endpoint, bucket, prefix string) (store.MinIOConfig, error) {
	if endpoint == "" {
		endpoint = os.Getenv("VIGIL_MINIO_ENDPOINT")
	}
	cfg := store.MinIOConfig{
		Endpoint:  endpoint,
		AccessKey: os.Getenv("VIGIL_MINIO_ACCESS_KEY"),
		SecretKey: os.Getenv("VIGIL_MINIO_SECRET_KEY"),
		Region:    os.Getenv("VIGIL_MINIO_REGION"),
		Bucket:    bucket,
		Prefix:    prefix,
	}
	if tls := os.Getenv("VIGIL_MINIO_TLS"); tls != "" {
		on, err := strconv.ParseBool(tls)
		if err != nil {
			return cfg, fmt.Errorf("VIGIL_MINIO_TLS=%q is not a boolean", tls)
		}
		cfg.TLS = on
	}
	if cfg.Endpoint == "" || cfg.AccessKey == "" || cfg.SecretKey == "" {
		return cfg, errors.New("s3:// locations need VIGIL_MINIO_ENDPOINT, VIGIL_MINIO_ACCESS_KEY and VIGIL_MINIO_SECRET_KEY")
	}
	return cfg, nil
}

// s3Location parses s3://bucket[/prefix] (endpoint from VIGIL_MINIO_ENDPOINT) and
// s3+http://host:port/bucket[/prefix] or s3+https://... (one endpoint per region), with the
// credentials of the environment.
func s3Location(loc string) (store.MinIOConfig, bool, error) {
	endpoint, tls := "", false
	rest, ok := strings.CutPrefix(loc, "s3://")
	if !ok {
		for scheme, secure := range map[string]bool{"s3+http://": false, "s3+https://": true} {
			if r, found := strings.CutPrefix(loc, scheme); found {
				endpoint, rest, _ = strings.Cut(r, "/")
				tls, ok = secure, true
			}
		}
	}
	if !ok {
		return store.MinIOConfig{}, false, nil
	}
	bucket, prefix, _ := strings.Cut(rest, "/")
	cfg, err := minioFromEnv(endpoint, bucket, strings.TrimSuffix(prefix, "/"))
	if endpoint != "" {
		cfg.TLS = tls
	}
	return cfg, true, err
}

// openStore opens a location: s3://bucket[/prefix], s3+http(s)://host:port/bucket[/prefix] or a
// directory. A writer's bucket is created with object locking if needed (the region's admin
// does that with `vigil release init-region`); a reader's directory must already exist.
func openStore(ctx context.Context, loc string, write bool) (store.Store, error) {
	if cfg, ok, err := s3Location(loc); ok {
		if err != nil {
			return nil, fmt.Errorf("%s: %w", loc, err)
		}
		st, err := store.NewMinIO(cfg)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", loc, err)
		}
		if write {
			if err := st.EnsureBucket(ctx); err != nil {
				return nil, fmt.Errorf("%s: %w", loc, err)
			}
		}
		return st, nil
	}
	if strings.Contains(loc, "://") {
		return nil, fmt.Errorf("%s: only directories and s3:// locations are supported", loc)
	}
	if !write {
		info, err := os.Stat(loc)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			return nil, fmt.Errorf("%s is not a directory", loc)
		}
	}
	return store.NewFS(loc)
}

// readFileFlag reads the file the flag name gives, or with no name the FILE argument, at most
// limit bytes; its errors name the flag or the file.
func readFileFlag(name, path string, limit int64) ([]byte, error) {
	what := "flag -" + name
	if name == "" {
		what = "FILE " + path // an argument, not a flag
	}
	if path == "" {
		return nil, fmt.Errorf("%s is required", what)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %s is larger than %d bytes", what, path, limit)
	}
	return data, nil
}

// newFlagSet returns the flag set of `vigil <name>` (see newFlags); a command with more to say
// than its summary sets its own Usage, printing to fs.Output() with printFlags and printEnv.
func newFlagSet(name string, stdout io.Writer, env ...string) *flag.FlagSet {
	return newFlags(name, stdout, env...)
}

// parseReleaseFlags parses args, printing the help on stdout when -h is given.
func parseReleaseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(stdout)
			fs.Usage()
			return flag.ErrHelp
		}
	}
	return usageErr(fs.Parse(args))
}

// noArgs refuses positional arguments a command does not take.
func noArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return usageErr(unexpectedArgument(fs.Name(), fs))
	}
	return nil
}
