package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigilauth/vigil/trustee"
)

// Start-up kits that `vigil setup --kits DIR` writes next to the organisation directory: one
// directory per site, holding only the secrets that site uses, so that each can be copied to
// its own machine as it is. The organisation directory stays the single-host form every other
// command and test reads; a kit is a copy of a slice of it, never a second source of truth.
const (
	kitCoordinator   = "coordinator"
	kitTrustees      = "trustees"
	kitEnrol         = "enrol"
	kitPrivacyOffice = "privacy-office"
	kitRootOffline   = "root-offline"

	kitOrg    = "org"   // the coordinator kit's --org: the organisation without the other sites' secrets
	kitState  = "state" // the coordinator kit's --dir: the only directory it writes
	kitStart  = "start.sh"
	kitREADME = "README"
	kitPrefix = "/opt/vigil" // where the systemd units expect each kit, as /opt/vigil/<kit name>
)

// kitConfigFile is the --config file of a server kit for role: its name also tells
// `vigil preflight` which role the kit is.
func kitConfigFile(role string) string { return role + ".conf" }

// kitSite is one server kit: what to copy from the organisation directory, the --config file
// that starts it, and the directory it writes to (relative to the kit).
type kitSite struct {
	dir      string            // the kit's directory under --kits
	name     string            // the unit's name: vigil-<name>.service, installed at kitPrefix/<name>
	role     string            // coordinator, trustee or enrol: names the config file, which preflight reads
	command  string            // the vigil command line before --config
	copies   map[string]string // kit path -> organisation path (files or directories)
	config   [][2]string       // the --config file's flags, in order
	writable string            // the directory the service writes, relative to the kit
	readme   string
}

// writeKits writes the kits of the organisation in org to dir. hosts are the names the
// servers were issued certificates for: the first is where each site listens and where the
// coordinator reaches the trustees, which an operator changes in the config files for a
// deployment across machines. minUpdates is m_min, for the coordinator and every trustee.
func writeKits(dir, org string, ids []string, hosts []string, minUpdates uint) error {
	host := hosts[0]
	coord := kitSite{
		dir: kitCoordinator, name: "coordinator", role: "coordinator", command: "coordinator",
		copies: map[string]string{
			filepath.Join(kitOrg, orgPKI):                   orgPKI,
			filepath.Join(kitOrg, orgKeys, "release.key"):   filepath.Join(orgKeys, "release.key"),
			filepath.Join(kitOrg, orgKeys, "release.pub"):   filepath.Join(orgKeys, "release.pub"),
			filepath.Join(kitOrg, orgKeys, "timestamp.key"): filepath.Join(orgKeys, "timestamp.key"),
			filepath.Join(kitOrg, orgKeys, "timestamp.pub"): filepath.Join(orgKeys, "timestamp.pub"),
			filepath.Join(kitOrg, orgRoot):                  orgRoot,
			filepath.Join(kitOrg, orgKeyEpoch):              orgKeyEpoch,
			filepath.Join(kitOrg, orgKeyEpochDoc):           orgKeyEpochDoc,
			filepath.Join(kitOrg, orgPolicy):                orgPolicy,
		},
		config: [][2]string{{"org", kitOrg}, {"dir", kitState}, {"listen", host + ":7070"},
			{"metrics-listen", host + ":9464"}, {"admin-listen", host + ":7072"}, {"min-updates", fmt.Sprint(minUpdates)}},
		writable: kitState,
		readme: "The coordinator's kit: its TLS credentials and the CA that issues devices' transport certificates,\n" +
			"the release and timestamp keys, the root of trust, the key epoch and the privacy policy.\n" +
			"It holds no root key, privacy office key, enrolment key or trustee secret.\n" +
			"Add `region = NAME=DIR` (or s3://bucket/prefix) lines to coordinator.conf to publish releases.\n",
	}
	for i, id := range ids {
		coord.config = append(coord.config, [2]string{"trustee", fmt.Sprintf("%s=%s:%d", id, host, 7171+i)})
	}
	sites := []kitSite{coord}
	for i, id := range ids {
		tdir := filepath.Join(orgTrustees, id)
		sites = append(sites, kitSite{
			dir: filepath.Join(kitTrustees, id), name: "trustee-" + id, role: "trustee", command: "trustee serve",
			copies: map[string]string{
				trustee.ShareFile:    filepath.Join(tdir, trustee.ShareFile),
				trustee.IdentityFile: filepath.Join(tdir, trustee.IdentityFile),
				orgTrusteeTLS:        filepath.Join(tdir, orgTrusteeTLS),
				orgRoot:              orgRoot,
			},
			// The kit is the trustee's --dir: its journal goes next to its share.
			config: [][2]string{{"dir", "."}, {"pki-dir", orgTrusteeTLS}, {"root", orgRoot},
				{"min-contributors", fmt.Sprint(minUpdates)}, {"listen", fmt.Sprintf("%s:%d", host, 7171+i)}},
			writable: ".",
			readme:   "Trustee " + id + "'s kit: its key share, its ceremony identity, its TLS credentials and the root of trust.\n",
		})
	}
	sites = append(sites, kitSite{
		dir: kitEnrol, name: "enrol", role: "enrol", command: "enrol serve",
		copies: map[string]string{".": orgEnrol, orgRoot: orgRoot},
		// The kit is the authority's --dir: the token store is written there.
		config:   [][2]string{{"dir", "."}, {"listen", host + ":7060"}},
		writable: ".",
		readme: "The enrolment authority's kit: the key that signs device records, its token store and its own TLS CA.\n" +
			"Run it under an operator other than the coordinator's; issue tokens with `vigil enrol token --dir .`.\n",
	})
	for _, s := range sites {
		if err := s.write(filepath.Join(dir, s.dir), org); err != nil {
			return fmt.Errorf("--kits %s: %s: %w", dir, s.dir, err)
		}
	}
	offline := []struct {
		dir, what string
		copies    map[string]string
	}{
		{kitPrivacyOffice, "the privacy office's key, which signs privacy policies", map[string]string{
			"privacy.key": filepath.Join(orgPrivacy, "privacy.key"), "privacy.pub": filepath.Join(orgPrivacy, "privacy.pub"),
			orgPolicy: orgPolicy, orgRoot: orgRoot}},
		{kitRootOffline, "the root key, which signs new roots of trust (`vigil release sign root`)", map[string]string{
			"root.key": filepath.Join(orgKeys, "root.key"), "root.pub": filepath.Join(orgKeys, "root.pub"), orgRoot: orgRoot}},
	}
	for _, o := range offline {
		kit := filepath.Join(dir, o.dir)
		if err := copyAll(kit, org, o.copies); err != nil {
			return fmt.Errorf("--kits %s: %s: %w", dir, o.dir, err)
		}
		readme := "This kit holds " + o.what + ".\nIt NEVER goes on a server: keep it on an offline machine or a hardware token.\n" +
			"Check it with `vigil preflight --kit .`.\n"
		if err := os.WriteFile(filepath.Join(kit, kitREADME), []byte(readme), 0o644); err != nil {
			return fmt.Errorf("--kits %s: %w", dir, err)
		}
	}
	return nil
}

