package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigilauth/vigil/crypto/he"
	"github.com/vigilauth/vigil/trustee"
)

const (
	identityPubFile = "identity.pub"
	rosterFile      = "roster.bin"
	approvalFile    = "approval.bin"
)

func runTrusteeInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newTrusteeFlags("init", stdout)
	dir := fs.String("dir", "", "the trustee's directory (created with mode 0700)")
	id := fs.String("id", "", "the trustee's id: 1-64 of [A-Za-z0-9._-]")
	if err := parseTrusteeFlags(fs, args, "dir", "id"); err != nil {
		return err
	}
	keyPath := filepath.Join(*dir, trustee.IdentityFile)
	if err := trusteeRefuseExisting("init", keyPath); err != nil {
		return err
	}
	ident, err := he.NewIdentity(*id)
	if err != nil {
		return fmt.Errorf("trustee init: --id: %w", err)
	}
	priv, err := ident.MarshalBinary()
	if err != nil {
		return err
	}
	pub, err := ident.Public().MarshalBinary()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return fmt.Errorf("trustee init: --dir: %w", err)
	}
	if err := trustee.WriteSecretFile(keyPath, priv); err != nil {
		return err
	}
	pubPath := filepath.Join(*dir, identityPubFile)
	if err := trustee.WritePublicFile(pubPath, pub); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "identity of %s written to %s (secret) and %s (public)\nfingerprint %s\n",
		*id, keyPath, pubPath, ident.Public().Fingerprint())
	return nil
}

func runTrusteeRoster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newTrusteeFlags("roster", stdout)
	out := fs.String("out", "", "file to write the roster to")
	threshold := fs.Int("threshold", 0, "t: how many trustees decrypt together (2..n)")
	epoch := fs.Uint64("epoch", 1, "the key epoch the ceremony creates")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := trusteeRequireFlag("roster", "out", *out); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("trustee roster: give the trustees' public identity files (identity.pub) as arguments, in Shamir point order")
	}
	var members []he.PublicIdentity
	for _, path := range fs.Args() {
		data, err := trustee.ReadPublicFile(path)
		if err != nil {
			return err
		}
		pi, err := he.ParsePublicIdentity(data)
		if err != nil {
			return fmt.Errorf("trustee roster: %s: %w", path, err)
		}
		members = append(members, pi)
	}
	roster, err := he.NewRoster(he.DefaultParams(), *epoch, *threshold, members)
	if err != nil {
		return fmt.Errorf("trustee roster: --threshold %d with %d trustees: %w", *threshold, len(members), err)
	}
	data, err := roster.MarshalBinary()
	if err != nil {
		return err
	}
	if err := trustee.WritePublicFile(*out, data); err != nil {
		return err
	}
	digest, _ := roster.Digest()
	fmt.Fprintf(stdout, "roster for key epoch %d, %d-of-%d, written to %s\nroster digest %s\n",
		*epoch, *threshold, len(members), *out, hex.EncodeToString(digest[:]))
	for _, m := range roster.Members {
		fmt.Fprintf(stdout, "  point %d  %-20s %s\n", m.Point, m.ID, m.Fingerprint())
	}
	return nil
}

// Files a trustee keeps in its directory between ceremony steps.
const (
	// pendingDealingFile holds the trustee's dealing from deal until reveal publishes it: until
	// every trustee has committed, its public-key share must stay unseen (mode 0600).
	pendingDealingFile = "dealing.key"
	// revealedFile records the digest of the commitments the trustee revealed against; finish
	// refuses any other set.
	revealedFile = "commitments.sha256"
)

func runTrusteeDeal(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newTrusteeFlags("deal", stdout)
	dir := fs.String("dir", "", "the trustee's directory (holds identity.key; receives the unrevealed dealing)")
	rosterPath := fs.String("roster", "", "the roster file")
	out := fs.String("out", "", "file to write this trustee's public commitment to")
	if err := parseTrusteeFlags(fs, args, "dir", "roster", "out"); err != nil {
		return err
	}
	pending := filepath.Join(*dir, pendingDealingFile)
	if err := trusteeRefuseExisting("deal", pending); err != nil {
		return err
	}
	ident, roster, err := loadCeremonyInputs(*dir, *rosterPath)
	if err != nil {
		return err
	}
	d, c, err := he.Deal(roster, ident)
	if err != nil {
		return fmt.Errorf("trustee deal: %w", err)
	}
	dealing, err := d.MarshalBinary()
	if err != nil {
		return err
	}
	commitment, err := c.MarshalBinary()
	if err != nil {
		return err
	}
	if err := trustee.WriteSecretFile(pending, dealing); err != nil {
		return err
	}
	if err := trustee.WritePublicFile(*out, commitment); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "commitment of %s for roster %s written to %s; the dealing stays in %s until every trustee has committed (vigil trustee reveal)\n",
		ident.ID, hex.EncodeToString(d.RosterDigest[:]), *out, pending)
	return nil
}

