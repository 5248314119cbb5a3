package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/vigilauth/vigil/internal/atomicfile"
	"github.com/vigilauth/vigil/store"
)

// runReleaseInitRegion is `vigil release init-region`: run once per region with the region's
// admin (MinIO root) credentials, which are then put away.
func runReleaseInitRegion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("release init-region", stdout, envMinIO...)
	to := fs.String("to", "", "the region: s3://`BUCKET`[/prefix] or s3+http(s)://HOST:PORT/BUCKET[/prefix]")
	publisher := fs.String("publisher", "", "`NAME` of the publisher user to create (or update)")
	pubSecret := fs.String("publisher-secret-file", "", "`FILE` holding the publisher's secret key; created with a random one (mode 0600) if missing")
	reader := fs.String("reader", "", "`NAME` of the devices' read-only user (optional)")
	readSecret := fs.String("reader-secret-file", "", "`FILE` holding the reader's secret key; created if missing")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: vigil release init-region --to s3://BUCKET --publisher NAME --publisher-secret-file FILE [--reader NAME --reader-secret-file FILE]

With the region's admin credentials in VIGIL_MINIO_ACCESS_KEY / VIGIL_MINIO_SECRET_KEY, creates
the bucket with object lock and versioning, a publisher user whose policy allows reading and
writing new objects and denies every delete, retention and bucket-policy change, optionally a
read-only user for devices, and a bucket policy denying writes to everyone but the publisher.
It then checks the lockdown with the users' own credentials. Publish with the publisher's
credentials afterwards, never the admin's. Idempotent: run it again to repair a region.`)
		printFlags(fs.Output(), fs)
		printEnv(fs.Output(), envMinIO)
	}
	if err := parseReleaseFlags(fs, args, stdout); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	fail := func(err error) error { return usageErr(fmt.Errorf("release init-region: %w", err)) }
	cfg, ok, err := s3Location(*to)
	if !ok {
		return fail(errors.New("flag -to must be s3://BUCKET[/prefix] or s3+http(s)://HOST:PORT/BUCKET[/prefix]"))
	}
	if err != nil {
		return fail(fmt.Errorf("flag -to: %w", err))
	}
	if *publisher == "" {
		return fail(errors.New("flag -publisher is required"))
	}
	users := store.RegionUsers{PublisherAccessKey: *publisher}
	if users.PublisherSecretKey, err = secretFile("publisher-secret-file", *pubSecret); err != nil {
		return fail(err)
	}
	if *reader != "" {
		users.ReaderAccessKey = *reader
		if users.ReaderSecretKey, err = secretFile("reader-secret-file", *readSecret); err != nil {
			return fail(err)
		}
	}
	if err := store.InitRegion(ctx, cfg, users); err != nil {
		if errors.Is(err, store.ErrRegionOpen) {
			return refusedErr(fmt.Errorf("release init-region: %w", err))
		}
		return withCode(exitRegion, fmt.Errorf("release init-region: %s: %w", *to, err))
	}
	fmt.Fprintf(stdout, "region %s: bucket with object lock, publisher %q (no deletes), ", *to, *publisher)
	if *reader != "" {
		fmt.Fprintf(stdout, "reader %q (read only), ", *reader)
	}
	fmt.Fprintf(stdout, "bucket policy set; lockdown checked\npublish with: VIGIL_MINIO_ACCESS_KEY=%s VIGIL_MINIO_SECRET_KEY=\"$(cat %s)\" vigil release publish ...\n", *publisher, *pubSecret)
	return nil
}

// secretFile reads a secret key from the file a flag names, creating it with a random secret
// if it does not exist.
func secretFile(flagName, path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("flag -%s is required", flagName)
	}
	data, err := readFileFlag(flagName, path, 1024)
	if err == nil {
		s := strings.TrimSpace(string(data))
		if len(s) < 8 {
			return "", fmt.Errorf("flag -%s: %s holds fewer than 8 characters", flagName, path)
		}
		return s, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	s := hex.EncodeToString(b[:])
	if err := atomicfile.Create(path, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("flag -%s: %w", flagName, err)
	}
	return s, nil
}
