package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/enrolment"
	"github.com/vigilauth/vigil/pki"
)

// runPKI is `vigil pki`: the operator's tools for the deployment's CA (which issues transport
// certificates only), revocations and trustee certificates. Enrolment tokens come from the
// enrolment authority (`vigil enrol token`), a role the coordinator does not hold.
func runPKI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	subs := []struct {
		name, summary string
		run           func(context.Context, []string, io.Writer, io.Writer) error
	}{
		{"init", "create the CA, the coordinator's certificate and an empty revocation file", runPKIInit},
		{"revoke", "revoke a device, trustee, coordinator or operator, or one certificate by serial", runPKIRevoke},
		{"issue-trustee", "make a trustee's key and certificate (server and client) in a directory", runPKIIssueTrustee},
		{"show", "describe the CA, the coordinator's certificate and the revocations", runPKIShow},
		{"operator", "make an operator's key and certificate for the coordinator's admin API (vigil status, vigil admin)", runPKIOperator},
	}
	usage := func() {
		fmt.Fprintln(stderr, "usage: vigil pki <command> [flags]\n\ncommands:")
		for _, s := range subs {
			fmt.Fprintf(stderr, "  %-14s %s\n", s.name, s.summary)
		}
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage()
		if len(args) == 0 {
			return errors.New("pki: no command given")
		}
		return flag.ErrHelp
	}
	for _, s := range subs {
		if s.name == args[0] {
			return s.run(ctx, args[1:], stdout, stderr)
		}
	}
	usage()
	return fmt.Errorf("pki: unknown command %q", args[0])
}

// pkiFlagSet returns a flag set for `vigil pki <name>` with the -dir flag every command takes.
func pkiFlagSet(name string, stdout io.Writer) (*flag.FlagSet, *string) {
	fs := newFlags("pki "+name, stdout)
	dir := fs.String("dir", "", "the PKI `directory` (CA, revocations, coordinator credentials)")
	return fs, dir
}

// parsePKIFlags parses args and checks that -dir is given and nothing is left over.
func parsePKIFlags(fs *flag.FlagSet, dir *string, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return unexpectedArgument(fs.Name(), fs)
	}
	if *dir == "" {
		return fmt.Errorf("%s: flag -dir is required", fs.Name())
	}
	return nil
}

// pkiHosts is a repeatable, comma-separated list of host names and IP addresses.
type pkiHosts []string

func (h *pkiHosts) String() string { return strings.Join(*h, ",") }

func (h *pkiHosts) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*h = append(*h, s)
		}
	}
	return nil
}

func runPKIInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := pkiFlagSet("init", stdout)
	name := fs.String("name", "Vigil CA", "the CA's common name")
	coordID := fs.String("coordinator-id", "coordinator", "the coordinator's identity")
	hosts := pkiHosts{}
	fs.Var(&hosts, "hosts", "DNS names and IP addresses the coordinator serves on, comma-separated (default localhost,127.0.0.1,::1)")
	caValidity := fs.Duration("ca-validity", pki.DefaultCAValidity, "lifetime of the CA certificate")
	validity := fs.Duration("validity", pki.DefaultServerValidity, "lifetime of the coordinator's certificate")
	if err := parsePKIFlags(fs, dir, args); err != nil {
		return err
	}
	if len(hosts) == 0 {
		hosts = pkiHosts{"localhost", "127.0.0.1", "::1"}
	}
	if err := pki.Coordinator(*coordID).Validate(); err != nil {
		return fmt.Errorf("pki init: flag -coordinator-id: %w", err)
	}
	if _, _, err := pki.ParseHosts(hosts); err != nil {
		return fmt.Errorf("pki init: flag -hosts: %w", err)
	}
	// Zero takes the default; a negative lifetime is a mistake to name, not a directory's.
	if *caValidity < 0 || *validity < 0 {
		return fmt.Errorf("pki init: flags -ca-validity %v and -validity %v: a lifetime must be positive (0: the default)", *caValidity, *validity)
	}
	a, err := pki.InitAuthority(*dir, *name, *coordID, hosts, *caValidity, *validity, time.Now())
	if err != nil {
		return fmt.Errorf("pki init: -dir %s: %w", *dir, err)
	}
	fmt.Fprintf(stdout, "CA             %s (%s)\n", filepath.Join(*dir, pki.CACertFile), pki.Fingerprint(a.CA.Certificate()))
	fmt.Fprintf(stdout, "CA key         %s (mode 0600; keep it off shared disks)\n", filepath.Join(*dir, pki.CAKeyFile))
	fmt.Fprintf(stdout, "coordinator    %s in %s, serving %s\n", pki.Coordinator(*coordID), filepath.Join(*dir, pki.CoordinatorDir), hosts.String())
	fmt.Fprintln(stdout, "Give devices the CA certificate; they check the coordinator against it when they enrol.")
	return nil
}

func runPKIRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dir := pkiFlagSet("revoke", stdout)
	device := fs.String("device-id", "", "revoke this device's certificates and every enrolment authorised before now")
	trustee := fs.String("trustee-id", "", "revoke this trustee's certificates")
	coord := fs.String("coordinator-id", "", "revoke this coordinator's certificates")
	operator := fs.String("operator-id", "", "revoke this operator's certificates (vigil pki operator)")
	coordDir := fs.String("coordinator-dir", "", "the coordinator's --dir: refuse to revoke a -device-id it has not enrolled (a typo would otherwise succeed silently)")
	serial := fs.String("serial", "", "revoke the one certificate with this serial number (hex, as `pki show` prints)")
	if err := parsePKIFlags(fs, dir, args); err != nil {
		return err
	}
	var set []string
	for _, f := range []struct{ name, v string }{{"device-id", *device}, {"trustee-id", *trustee}, {"coordinator-id", *coord}, {"operator-id", *operator}, {"serial", *serial}} {
		if f.v != "" {
			set = append(set, "-"+f.name)
		}
	}
	if len(set) != 1 {
		return fmt.Errorf("pki revoke: give exactly one of -device-id, -trustee-id, -coordinator-id, -operator-id and -serial (got %d)", len(set))
	}
	// Only the revocation list is needed, so this works on a trustee's host too, where -dir is
	// the trustee's --pki-dir. The directory must be one a server reads revoked.json from.
	if err := checkRevocationDir(*dir); err != nil {
		return fmt.Errorf("pki revoke: %w; nothing revoked", err)
	}
	revs, err := pki.OpenRevocations(filepath.Join(*dir, pki.RevocationsFile))
	if err != nil {
		return fmt.Errorf("pki revoke: -dir: %w", err)
	}
	now := time.Now()
	if *serial != "" {
		n, err := pki.ParseSerial(*serial)
		if err != nil {
			return fmt.Errorf("pki revoke: flag -serial: %w", err)
		}
		if err := revs.RevokeSerial(n, now); err != nil {
			return fmt.Errorf("pki revoke: %w", err)
		}
		fmt.Fprintf(stdout, "revoked certificate %s\n", n.Text(16))
		return nil
	}
	id := pki.Device(*device)
	switch {
	case *trustee != "":
		id = pki.Trustee(*trustee)
	case *coord != "":
		id = pki.Coordinator(*coord)
	case *operator != "":
		id = pki.Operator(*operator)
	}
	if err := id.Validate(); err != nil {
		return fmt.Errorf("pki revoke: flag %s: %w", set[0], err)
	}
	if *device != "" && *coordDir != "" {
		enrolled, err := coordinator.EnrolledDevices(filepath.Join(*coordDir, "state"))
		if err != nil {
			return fmt.Errorf("pki revoke: -coordinator-dir: %w", err)
		}
		if !slices.Contains(enrolled, *device) {
			return fmt.Errorf("pki revoke: -device-id %s: the coordinator in %s has not enrolled it (%d devices are); nothing revoked", *device, *coordDir, len(enrolled))
		}
	}
	if err := revs.RevokeIdentity(id, now); err != nil {
		return fmt.Errorf("pki revoke: %w", err)
	}
	fmt.Fprintf(stdout, "revoked %s as of %s: its certificates, and enrolments with device records issued until now, are refused\n", id, now.UTC().Format(time.RFC3339))
	fmt.Fprintf(stdout, "a running server using %s refuses it within %v, without a restart\n", filepath.Join(*dir, pki.RevocationsFile), pki.RevocationRecheck)
	return nil
}

// checkRevocationDir checks that dir is a directory whose revoked.json a server reads: the CA's
// directory (ca.pem and ca-key.pem, the coordinator's: ORG/pki from `vigil setup`) or a
// trustee's --pki-dir (ca.pem and a certificate naming a trustee: ORG/trustees/ID/tls). Any
// other directory would take a revocation that nothing reads; a missing revoked.json cannot
// tell, since none is written until the first revocation.
func checkRevocationDir(dir string) error {
	want := fmt.Sprintf("want the CA's directory (%s and %s; in an organisation from `vigil setup`, ORG/%s) or a trustee's --pki-dir (%s and a trustee's %s; ORG/%s/ID/%s)",
		pki.CACertFile, pki.CAKeyFile, orgPKI, pki.CACertFile, pki.CertFile, orgTrustees, orgTrusteeTLS)
	switch {
	case !fileExists(filepath.Join(dir, pki.CACertFile)) && fileExists(filepath.Join(dir, orgPKI, pki.CACertFile)):
		return fmt.Errorf("flag -dir %s is not a PKI directory (no %s); did you mean %s? %s",
			dir, pki.CACertFile, filepath.Join(dir, orgPKI), want)
	case !fileExists(filepath.Join(dir, pki.CACertFile)):
		return fmt.Errorf("flag -dir %s is not a PKI directory (no %s): %s", dir, pki.CACertFile, want)
	case fileExists(filepath.Join(dir, enrolment.PublicKeyFile)):
		return fmt.Errorf("flag -dir %s is the enrolment authority's directory, whose CA only serves the authority's TLS: %s", dir, want)
	case fileExists(filepath.Join(dir, pki.CAKeyFile)):
		return nil
	}
	certs, err := pki.ReadCertificates(filepath.Join(dir, pki.CertFile))
	if err != nil {
		return fmt.Errorf("flag -dir %s is not a PKI directory (%w): %s", dir, err, want)
	}
	id, err := pki.IdentityOf(certs[0])
	if err != nil || id.Role != pki.RoleTrustee {
		return fmt.Errorf("flag -dir %s holds the credentials of %v, not a trustee's: no server reads its %s; %s", dir, id, pki.RevocationsFile, want)
	}
	return nil
}

// fileExists reports whether path names a file or directory that can be looked up.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
