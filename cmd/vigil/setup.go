package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/enrolment"
	"github.com/vigilauth/vigil/pki"
	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/sim"
	"github.com/vigilauth/vigil/trustee"
)

// An organisation directory made by `vigil setup`, which the other commands read with --org.
const (
	orgPKI         = "pki"
	orgEnrol       = "enrol" // the enrolment authority: in a deployment, on its own machine
	orgKeys        = "keys"
	orgRoot        = "root.json"           // root of trust version 1: what devices pin
	orgKeyEpoch    = "key-epoch.bin"       // the collective HE key, canonical encoding
	orgKeyEpochDoc = "key-epoch.json"      // its document, signed by the trustees that approved it
	orgPrivacy     = "privacy"             // the privacy office's key: in a deployment, with the privacy office
	orgPolicy      = "privacy-policy.json" // the privacy policy, signed by the privacy office
	orgTrustees    = "trustees"
	orgTrusteeTLS  = "tls"
	orgRoster      = "roster.bin" // the key ceremony's roster: the trustees' public identities (vigil console --roster)
)

// runSetup creates, in one step and on one host, everything an organisation needs to run Vigil
// locally. In a real deployment these steps happen on separate machines (see the README).
func runSetup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("setup", stdout)
	dir := fs.String("dir", "", "organisation `directory` to create (required; must not exist or be empty)")
	trusteeList := fs.String("trustees", "privacy-office,security,audit", "comma-separated trustee ids, in Shamir point order")
	threshold := fs.Int("threshold", 2, "trustees needed to decrypt a sum")
	kits := fs.String("kits", "", "also write one start-up kit per site into this `directory` (coordinator, each trustee, enrolment authority, privacy office, offline root): only that site's secrets, a --config file, start.sh, a systemd unit; check each with vigil preflight --kit")
	hostList := fs.String("hosts", "127.0.0.1,localhost", "comma-separated names and addresses the coordinator and trustees serve on")
	pol, def := policyFlags{}, defaultPolicyFlags()
	fs.Float64Var(&pol.minNoise, "policy-min-noise", def.minNoise, "privacy policy: the least noise multiplier z a task may ask for (> 0)")
	fs.UintVar(&pol.minParticipants, "policy-min-participants", def.minParticipants, "privacy policy: the least m_min a task may name")
	fs.UintVar(&pol.minTolerated, "policy-min-tolerated", def.minTolerated, "privacy policy: the least t_dev (malicious devices per round) a task may calibrate against")
	fs.Float64Var(&pol.maxClip, "policy-max-clip", def.maxClip, "privacy policy: the largest clip norm C a task may ask for")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return unexpectedArgument("setup", fs)
	case *dir == "":
		return errors.New("setup: --dir is required")
	}
	if err := emptyForSetup("--dir", *dir, "an organisation"); err != nil {
		return err
	}
	ids := strings.Split(*trusteeList, ",")
	if len(ids) < 2 || *threshold < 2 || *threshold > len(ids) {
		return fmt.Errorf("setup: --trustees %q with --threshold %d: need at least 2 trustees and a threshold from 2 to their number", *trusteeList, *threshold)
	}
	if *kits != "" {
		if filepath.Clean(*kits) == filepath.Clean(*dir) {
			return fmt.Errorf("setup: --kits %s is --dir: give the kits a directory of their own (it may be inside --dir)", *kits)
		}
		if err := emptyForSetup("--kits", *kits, "kits"); err != nil {
			return err
		}
	}
	hosts := strings.Split(*hostList, ",")
	// The organisation and its kits are written into hidden directories inside --dir and
	// --kits, whose entries move up once everything is written: a value refused late (a
	// policy floor, a trustee ID) left keys behind, and an organisation setup then refused to
	// write again. Inside, not beside, so that --dir or --kits may be an empty mount point.
	org, err := stage("--dir", *dir)
	if err != nil {
		return err
	}
	defer org.abort()
	if err := setupOrg(org.dir, ids, *threshold, hosts, pol, time.Now()); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	var kitsStage *staging
	if *kits != "" {
		if kitsStage, err = stage("--kits", *kits); err != nil {
			return err
		}
		defer kitsStage.abort()
		if err := writeKits(kitsStage.dir, org.dir, ids, hosts, pol.minParticipants); err != nil {
			return fmt.Errorf("setup: %w", err)
		}
	}
	if err := org.commit(); err != nil {
		return fmt.Errorf("setup: --dir: %w", err)
	}
	if *kits != "" {
		if err := kitsStage.commit(); err != nil {
			return fmt.Errorf("setup: --kits: %w (the organisation is written in %s)", err, *dir)
		}
		// Deferred: after the organisation's summary below, as the last thing an operator reads.
		defer fmt.Fprintf(stdout, "\nstart-up kits in %[1]s: %[2]s/, %[3]s/ID/, %[4]s/ (servers), %[5]s/, %[6]s/ (offline, never on a server);\n"+
			"copy each to its site, check it with `vigil preflight --kit DIR`, start it with DIR/start.sh or its vigil-*.service unit\n",
			*kits, kitCoordinator, kitTrustees, kitEnrol, kitPrivacyOffice, kitRootOffline)
	}
	fmt.Fprintf(stdout, `organisation created in %[1]s:
  %[2]s/        CA, the coordinator's TLS credentials, revocations
  %[11]s/      the enrolment authority: its ML-DSA-65 record key (the root's enrolment role), tokens, its own TLS CA
  %[3]s/       ML-DSA-65 keys of the root, release and timestamp roles (move root.key offline)
  %[4]s      root of trust version 1: what devices pin
  %[5]s %[6]s  key epoch 1 (%[7]d-of-%[8]d threshold CKKS), approved and signed by the trustees
  %[9]s/   one directory per trustee: share.key and identity.key (0600), tls/
  %[12]s/ %[13]s  the privacy office's key and the privacy policy devices hold tasks to

next:
  vigil trustee serve --dir %[1]s/%[9]s/ID --pki-dir %[1]s/%[9]s/ID/%[10]s --root %[1]s/%[4]s --min-contributors M --listen 127.0.0.1:PORT   (each trustee)
  vigil coordinator --org %[1]s --trustee ID=127.0.0.1:PORT ... --round-interval 1m --admin-listen 127.0.0.1:7072   (coordinator)
  vigil pki operator --dir %[1]s/%[2]s --id NAME, then vigil status --operator %[1]s/operators/NAME --coordinator 127.0.0.1:7072   (operators)
  vigil enrol serve --dir %[1]s/%[11]s --listen 127.0.0.1:7060                                    (enrolment authority)
  vigil enrol token --dir %[1]s/%[11]s --device-id DEVICE                                          (one per device)
  vigil client --enrol 127.0.0.1:7060 --enrol-ca %[1]s/%[11]s/ca.pem --token TOKEN --region REGION \
      --ca %[1]s/%[2]s/ca.pem --root %[1]s/%[4]s --device-id DEVICE ...                            (each device)
`, *dir, orgPKI, orgKeys, orgRoot, orgKeyEpoch, orgKeyEpochDoc, *threshold, len(ids), orgTrustees, orgTrusteeTLS, orgEnrol, orgPrivacy, orgPolicy)
	return nil
}

