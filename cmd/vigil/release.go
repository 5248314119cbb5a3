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
		{"keygen", "make an ML-DSA-65 key pair (PREFIX.key, PREFIX.pub)", runReleaseKeygen},
		{"sign", "sign a root, a release, a fresh latest pointer or a key epoch into a staging directory", runReleaseSign},
		{"publish", "copy a staging directory to stores (directories or s3://bucket/prefix), retrying", runReleasePublish},
		{"verify", "verify the newest release in a store against a pinned root; say exactly what failed", runReleaseVerify},
		{"inspect", "print a signed document WITHOUT verifying it", runReleaseInspect},
	}
	usage := func() {
		fmt.Fprintln(stderr, "usage: vigil release <command> [flags]\n\ncommands:")
		for _, s := range subs {
			fmt.Fprintf(stderr, "  %-8s %s\n", s.name, s.summary)
		}
		fmt.Fprintln(stderr, "\nStores: a directory, or s3://bucket[/prefix] on MinIO with credentials from")
		fmt.Fprintln(stderr, "VIGIL_MINIO_ENDPOINT, VIGIL_MINIO_ACCESS_KEY, VIGIL_MINIO_SECRET_KEY (VIGIL_MINIO_TLS=1 for https).")
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage()
		if len(args) == 0 {
			return errors.New("release: no command given")
		}
		return flag.ErrHelp
	}
	for _, s := range subs {
		if s.name == args[0] {
			return s.run(ctx, args[1:], stdout, stderr)
		}
	}
	usage()
	return fmt.Errorf("release: unknown command %q", args[0])
}

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

// parseTime reads a flag that is either a duration from now ("720h") or an RFC 3339 time.
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
	return t, nil
}

// minioFromEnv returns the MinIO settings of the environment.
func minioFromEnv(bucket, prefix string) (store.MinIOConfig, error) {
	cfg := store.MinIOConfig{
		Endpoint:  os.Getenv("VIGIL_MINIO_ENDPOINT"),
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

// openStore opens a location: s3://bucket[/prefix] or a directory. A writer's bucket is created
// with object locking if needed; a reader's directory must already exist.
func openStore(ctx context.Context, loc string, write bool) (store.Store, error) {
	if rest, ok := strings.CutPrefix(loc, "s3://"); ok {
		bucket, prefix, _ := strings.Cut(rest, "/")
		cfg, err := minioFromEnv(bucket, strings.TrimSuffix(prefix, "/"))
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

// readFileFlag reads the file a flag names.
func readFileFlag(name, path string, limit int64) ([]byte, error) {
	if path == "" {
		return nil, fmt.Errorf("flag -%s is required", name)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("flag -%s: %w", name, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("flag -%s: %w", name, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("flag -%s: %s is larger than %d bytes", name, path, limit)
	}
	return data, nil
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// noArgs refuses positional arguments a command does not take.
func noArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}
