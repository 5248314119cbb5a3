package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigilauth/vigil/pki"
)

func runPKIIssueTrustee(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := pkiFlagSet("issue-trustee", stdout)
	trustee := fs.String("trustee-id", "", "the trustee's identity (required)")
	out := fs.String("out", "", "`directory` to write key.pem (0600), cert.pem and ca.pem into (required)")
	hosts := pkiHosts{}
	fs.Var(&hosts, "hosts", "DNS names and IP addresses the trustee serves on, comma-separated (default localhost,127.0.0.1,::1)")
	validity := fs.Duration("validity", pki.DefaultServerValidity, "lifetime of the certificate")
	if err := parsePKIFlags(fs, dir, args); err != nil {
		return err
	}
	switch {
	case *trustee == "":
		return errors.New("pki issue-trustee: flag -trustee-id is required")
	case *out == "":
		return errors.New("pki issue-trustee: flag -out is required")
	}
	id := pki.Trustee(*trustee)
	if err := id.Validate(); err != nil {
		return fmt.Errorf("pki issue-trustee: flag -trustee-id: %w", err)
	}
	if len(hosts) == 0 {
		hosts = pkiHosts{"localhost", "127.0.0.1", "::1"}
	}
	if _, _, err := pki.ParseHosts(hosts); err != nil {
		return fmt.Errorf("pki issue-trustee: flag -hosts: %w", err)
	}
	if _, err := os.Stat(filepath.Join(*out, pki.KeyFile)); err == nil {
		return fmt.Errorf("pki issue-trustee: flag -out: %s already exists; refusing to overwrite a key", filepath.Join(*out, pki.KeyFile))
	}
	a, err := pki.OpenAuthority(*dir)
	if err != nil {
		return fmt.Errorf("pki issue-trustee: -dir %s: %w", *dir, err)
	}
	creds, err := a.IssueCredentials(id, hosts, *validity, time.Now())
	if err != nil {
		return fmt.Errorf("pki issue-trustee: %w", err)
	}
	if err := pki.SaveCredentials(*out, creds); err != nil {
		return fmt.Errorf("pki issue-trustee: flag -out: %w", err)
	}
	leaf := creds.Leaf()
	fmt.Fprintf(stdout, "%s: certificate %s valid until %s, serving %s, in %s\n",
		id, leaf.SerialNumber.Text(16), leaf.NotAfter.Format(time.RFC3339), hosts.String(), *out)
	return nil
}

func runPKIShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := pkiFlagSet("show", stdout)
	if err := parsePKIFlags(fs, dir, args); err != nil {
		return err
	}
	a, err := pki.OpenAuthority(*dir)
	if err != nil {
		return fmt.Errorf("pki show: -dir %s: %w", *dir, err)
	}
	now := time.Now()
	ca := a.CA.Certificate()
	fmt.Fprintf(stdout, "CA           %q %s\n", ca.Subject.CommonName, pki.Fingerprint(ca))
	fmt.Fprintf(stdout, "             valid %s\n", validityText(ca, now))
	if creds, err := a.CoordinatorCredentials(); err != nil {
		fmt.Fprintf(stdout, "coordinator  unreadable: %v\n", err)
	} else {
		leaf := creds.Leaf()
		if id, err := creds.Verify(now); err != nil {
			fmt.Fprintf(stdout, "coordinator  serial %s INVALID: %v\n", leaf.SerialNumber.Text(16), err)
		} else {
			fmt.Fprintf(stdout, "coordinator  %s serial %s\n", id, leaf.SerialNumber.Text(16))
		}
		fmt.Fprintf(stdout, "             valid %s, hosts %s\n", validityText(leaf, now), hostsText(leaf))
	}
	ids, serials, err := a.Revocations.List()
	if err != nil {
		return fmt.Errorf("pki show: %w", err)
	}
	fmt.Fprintf(stdout, "revoked      %d identities, %d certificates\n", len(ids), len(serials))
	for _, r := range ids {
		fmt.Fprintf(stdout, "  %s  since %s\n", r.Identity, r.Revoked.Format(time.RFC3339))
	}
	for _, r := range serials {
		fmt.Fprintf(stdout, "  serial %s  since %s\n", r.Serial.Text(16), r.Revoked.Format(time.RFC3339))
	}
	return nil
}

func validityText(c *x509.Certificate, now time.Time) string {
	s := c.NotBefore.Format(time.RFC3339) + " to " + c.NotAfter.Format(time.RFC3339)
	if now.After(c.NotAfter) {
		s += " (EXPIRED)"
	}
	return s
}

func hostsText(c *x509.Certificate) string {
	var h []string
	h = append(h, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		h = append(h, ip.String())
	}
	return strings.Join(h, ",")
}