// policyFlags are the floors and ceilings of the privacy policy `vigil setup` signs.
type policyFlags struct {
	minNoise, maxClip             float64
	minParticipants, minTolerated uint
}

// defaultPolicyFlags allow the coordinator's defaults (z = 1, C = 1, m_min = 2, t_dev = 1, and
// the population rounds' C = 30) and nothing weaker. The clip norm bounds a device's influence,
// not its privacy: the noise grows with it.
func defaultPolicyFlags() policyFlags {
	return policyFlags{minNoise: 1, maxClip: sim.MaxClip, minParticipants: 2, minTolerated: 1}
}

func (f policyFlags) policy(now time.Time) *release.PrivacyPolicy {
	return sim.DefaultPolicy(f.minNoise, uint32(f.minParticipants), uint32(f.minTolerated), f.maxClip, now)
}

// emptyForSetup refuses a target (which flag names) that holds anything but what an
// interrupted setup left there, which it removes: keys in a staging directory nobody will
// move up, and which made every later setup refuse a directory that looked empty.
func emptyForSetup(flag, target, what string) error {
	entries, err := os.ReadDir(target)
	if err != nil {
		return nil // missing, or not a directory: stage says which
	}
	var others []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), stagingPrefix) {
			others = append(others, e.Name())
		}
	}
	if len(others) > 0 {
		return fmt.Errorf("setup: %s %s is not empty (it holds %s); refusing to overwrite %s", flag, target, strings.Join(others[:min(3, len(others))], ", "), what)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(target, e.Name())); err != nil {
			return fmt.Errorf("setup: %s: removing what an interrupted setup left: %w", flag, err)
		}
	}
	return nil
}

// stagingPrefix starts the names of setup's staging directories.
const stagingPrefix = ".setup-"