func runTrusteeReveal(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newTrusteeFlags("reveal", stdout)
	dir := fs.String("dir", "", "the trustee's directory (holds identity.key and the dealing from deal)")
	rosterPath := fs.String("roster", "", "the roster file")
	out := fs.String("out", "", "file to write this trustee's dealing to")
	var commitPaths fileList
	fs.Var(&commitPaths, "commitments", "every trustee's commitment file (comma-separated, or the flag repeated)")
	if err := parseTrusteeFlags(fs, args, "dir", "roster", "out", "commitments"); err != nil {
		return err
	}
	ident, roster, err := loadCeremonyInputs(*dir, *rosterPath)
	if err != nil {
		return err
	}
	pending := filepath.Join(*dir, pendingDealingFile)
	data, err := trustee.ReadSecretFile(pending)
	if err != nil {
		return fmt.Errorf("trustee reveal: %w (run vigil trustee deal first)", err)
	}
	d, err := he.ParseDealing(he.DefaultParams(), data)
	if err != nil {
		return fmt.Errorf("trustee reveal: %s: %w", pending, err)
	}
	commitments, err := readCommitments("reveal", roster, commitPaths)
	if err != nil {
		return err
	}
	if err := he.Reveal(roster, d, commitments.list); err != nil {
		return fmt.Errorf("trustee reveal: %w", commitments.blame(err))
	}
	digest, err := he.CommitmentsDigest(commitments.list)
	if err != nil {
		return err
	}
	if err := trustee.WritePublicFile(filepath.Join(*dir, revealedFile), []byte(hex.EncodeToString(digest[:])+"\n")); err != nil {
		return err
	}
	if err := trustee.WritePublicFile(*out, data); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "all %d commitments verified; dealing of %s written to %s\n", len(roster.Members), ident.ID, *out)
	return nil
}

func runTrusteeFinish(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newTrusteeFlags("finish", stdout)
	dir := fs.String("dir", "", "the trustee's directory (holds identity.key; receives share.key and key-epoch.bin)")
	rosterPath := fs.String("roster", "", "the roster file")
	var commitPaths, dealingPaths fileList
	fs.Var(&commitPaths, "commitments", "every trustee's commitment file, the ones given to reveal (comma-separated, or the flag repeated)")
	fs.Var(&dealingPaths, "dealings", "every trustee's dealing file (comma-separated, or the flag repeated)")
	if err := parseTrusteeFlags(fs, args, "dir", "roster", "commitments", "dealings"); err != nil {
		return err
	}
	sharePath := filepath.Join(*dir, trustee.ShareFile)
	if err := trusteeRefuseExisting("finish", sharePath); err != nil {
		return err
	}
	ident, roster, err := loadCeremonyInputs(*dir, *rosterPath)
	if err != nil {
		return err
	}
	commitments, err := readCommitments("finish", roster, commitPaths)
	if err != nil {
		return err
	}
	// The commitments must be those this trustee revealed against: a second commitment that
	// a dealer made after seeing the revealed dealings is exactly the rogue-key attack. Check
	// them one by one first, for an error that names the trustee and file at fault.
	recorded, err := trustee.ReadPublicFile(filepath.Join(*dir, revealedFile))
	if err != nil {
		return fmt.Errorf("trustee finish: %w (run vigil trustee reveal first)", err)
	}
	pending := filepath.Join(*dir, pendingDealingFile)
	data, err := trustee.ReadSecretFile(pending)
	if err != nil {
		return fmt.Errorf("trustee finish: %w", err)
	}
	own, err := he.ParseDealing(he.DefaultParams(), data)
	if err != nil {
		return fmt.Errorf("trustee finish: %s: %w", pending, err)
	}
	if err := he.Reveal(roster, own, commitments.list); err != nil {
		return fmt.Errorf("trustee finish: %w", commitments.blame(err))
	}
	digest, err := he.CommitmentsDigest(commitments.list)
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(recorded)) != hex.EncodeToString(digest[:]) {
		return fmt.Errorf("trustee finish: the commitments %s are not the ones this trustee revealed its dealing against (%s): a trustee may have committed twice",
			commitPaths.String(), filepath.Join(*dir, revealedFile))
	}
	files := ceremonyFiles{kind: "dealing", paths: map[uint64]string{}}
	var dealings []*he.Dealing
	for _, path := range dealingPaths {
		data, err := trustee.ReadPublicFile(path)
		if err != nil {
			return err
		}
		d, err := he.ParseDealing(he.DefaultParams(), data)
		if err != nil {
			return fmt.Errorf("trustee finish: %s: %w", path, err)
		}
		files.paths[d.From] = path
		dealings = append(dealings, d)
	}
	share, key, err := he.Finish(roster, ident, commitments.list, dealings)
	if err != nil {
		return fmt.Errorf("trustee finish: %w", commitments.blame(files.blame(err)))
	}
	return writeCeremonyResult(stdout, *dir, share, key)
}

