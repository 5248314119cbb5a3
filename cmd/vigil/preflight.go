package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vigilauth/vigil/crypto/he"
	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/enrolment"
	"github.com/vigilauth/vigil/pki"
	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/trustee"
)

// preflightMargin is how long every certificate of a kit must stay valid: a kit whose
// certificate expires within it fails the check, so that renewal happens before an outage.
const preflightMargin = 30 * 24 * time.Hour

// kitCheck is what `vigil preflight` checks of one kind of kit; every path is relative to it.
type kitCheck struct {
	role    string
	secrets []string // must exist with no group or other permission bits
	public  []string // must exist; the first is the kit's root.json
	certs   []string // PEM certificate files: valid now and for preflightMargin
	// keys are the kit's signing keys that root.json must list, by role.
	keys []kitKey
	// settings are the flags its config file must set, for a server's kit.
	settings []string
}

// kitKey is a key file of a kit and the root role that must hold it.
type kitKey struct {
	file, role string
	identity   bool // a trustee's ceremony identity rather than a sig private key
}

// kitChecks returns the check of the kit in dir, which its files identify.
func kitChecks(dir string) (kitCheck, error) {
	exists := func(name string) bool { _, err := os.Stat(filepath.Join(dir, name)); return err == nil }
	tls := func(d string) []string {
		return []string{filepath.Join(d, pki.CertFile), filepath.Join(d, pki.RootsFile)}
	}
	switch {
	case exists(kitConfigFile("coordinator")):
		p := filepath.Join(kitOrg, orgPKI)
		keys := filepath.Join(kitOrg, orgKeys)
		return kitCheck{role: "coordinator",
			secrets: []string{filepath.Join(p, pki.CAKeyFile), filepath.Join(p, pki.CoordinatorDir, pki.KeyFile),
				filepath.Join(keys, "release.key"), filepath.Join(keys, "timestamp.key")},
			public: []string{filepath.Join(kitOrg, orgRoot), filepath.Join(kitOrg, orgKeyEpoch), filepath.Join(kitOrg, orgKeyEpochDoc), filepath.Join(kitOrg, orgPolicy)},
			certs:  append([]string{filepath.Join(p, pki.CACertFile)}, tls(filepath.Join(p, pki.CoordinatorDir))...),
			keys: []kitKey{{file: filepath.Join(keys, "release.key"), role: "release"},
				{file: filepath.Join(keys, "timestamp.key"), role: "timestamp"}},
			settings: []string{"org", "dir", "listen"},
		}, nil
	case exists(kitConfigFile("trustee")):
		return kitCheck{role: "trustee",
			secrets:  []string{trustee.ShareFile, trustee.IdentityFile, filepath.Join(orgTrusteeTLS, pki.KeyFile)},
			public:   []string{orgRoot},
			certs:    tls(orgTrusteeTLS),
			keys:     []kitKey{{file: trustee.IdentityFile, role: "trustees", identity: true}},
			settings: []string{"dir", "pki-dir", "root", "min-contributors", "listen"},
		}, nil
	case exists(kitConfigFile("enrol")):
		return kitCheck{role: "enrol",
			secrets:  []string{enrolment.KeyFile, pki.CAKeyFile, filepath.Join(enrolment.TLSDir, pki.KeyFile)},
			public:   []string{orgRoot},
			certs:    append([]string{pki.CACertFile}, tls(enrolment.TLSDir)...),
			keys:     []kitKey{{file: enrolment.KeyFile, role: "enrolment"}},
			settings: []string{"dir", "listen"},
		}, nil
	case exists("privacy.key"):
		return kitCheck{role: "privacy-office", secrets: []string{"privacy.key"}, public: []string{orgRoot},
			keys: []kitKey{{file: "privacy.key", role: "privacy"}}}, nil
	case exists("root.key"):
		return kitCheck{role: "root-offline", secrets: []string{"root.key"}, public: []string{orgRoot},
			keys: []kitKey{{file: "root.key", role: "root"}}}, nil
	}
	if _, err := os.Stat(dir); err != nil {
		return kitCheck{}, fmt.Errorf("--kit: %w", err)
	}
	return kitCheck{}, fmt.Errorf("--kit %s: not a kit from `vigil setup --kits` (no coordinator.conf, trustee.conf, enrol.conf, privacy.key or root.key)", dir)
}

// runPreflight checks a kit before its service starts: `vigil preflight --kit DIR`.
func runPreflight(_ context.Context, args []string, stdout, _ io.Writer) error {
	fs := newCmdFlags("preflight", "vigil preflight --kit DIR",
		"Check a start-up kit from `vigil setup --kits` before its service starts: its files are present and\n"+
			"its secrets mode 0600, its certificates valid for 30 more days, root.json verifies and lists the\n"+
			"kit's keys in their roles, and the config file's listen address is free. start.sh and the\n"+
			"systemd unit run it first.", stdout)
	kit := fs.String("kit", "", "the kit `directory` to check, as `vigil setup --kits` wrote it (required)")
	if err := parseCmdFlags(fs, args); err != nil {
		return err
	}
	if *kit == "" {
		return usageError{errors.New("preflight: --kit is required (see 'vigil preflight -h')")}
	}
	role, problems, err := preflight(*kit, time.Now())
	if err != nil {
		return usageError{fmt.Errorf("preflight: %w", err)}
	}
	if len(problems) > 0 {
		// Exit 1, not the 2 of a usage mistake: a unit's ExecStartPre or a script can tell them apart.
		return withCode(1, fmt.Errorf("preflight: %s kit %s is not ready:\n  %s", role, *kit, strings.Join(problems, "\n  ")))
	}
	fmt.Fprintf(stdout, "preflight: %s kit %s is ready\n", role, *kit)
	return nil
}