// write copies the site's files from org into kit and adds its config file, start script,
// systemd unit and README.
func (s kitSite) write(kit, org string) error {
	if err := copyAll(kit, org, s.copies); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(kit, s.writable), 0o700); err != nil {
		return err
	}
	var conf strings.Builder
	fmt.Fprintf(&conf, "# vigil %s --config %s\n# Paths are relative to this kit's directory: start it from there (start.sh and the unit do).\n",
		s.command, kitConfigFile(s.role))
	for _, kv := range s.config {
		fmt.Fprintf(&conf, "%s = %s\n", kv[0], kv[1])
	}
	start := fmt.Sprintf(`#!/bin/sh
# Starts %[1]s from this kit after checking it; paths in %[2]s are relative to the kit.
set -eu
cd "$(dirname "$0")"
vigil preflight --kit .
exec vigil %[3]s --config %[2]s "$@"
`, s.name, kitConfigFile(s.role), s.command)
	home := kitPrefix + "/" + s.name
	rw := home
	if s.writable != "." {
		rw = home + "/" + s.writable
	}
	unit := fmt.Sprintf(`# Install this kit as %[1]s and this file as /etc/systemd/system/vigil-%[2]s.service.
[Unit]
Description=Vigil %[2]s
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
User=vigil
Group=vigil
WorkingDirectory=%[1]s
ExecStartPre=/usr/local/bin/vigil preflight --kit %[1]s
ExecStart=/usr/local/bin/vigil %[3]s --config %[1]s/%[4]s
Restart=on-failure
UMask=0077
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictSUIDSGID=yes
LockPersonality=yes
ReadWritePaths=%[5]s

[Install]
WantedBy=multi-user.target
`, home, s.name, s.command, kitConfigFile(s.role), rw)
	for name, f := range map[string]struct {
		data string
		mode os.FileMode
	}{
		kitConfigFile(s.role):          {conf.String(), 0o644},
		kitStart:                       {start, 0o755},
		"vigil-" + s.name + ".service": {unit, 0o644},
		kitREADME:                      {s.readme + "Check it with `vigil preflight --kit .`; start it with ./start.sh or the systemd unit.\n", 0o644},
	} {
		if err := os.WriteFile(filepath.Join(kit, name), []byte(f.data), f.mode); err != nil {
			return err
		}
	}
	return nil
}

// copyAll copies each organisation path (a file or a directory tree) in copies to its kit path,
// keeping the modes, so that a secret stays 0600 and its directory 0700.
func copyAll(kit, org string, copies map[string]string) error {
	if err := os.MkdirAll(kit, 0o700); err != nil {
		return err
	}
	for to, from := range copies {
		src := filepath.Join(org, from)
		err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(src, path)
			if err != nil {
				return err
			}
			dst := filepath.Join(kit, to, rel)
			info, err := d.Info()
			if err != nil {
				return err
			}
			if d.IsDir() {
				return os.MkdirAll(dst, 0o700)
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(dst, data, info.Mode().Perm())
		})
		if err != nil {
			return err
		}
	}
	return nil
}
