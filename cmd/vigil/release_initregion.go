package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigilauth/vigil/internal/atomicfile"
	"github.com/vigilauth/vigil/store"
)

// runReleaseInitRegion is `vigil release init-region`: run once per region with the region's
// admin (MinIO root) credentials, which are then put away.
func runReleaseInitRegion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("release init-region", stdout, envMinIO...)
	to := fs.String("to", "", "the region: s3://`BUCKET`[/prefix] or s3+http(s)://HOST:PORT/BUCKET[/prefix]")
	publisher := fs.String("publisher", "", "`NAME` of the publisher user to create (or update: an existing user only with its secret file); not the admin")
	pubSecret := fs.String("publisher-secret-file", "", "`FILE` holding the publisher's secret key; created with a random one (mode 0600) if missing")
	reader := fs.String("reader", "", "`NAME` of the devices' read-only user (optional; like -publisher, and another user)")
	readSecret := fs.String("reader-secret-file", "", "`FILE` holding the reader's secret key; created if missing")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: vigil release init-region --to s3://BUCKET --publisher NAME --publisher-secret-file FILE [--reader NAME --reader-secret-file FILE]

With the region's admin credentials in VIGIL_MINIO_ACCESS_KEY / VIGIL_MINIO_SECRET_KEY, creates
the bucket with object lock and versioning, a publisher user whose policy allows reading and
writing new objects and denies every delete, retention and bucket-policy change, optionally a
read-only user for devices, and a bucket policy denying writes to everyone but the publisher.
It then checks with the users' own credentials that the publisher can write but not delete and
that the reader cannot write. A user that exists is set to the secret in its file; one whose
secret file does not exist yet is refused (exit 2), as a new secret would lock out whoever uses
it. Publish with the
publisher's credentials afterwards, never the admin's. Idempotent: run it again to repair a
region (the publisher loses the bucket's reader policy, the reader its publisher policy).
Exit codes: 0 done; 1 the check failed; 2 usage, or a user that exists without its secret;
4 the server could not be reached or refused a step (run again).`)
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
	// What can be wrong without the server is refused before it is contacted: with exit 4 a
	// script would retry it as an outage (found by a review).
	if _, err := store.NewMinIO(cfg); err != nil {
		return fail(fmt.Errorf("flag -to %s: %w", *to, err))
	}
	for _, u := range []struct{ flag, name string }{{"publisher", *publisher}, {"reader", *reader}} {
		if u.name == cfg.AccessKey {
			return fail(fmt.Errorf("flag -%s %s: that is the admin (root) user, whose credentials these are: object lock is all that binds root; name a user of its own", u.flag, u.name))
		}
	}
	if *reader == *publisher {
		return fail(fmt.Errorf("flags -reader and -publisher both name %s: the reader's policy denies writes, so that user could not publish; name two users", *reader))
	}
	admin, err := store.NewMinIOAdmin(cfg)
	if err != nil {
		return fail(fmt.Errorf("flag -to %s: %w", *to, err))
	}
	users := store.RegionUsers{PublisherAccessKey: *publisher, ReaderAccessKey: *reader}
	if *reader != "" && *readSecret != "" && filepath.Clean(*readSecret) == filepath.Clean(*pubSecret) {
		return fail(fmt.Errorf("flags -reader-secret-file and -publisher-secret-file both name %s: the devices would hold the publisher's secret", *readSecret))
	}
	type secret struct {
		flag, name, path string
		secret           *string
		fresh            *bool
	}
	var missing []secret
	for _, u := range []secret{
		{"publisher", *publisher, *pubSecret, &users.PublisherSecretKey, &users.PublisherSecretNew},
		{"reader", *reader, *readSecret, &users.ReaderSecretKey, &users.ReaderSecretNew},
	} {
		if u.name == "" {
			continue
		}
		if *u.secret, err = readSecretFile(u.flag+"-secret-file", u.path); err != nil {
			return fail(err)
		}
		if *u.secret != "" {
			continue // running init-region again: the user gets (keeps) this secret
		}
		// A new secret for a user that exists would lock out whoever uses it (a review gave
		// another region's publisher as the reader): refused before any file is made, so that
		// the next run does not take the file for the user's own.
		exists, err := admin.UserExists(ctx, u.name)
		if err != nil {
			return withCode(exitRegion, fmt.Errorf("release init-region: %s: %w", *to, err))
		}
		if exists {
			return fail(fmt.Errorf("flag -%s: %w", u.flag, &store.UserExistsError{Role: u.flag, User: u.name}))
		}
		missing = append(missing, u)
	}
	var created []string // secret files made by this run
	for _, u := range missing {
		if *u.secret, err = newSecretFile(u.flag+"-secret-file", u.path); err != nil {
			return fail(err)
		}
		*u.fresh = true
		created = append(created, u.path)
	}
	if err := users.Validate(cfg); err != nil {
		return fail(err)
	}
	if err := store.InitRegion(ctx, cfg, users); err != nil {
		var exists *store.UserExistsError
		switch {
		case errors.As(err, &exists):
			// Created meanwhile; nothing was changed. The secret files this run made would
			// make the next run replace the user's secret with theirs: they go.
			for _, f := range created {
				os.Remove(f)
			}
			return fail(fmt.Errorf("flag -%s: %w", exists.Role, err))
		case errors.Is(err, store.ErrRegionOpen), errors.Is(err, store.ErrPublisherDenied):
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

// readSecretFile reads a secret key from the file a flag names; a missing file is "", nil.
func readSecretFile(flagName, path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("flag -%s is required", flagName)
	}
	data, err := readFileFlag(flagName, path, 1024)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(data))
	if len(s) < 8 {
		return "", fmt.Errorf("flag -%s: %s holds fewer than 8 characters", flagName, path)
	}
	return s, nil
}

// newSecretFile creates the file a flag names with a random secret key (mode 0600).
func newSecretFile(flagName, path string) (string, error) {
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