// preflight checks the kit in dir at now and returns its role and every problem found, each
// naming its file; err is for a directory that is not a kit.
func preflight(dir string, now time.Time) (role string, problems []string, err error) {
	c, err := kitChecks(dir)
	if err != nil {
		return "", nil, err
	}
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	for _, name := range c.secrets {
		info, err := os.Stat(filepath.Join(dir, name))
		switch {
		case err != nil:
			bad("%s: missing (%v)", name, errors.Unwrap(err))
		case info.Mode().Perm()&0o077 != 0:
			bad("%s: mode %04o, a secret must be 0600 (chmod 600 %s)", name, info.Mode().Perm(), name)
		}
	}
	for _, name := range c.public {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			bad("%s: missing (%v)", name, errors.Unwrap(err))
		}
	}
	for _, name := range c.certs {
		certs, err := pki.ReadCertificates(filepath.Join(dir, name))
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				bad("%s: %v", name, err)
			} else {
				bad("%s: missing", name)
			}
			continue
		}
		for _, cert := range certs {
			switch {
			case now.Before(cert.NotBefore):
				bad("%s: certificate %q is not valid before %s", name, cert.Subject.CommonName, cert.NotBefore.UTC().Format(time.RFC3339))
			case now.Add(preflightMargin).After(cert.NotAfter):
				bad("%s: certificate %q expires %s, within %d days: renew it", name, cert.Subject.CommonName,
					cert.NotAfter.UTC().Format(time.RFC3339), int(preflightMargin.Hours()/24))
			}
		}
	}
	rootFile := c.public[0]
	root, err := readKitRoot(filepath.Join(dir, rootFile))
	if err != nil {
		bad("%s: %v", rootFile, err)
	} else {
		for _, k := range c.keys {
			if err := kitKeyInRoot(root, filepath.Join(dir, k.file), k); err != nil {
				bad("%s: %v", k.file, err)
			}
		}
		if root.Expires.Before(now.Add(preflightMargin)) {
			bad("%s: the root of trust expires %s, within %d days: sign its successor", rootFile, root.Expires.UTC().Format(time.RFC3339), int(preflightMargin.Hours()/24))
		}
	}
	if len(c.settings) > 0 {
		name := kitConfigFile(c.role)
		if flags, err := readConfig(filepath.Join(dir, name)); err != nil {
			bad("%s: %v", name, err)
		} else {
			for _, key := range c.settings {
				if !slices.ContainsFunc(flags, func(f string) bool { return strings.HasPrefix(f, "--"+key+"=") }) {
					bad("%s: no %q setting: the file is incomplete (vigil setup --kits writes one)", name, key)
				}
			}
		}
	}
	if c.role == "trustee" {
		if err := kitTrusteeOwnsShare(dir); err != nil {
			bad("%s: %v", trustee.ShareFile, err)
		}
	}
	if addr, ok := kitListen(dir, c.role); ok {
		if l, err := net.Listen("tcp", addr); err != nil {
			bad("%s: listen = %s: the address is not free: %v", kitConfigFile(c.role), addr, err)
		} else {
			l.Close()
		}
	}
	return c.role, problems, nil
}

// readKitRoot reads and verifies a kit's root.json, self-signed by its root role.
func readKitRoot(path string) (*release.Root, error) {
	data, err := trustee.ReadPublicFile(path)
	if err != nil {
		return nil, err
	}
	return release.ParseTrustedRoot(data)
}

// kitKeyInRoot checks that root lists the key in file under the role k names: a kit whose
// key the root does not list would start and then have its every signature refused.
func kitKeyInRoot(root *release.Root, file string, k kitKey) error {
	var id sig.KeyID
	if k.identity {
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		ident, err := he.ParseIdentity(data)
		if err != nil {
			return err
		}
		key, err := ident.SigningKey()
		if err != nil {
			return err
		}
		id = key.ID()
	} else {
		key, err := sig.ReadPrivateKeyFile(file)
		if err != nil {
			return err
		}
		id = key.ID()
	}
	roles := map[string]release.RoleKeys{
		"root": root.Roles.Root, "release": root.Roles.Release, "timestamp": root.Roles.Timestamp,
		"trustees": root.Roles.Trustees, "enrolment": root.Roles.Enrolment, "privacy": root.Roles.Privacy,
	}
	if !slices.Contains(roles[k.role].KeyIDs, id) {
		return fmt.Errorf("key %s is not in the %s role of root.json version %d: the kit and the root are of different organisations or roots", id.Short(), k.role, root.Version)
	}
	return nil
}

// kitListen returns the listen address of a server kit's config file.
func kitListen(dir, role string) (string, bool) {
	flags, err := readConfig(filepath.Join(dir, kitConfigFile(role)))
	if err != nil {
		return "", false
	}
	addr, ok := "", false
	for _, f := range flags {
		if v, found := strings.CutPrefix(f, "--listen="); found {
			addr, ok = v, true // the last one wins, as with flags
		}
	}
	return addr, ok
}

// kitTrusteeOwnsShare checks that a trustee kit's key share is the trustee's its TLS
// certificate names: a share copied from another kit would be served under this one's name.
func kitTrusteeOwnsShare(dir string) error {
	share, err := trustee.LoadShare(he.DefaultParams(), filepath.Join(dir, trustee.ShareFile))
	if err != nil {
		return err
	}
	certs, err := pki.ReadCertificates(filepath.Join(dir, orgTrusteeTLS, pki.CertFile))
	if err != nil {
		return err
	}
	id, err := pki.IdentityOf(certs[0])
	if err != nil {
		return err
	}
	if id != pki.Trustee(share.TrusteeID()) {
		return fmt.Errorf("the share is trustee %q's, but the kit's certificate names %s", share.TrusteeID(), id)
	}
	return nil
}