// staging is a hidden directory inside target, written in full before its entries move up
// into target.
type staging struct {
	target, dir string
	created     bool // target did not exist before
	done        bool
}

// stage makes target (which flag names) if it does not exist, and a staging directory in it,
// private to its owner.
func stage(flag, target string) (*staging, error) {
	s := &staging{target: target}
	switch fi, err := os.Stat(target); {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(target, 0o700); err != nil {
			return nil, fmt.Errorf("setup: %s: %w", flag, err)
		}
		s.created = true
	case err != nil:
		return nil, fmt.Errorf("setup: %s: %w", flag, err)
	case !fi.IsDir():
		return nil, fmt.Errorf("setup: %s %s is a file, not a directory", flag, target)
	}
	dir, err := os.MkdirTemp(target, stagingPrefix+"*")
	if err != nil {
		s.abort()
		return nil, fmt.Errorf("setup: %s: %w", flag, err)
	}
	s.dir = dir
	return s, nil
}

// commit moves the staged entries into target.
func (s *staging) commit() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.Rename(filepath.Join(s.dir, e.Name()), filepath.Join(s.target, e.Name())); err != nil {
			return err
		}
	}
	s.done = true
	return os.Remove(s.dir)
}

// abort removes what was staged, and target if stage made it, unless commit ran.
func (s *staging) abort() {
	if s.done {
		return
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
	if s.created {
		os.Remove(s.target) // only if empty: a staging directory of --kits inside --dir may be in it
	}
}

// setupOrg creates the organisation directory dir: see runSetup.
func setupOrg(dir string, ids []string, threshold int, hosts []string, pol policyFlags, now time.Time) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	auth, err := pki.InitAuthority(filepath.Join(dir, orgPKI), "Vigil CA", "coordinator", hosts, 5*365*24*time.Hour, 365*24*time.Hour, now)
	if err != nil {
		return err
	}
	authority, err := enrolment.InitDir(filepath.Join(dir, orgEnrol), hosts, now)
	if err != nil {
		return err
	}
	// The root's enrolment role is the authority's key and its trustees role the trustees'
	// ceremony keys: the coordinator, which reads the rest of this directory, holds neither.
	trust, err := sim.NewOrgTrust(ids, threshold, authority.Key.Public(), pol.policy(now), now, 365*24*time.Hour)
	if err != nil {
		return err
	}
	keys := trust.Keys
	for name, k := range map[string]*sig.PrivateKey{
		filepath.Join(orgKeys, "root"): keys.Root, filepath.Join(orgKeys, "release"): keys.Release,
		filepath.Join(orgKeys, "timestamp"): keys.Timestamp, filepath.Join(orgPrivacy, "privacy"): keys.Privacy,
	} {
		base := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(base), 0o700); err != nil {
			return err
		}
		if err := sig.WritePrivateKeyFile(base+".key", k); err != nil {
			return err
		}
		if err := sig.WritePublicKeyFile(base+".pub", k.Public()); err != nil {
			return err
		}
	}
	roster, err := trust.Ceremony.Roster.MarshalBinary()
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{
		orgRoot: keys.RootEnvelope, orgKeyEpoch: trust.PublicKey, orgKeyEpochDoc: trust.KeyDocument, orgPolicy: trust.Policy,
		orgRoster: roster,
	} {
		if err := trustee.WritePublicFile(filepath.Join(dir, name), data); err != nil {
			return err
		}
	}
	for i, share := range trust.Ceremony.Shares {
		if got := trust.Ceremony.Identities[i].ID; got != share.TrusteeID() {
			return fmt.Errorf("key ceremony: identity %d is %s, share %d is %s's", i, got, i, share.TrusteeID())
		}
		tdir := filepath.Join(dir, orgTrustees, share.TrusteeID())
		if err := os.MkdirAll(tdir, 0o700); err != nil {
			return err
		}
		if err := trustee.SaveShare(filepath.Join(tdir, trustee.ShareFile), share); err != nil {
			return err
		}
		ident, err := trust.Ceremony.Identities[i].MarshalBinary()
		if err != nil {
			return err
		}
		if err := trustee.WriteSecretFile(filepath.Join(tdir, trustee.IdentityFile), ident); err != nil {
			return err
		}
		creds, err := auth.IssueCredentials(pki.Trustee(share.TrusteeID()), hosts, 365*24*time.Hour, now)
		if err != nil {
			return err
		}
		if err := pki.SaveCredentials(filepath.Join(tdir, orgTrusteeTLS), creds); err != nil {
			return err
		}
	}
	return nil
}
