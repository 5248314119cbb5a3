package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"

	"github.com/vigilauth/vigil/enrolment"
	"github.com/vigilauth/vigil/internal/rpcmetrics"
	"github.com/vigilauth/vigil/pki"
)

// runEnrol is `vigil enrol`: the enrolment authority, a role separate from the coordinator,
// which alone can say that a device exists.
func runEnrol(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	subs := []struct {
		name, summary string
		run           func(context.Context, []string, io.Writer, io.Writer) error
	}{
		{"init", "create the authority: its ML-DSA-65 record key, a token store, its own TLS CA and certificate", runEnrolInit},
		{"token", "print a one-time token with which one device ID registers", runEnrolToken},
		{"serve", "serve registrations: a valid token and proof of key possession buy a signed device record", runEnrolServe},
	}
	usage := func() {
		fmt.Fprintln(stderr, "usage: vigil enrol <command> [flags]\n\ncommands:")
		for _, s := range subs {
			fmt.Fprintf(stderr, "  %-8s %s\n", s.name, s.summary)
		}
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage()
		if len(args) == 0 {
			return errors.New("enrol: no command given")
		}
		return flag.ErrHelp
	}
	for _, s := range subs {
		if s.name == args[0] {
			return s.run(ctx, args[1:], stdout, stderr)
		}
	}
	usage()
	return fmt.Errorf("enrol: unknown command %q", args[0])
}

// enrolFlagSet returns a flag set for `vigil enrol <name>` with the --dir flag every command
// takes.
func enrolFlagSet(name string, stdout io.Writer) (*flag.FlagSet, *string) {
	fs := newFlags("enrol "+name, stdout)
	dir := fs.String("dir", "", "the authority's `directory` (record key, tokens, TLS); in an organisation from `vigil setup`, ORG/enrol")
	return fs, dir
}

func runEnrolInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := enrolFlagSet("init", stdout)
	hosts := pkiHosts{}
	fs.Var(&hosts, "hosts", "DNS names and IP addresses the authority serves on, comma-separated (default localhost,127.0.0.1,::1)")
	if err := parsePKIFlags(fs, dir, args); err != nil {
		return err
	}
	if len(hosts) == 0 {
		hosts = pkiHosts{"localhost", "127.0.0.1", "::1"}
	}
	if _, _, err := pki.ParseHosts(hosts); err != nil {
		return fmt.Errorf("enrol init: flag -hosts: %w", err)
	}
	d, err := enrolment.InitDir(*dir, hosts, time.Now())
	if err != nil {
		return fmt.Errorf("enrol init: -dir %s: %w", *dir, err)
	}
	printEnrolInit(stdout, d)
	return nil
}

func printEnrolInit(w io.Writer, d *enrolment.Dir) {
	fmt.Fprintf(w, "record key     %s (ML-DSA-65 %s, mode 0600)\n", filepath.Join(d.Path, enrolment.KeyFile), d.Key.ID().Short())
	fmt.Fprintf(w, "public key     %s: list it in the root's enrolment role (vigil release sign root -enrolment)\n", filepath.Join(d.Path, enrolment.PublicKeyFile))
	fmt.Fprintf(w, "TLS CA         %s (%s): give it to devices with their token\n", d.CACertPath(), pki.Fingerprint(d.TLS.Roots[0]))
}

func runEnrolToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := enrolFlagSet("token", stdout)
	device := fs.String("device-id", "", "the device the token may register (required)")
	ttl := fs.Duration("ttl", enrolment.DefaultTokenTTL, "how long the token stays valid")
	if err := parsePKIFlags(fs, dir, args); err != nil {
		return err
	}
	if *device == "" {
		return errors.New("enrol token: flag -device-id is required")
	}
	if err := pki.Device(*device).Validate(); err != nil {
		return fmt.Errorf("enrol token: flag -device-id: %w", err)
	}
	if *ttl <= 0 || *ttl > pki.MaxTokenTTL {
		return fmt.Errorf("enrol token: flag -ttl %v is outside (0, %v]", *ttl, pki.MaxTokenTTL)
	}
	// Least privilege: the token store and the TLS CA certificate, never the record key. The
	// record key's public half is what makes -dir an authority's: the coordinator's PKI
	// directory also holds a ca.pem, and a token filed there is one no authority accepts.
	if _, err := os.Stat(filepath.Join(*dir, enrolment.PublicKeyFile)); err != nil {
		return fmt.Errorf("enrol token: flag -dir %s is not an enrolment authority's directory (%w): want the one `vigil enrol init` made, with %s, %s and %s (in an organisation from `vigil setup`, ORG/%s)",
			*dir, err, enrolment.PublicKeyFile, enrolment.KeyFile, pki.CACertFile, orgEnrol)
	}
	caPath := filepath.Join(*dir, pki.CACertFile)
	caCerts, err := pki.ReadCertificates(caPath)
	if err != nil {
		return fmt.Errorf("enrol token: -dir: %w", err)
	}
	tokens, err := pki.OpenTokens(filepath.Join(*dir, enrolment.TokensFile))
	if err != nil {
		return fmt.Errorf("enrol token: -dir: %w", err)
	}
	now := time.Now()
	token, err := tokens.Issue(*device, *ttl, now)
	if err != nil {
		return fmt.Errorf("enrol token: %w", err)
	}
	// The token is dated at the next whole second (records carry whole seconds), so that it is
	// dated after any revocation made before it was issued. It is shown only from its date: a
	// revocation covers the tokens dated up to it, and one made after the token was issued
	// but before its date would not cover a token already shown.
	issued := pki.TokenDate(now)
	for d := time.Until(issued); d > 0; d = time.Until(issued) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("enrol token: interrupted before the token's date %s; it was not shown and cannot be used", issued.Format(time.RFC3339))
		case <-time.After(d):
		}
	}
	fmt.Fprintln(stdout, token)
	fmt.Fprintf(stderr, "one-time token for device %q, issued %s, valid until %s; shown only now.\n", *device,
		issued.Format(time.RFC3339), issued.Add(*ttl).Format(time.RFC3339))
	fmt.Fprintf(stderr, "the device also needs %s (%s) to reach the authority\n", caPath, pki.Fingerprint(caCerts[0]))
	return nil
}

func runEnrolServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := enrolFlagSet("serve", stdout)
	listen := fs.String("listen", "127.0.0.1:7060", "gRPC address to serve devices on (TLS)")
	metricsListen := fs.String("metrics-listen", "", "HTTP `address` for Prometheus /metrics, /healthz and /readyz (empty: off)")
	var logLevel slog.Level
	fs.TextVar(&logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn or error")
	if err := parsePKIFlags(fs, dir, args); err != nil {
		return err
	}
	d, err := enrolment.OpenDir(*dir)
	if err != nil {
		return fmt.Errorf("enrol serve: -dir: %w", err)
	}
	logger := newLogger(stderr, logLevel)
	a, err := enrolment.New(enrolment.Config{Key: d.Key, Tokens: d.Tokens, Logger: logger})
	if err != nil {
		return fmt.Errorf("enrol serve: %w", err)
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("enrol serve: -listen: %w", err)
	}
	reg := newRoleRegistry()
	rpcm, err := rpcmetrics.New(reg, "server")
	if err != nil {
		lis.Close()
		return fmt.Errorf("enrol serve: metrics: %w", err)
	}
	rpcm.Logger = logger
	var ready readiness
	if *metricsListen != "" {
		stop, addr, err := serveOps(*metricsListen, reg, &ready, false)
		if err != nil {
			lis.Close()
			return fmt.Errorf("enrol serve: -metrics-listen: %w", err)
		}
		defer stop()
		fmt.Fprintf(stdout, "metrics on http://%s/metrics\n", addr)
	}
	srv := grpc.NewServer(append(rpcm.ServerOptions(), enrolment.ServerOptions(d.TLS)...)...)
	a.RegisterService(srv)
	go srv.Serve(lis)
	ready.set(nil)
	fmt.Fprintf(stdout, "enrolment authority listening on %s (record key %s)\n", lis.Addr(), d.Key.ID().Short())
	<-ctx.Done()
	srv.GracefulStop()
	return nil
}
