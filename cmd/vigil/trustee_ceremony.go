package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigilauth/vigil/crypto/he"
	"github.com/vigilauth/vigil/trustee"
)

const identityPubFile = "identity.pub"

func runTrusteeInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newTrusteeFlags("init", stderr)
	dir := fs.String("dir", "", "the trustee's directory (created with mode 0700)")
	id := fs.String("id", "", "the trustee's id: 1-64 of [A-Za-z0-9._-]")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := trusteeNoArgs("init", fs.Args()); err != nil {
		return err
	}
	if err := errors.Join(trusteeRequireFlag("init", "dir", *dir), trusteeRequireFlag("init", "id", *id)); err != nil {
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
	fs := newTrusteeFlags("roster", stderr)
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

func runTrusteeDeal(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newTrusteeFlags("deal", stderr)
	dir := fs.String("dir", "", "the trustee's directory (holds identity.key)")
	rosterPath := fs.String("roster", "", "the roster file")
	out := fs.String("out", "", "file to write this trustee's dealing to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := trusteeNoArgs("deal", fs.Args()); err != nil {
		return err
	}
	if err := errors.Join(trusteeRequireFlag("deal", "dir", *dir), trusteeRequireFlag("deal", "roster", *rosterPath), trusteeRequireFlag("deal", "out", *out)); err != nil {
		return err
	}
	ident, roster, err := loadCeremonyInputs(*dir, *rosterPath)
	if err != nil {
		return err
	}
	d, err := he.Deal(roster, ident)
	if err != nil {
		return fmt.Errorf("trustee deal: %w", err)
	}
	data, err := d.MarshalBinary()
	if err != nil {
		return err
	}
	if err := trustee.WritePublicFile(*out, data); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "dealing of %s for roster %s written to %s\n", ident.ID, hex.EncodeToString(d.RosterDigest[:]), *out)
	return nil
}

func runTrusteeFinish(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newTrusteeFlags("finish", stderr)
	dir := fs.String("dir", "", "the trustee's directory (holds identity.key; receives share.key and key-epoch.bin)")
	rosterPath := fs.String("roster", "", "the roster file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := errors.Join(trusteeRequireFlag("finish", "dir", *dir), trusteeRequireFlag("finish", "roster", *rosterPath)); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("trustee finish: give every trustee's dealing file as arguments")
	}
	sharePath := filepath.Join(*dir, trustee.ShareFile)
	if err := trusteeRefuseExisting("finish", sharePath); err != nil {
		return err
	}
	ident, roster, err := loadCeremonyInputs(*dir, *rosterPath)
	if err != nil {
		return err
	}
	var dealings []*he.Dealing
	for _, path := range fs.Args() {
		data, err := trustee.ReadPublicFile(path)
		if err != nil {
			return err
		}
		d, err := he.ParseDealing(he.DefaultParams(), data)
		if err != nil {
			return fmt.Errorf("trustee finish: %s: %w", path, err)
		}
		dealings = append(dealings, d)
	}
	share, key, err := he.Finish(roster, ident, dealings)
	if err != nil {
		return fmt.Errorf("trustee finish: %w", err)
	}
	return writeCeremonyResult(stdout, *dir, share, key)
}

func runTrusteeCeremony(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newTrusteeFlags("ceremony", stderr)
	out := fs.String("out", "", "directory to write one subdirectory per trustee and key-epoch.bin to")
	ids := fs.String("trustees", "", "comma-separated trustee ids, in Shamir point order, e.g. privacy,security,audit")
	threshold := fs.Int("threshold", 0, "t: how many trustees decrypt together (2..n)")
	epoch := fs.Uint64("epoch", 1, "the key epoch the ceremony creates")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := trusteeNoArgs("ceremony", fs.Args()); err != nil {
		return err
	}
	if err := errors.Join(trusteeRequireFlag("ceremony", "out", *out), trusteeRequireFlag("ceremony", "trustees", *ids)); err != nil {
		return err
	}
	names := strings.Split(*ids, ",")
	for _, id := range names {
		if err := trusteeRefuseExisting("ceremony", filepath.Join(*out, id, trustee.ShareFile)); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "running the key ceremony for %d trustees on this host...\n", len(names))
	shares, key, err := he.LocalCeremony(he.DefaultParams(), *epoch, names, *threshold)
	if err != nil {
		return fmt.Errorf("trustee ceremony: --trustees %q --threshold %d: %w", *ids, *threshold, err)
	}
	for _, share := range shares {
		dir := filepath.Join(*out, share.TrusteeID())
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("trustee ceremony: --out: %w", err)
		}
		if err := writeCeremonyResult(stdout, dir, share, key); err != nil {
			return err
		}
	}
	data, err := key.MarshalBinary()
	if err != nil {
		return err
	}
	keyPath := filepath.Join(*out, trustee.KeyEpochFile)
	if err := trustee.WritePublicFile(keyPath, data); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "key epoch %d written to %s; this host saw every share: wipe it once the shares are with their trustees\n", key.Epoch, keyPath)
	return nil
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

func trusteeNoArgs(cmd string, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("trustee %s: unexpected argument %q", cmd, args[0])
	}
	return nil
}