func runTrusteeCeremony(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newTrusteeFlags("ceremony", stdout)
	out := fs.String("out", "", "directory to write one subdirectory per trustee and key-epoch.bin to")
	ids := fs.String("trustees", "", "comma-separated trustee ids, in Shamir point order, e.g. privacy,security,audit")
	threshold := fs.Int("threshold", 0, "t: how many trustees decrypt together (2..n)")
	epoch := fs.Uint64("epoch", 1, "the key epoch the ceremony creates")
	if err := parseTrusteeFlags(fs, args, "out", "trustees"); err != nil {
		return err
	}
	names := strings.Split(*ids, ",")
	for _, id := range names {
		for _, f := range []string{trustee.ShareFile, trustee.IdentityFile} {
			if err := trusteeRefuseExisting("ceremony", filepath.Join(*out, id, f)); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(stderr, "running the key ceremony for %d trustees on this host...\n", len(names))
	res, err := he.RunLocalCeremony(he.DefaultParams(), *epoch, names, *threshold)
	if err != nil {
		return fmt.Errorf("trustee ceremony: --trustees %q --threshold %d: %w", *ids, *threshold, err)
	}
	key := res.Key
	for i, share := range res.Shares {
		dir := filepath.Join(*out, share.TrusteeID())
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("trustee ceremony: --out: %w", err)
		}
		if err := writeCeremonyResult(stdout, dir, share, key); err != nil {
			return err
		}
		if err := writeLocalTrustee(dir, res.Identities[i], res.Approvals[i]); err != nil {
			return err
		}
	}
	rosterData, err := res.Roster.MarshalBinary()
	if err != nil {
		return err
	}
	if err := trustee.WritePublicFile(filepath.Join(*out, rosterFile), rosterData); err != nil {
		return err
	}
	data, err := key.MarshalBinary()
	if err != nil {
		return err
	}
	keyPath := filepath.Join(*out, trustee.KeyEpochFile)
	if err := trustee.WritePublicFile(keyPath, data); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "every trustee's test decryption succeeded; approvals in %s/*/%s\n", *out, approvalFile)
	fmt.Fprintf(stdout, "key epoch %d written to %s; this host saw every share: wipe it once the shares are with their trustees\n", key.Epoch, keyPath)
	return nil
}

// writeLocalTrustee writes what the one-host ceremony made for a trustee besides its share:
// its identity (secret, it signs the trustee's approvals) and its approval of the key epoch.
func writeLocalTrustee(dir string, ident *he.Identity, approval *he.Approval) error {
	priv, err := ident.MarshalBinary()
	if err != nil {
		return err
	}
	pub, err := ident.Public().MarshalBinary()
	if err != nil {
		return err
	}
	ab, err := approval.MarshalBinary()
	if err != nil {
		return err
	}
	if err := trustee.WriteSecretFile(filepath.Join(dir, trustee.IdentityFile), priv); err != nil {
		return err
	}
	if err := trustee.WritePublicFile(filepath.Join(dir, identityPubFile), pub); err != nil {
		return err
	}
	return trustee.WritePublicFile(filepath.Join(dir, approvalFile), ab)
}

// writeCeremonyResult writes a trustee's share (0600) and the key epoch into dir.
func writeCeremonyResult(stdout io.Writer, dir string, share *he.SecretShare, key *he.KeyEpoch) error {
	sharePath := filepath.Join(dir, trustee.ShareFile)
	if err := trustee.SaveShare(sharePath, share); err != nil {
		return err
	}
	data, err := key.MarshalBinary()
	if err != nil {
		return err
	}
	if err := trustee.WritePublicFile(filepath.Join(dir, trustee.KeyEpochFile), data); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "trustee %s (point %d): share written to %s; key epoch %d, %d-of-%d, key digest %s\n",
		share.TrusteeID(), share.Point, sharePath, key.Epoch, key.Threshold, len(key.Trustees), hex.EncodeToString(share.KeyDigest[:]))
	return nil
}

func loadCeremonyInputs(dir, rosterPath string) (*he.Identity, *he.Roster, error) {
	data, err := trustee.ReadSecretFile(filepath.Join(dir, trustee.IdentityFile))
	if err != nil {
		return nil, nil, err
	}
	ident, err := he.ParseIdentity(data)
	if err != nil {
		return nil, nil, fmt.Errorf("trustee: %s: %w", filepath.Join(dir, trustee.IdentityFile), err)
	}
	data, err = trustee.ReadPublicFile(rosterPath)
	if err != nil {
		return nil, nil, err
	}
	roster, err := he.ParseRoster(he.DefaultParams(), data)
	if err != nil {
		return nil, nil, fmt.Errorf("trustee: --roster %s: %w", rosterPath, err)
	}
	return ident, roster, nil
}

// trusteeRefuseExisting keeps a command from overwriting secret material.
func trusteeRefuseExisting(cmd, path string) error {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("trustee %s: %s already exists; move it away first (it may hold the only copy of a key)", cmd, path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("trustee %s: %w", cmd, err)
	}
	return nil
}

func trusteeNoArgs(cmd string, fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return unexpectedArgument("trustee "+cmd, fs)
	}
	return nil
}
