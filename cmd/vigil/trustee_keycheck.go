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
	"github.com/vigilauth/vigil/internal/flock"
	"github.com/vigilauth/vigil/trustee"
)

// Files a trustee keeps in its directory for the test decryption.
const (
	// keyCheckFile holds the trustee's secret challenge message from challenge to approve.
	keyCheckFile = "keycheck.key"
	// answeredDir records the response given to each other trustee's challenge, so that a
	// trustee decrypts at most one challenge per challenger (a second, different one is
	// refused; the same one gets the same answer).
	answeredDir = "answered"
	// respondLockFile is held while a response is decided and recorded.
	respondLockFile = "respond.lock"
)

func runTrusteeChallenge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newTrusteeFlags("challenge", stdout)
	dir := fs.String("dir", "", "the trustee's directory (holds identity.key, share.key and key-epoch.bin from finish)")
	rosterPath := fs.String("roster", "", "the roster file")
	out := fs.String("out", "", "file to write this trustee's public challenge to")
	if err := parseTrusteeFlags(fs, args, "dir", "roster", "out"); err != nil {
		return err
	}
	kcPath := filepath.Join(*dir, keyCheckFile)
	if err := trusteeRefuseExisting("challenge", kcPath); err != nil {
		return err
	}
	ident, roster, err := loadCeremonyInputs(*dir, *rosterPath)
	if err != nil {
		return err
	}
	key, err := trustee.LoadKeyEpoch(he.DefaultParams(), filepath.Join(*dir, trustee.KeyEpochFile))
	if err != nil {
		return fmt.Errorf("trustee challenge: %w (run vigil trustee finish first)", err)
	}
	kc, err := he.NewKeyCheck(roster, key, ident)
	if err != nil {
		return fmt.Errorf("trustee challenge: %w", err)
	}
	secret, err := kc.MarshalBinary()
	if err != nil {
		return err
	}
	public, err := kc.Challenge().MarshalBinary()
	if err != nil {
		return err
	}
	if err := trustee.WriteSecretFile(kcPath, secret); err != nil {
		return err
	}
	if err := trustee.WritePublicFile(*out, public); err != nil {
		return err
	}
	var who []string
	for _, m := range kc.Responders() {
		who = append(who, m.ID)
	}
	fmt.Fprintf(stdout, "challenge of %s written to %s; once they have answered it (vigil trustee respond), run vigil trustee approve\nto be answered by: %s\n",
		ident.ID, *out, strings.Join(who, ", "))
	return nil
}

func runTrusteeRespond(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newTrusteeFlags("respond", stdout)
	dir := fs.String("dir", "", "the trustee's directory (holds identity.key, share.key)")
	rosterPath := fs.String("roster", "", "the roster file")
	challengePath := fs.String("challenge", "", "another trustee's challenge file")
	out := fs.String("out", "", "file to write this trustee's response to")
	if err := parseTrusteeFlags(fs, args, "dir", "roster", "challenge", "out"); err != nil {
		return err
	}
	// Answers are decryption shares outside the service's rules (no participant set, no
	// journal): the ceremony is the only time for them. The journal exists once the trustee
	// serves the key, so its presence ends the ceremony.
	if _, err := os.Stat(filepath.Join(*dir, trustee.JournalFile)); err == nil {
		return fmt.Errorf("trustee respond: %s: this trustee already serves its key; challenges are answered only during the ceremony", filepath.Join(*dir, trustee.JournalFile))
	}
	ident, roster, err := loadCeremonyInputs(*dir, *rosterPath)
	if err != nil {
		return err
	}
	p := he.DefaultParams()
	share, err := trustee.LoadShare(p, filepath.Join(*dir, trustee.ShareFile))
	if err != nil {
		return fmt.Errorf("trustee respond: %w (run vigil trustee finish first)", err)
	}
	key, err := trustee.LoadKeyEpoch(p, filepath.Join(*dir, trustee.KeyEpochFile))
	if err != nil {
		return fmt.Errorf("trustee respond: %w (run vigil trustee finish first)", err)
	}
	data, err := trustee.ReadPublicFile(*challengePath)
	if err != nil {
		return err
	}
	c, err := he.ParseChallenge(p, data)
	if err != nil {
		return fmt.Errorf("trustee respond: %s: %w", *challengePath, err)
	}
	from := memberAt(roster, c.From)
	// Held from reading the record to writing it: two runs at once each found no record and
	// answered two different challenges of one trustee (found by a review).
	unlock, err := lockFile(filepath.Join(*dir, respondLockFile))
	if errors.Is(err, flock.ErrLocked) {
		return fmt.Errorf("trustee respond: another vigil trustee respond is running in %s; run this one after it", *dir)
	} else if err != nil {
		return fmt.Errorf("trustee respond: %w", err)
	}
	defer unlock()
	record := filepath.Join(*dir, answeredDir, from+".response")
	if prev, err := os.ReadFile(record); err == nil {
		r, err := he.ParseResponse(p, prev)
		if err != nil {
			return fmt.Errorf("trustee respond: %s: %w", record, err)
		}
		if r.ChallengeDigest != c.Digest() {
			return fmt.Errorf("trustee respond: %s: %q already had a different challenge answered (%s); a trustee decrypts one challenge per trustee", *challengePath, from, record)
		}
		if err := trustee.WritePublicFile(*out, prev); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s's challenge was answered before; the same response written to %s\n", from, *out)
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("trustee respond: %w", err)
	}
	r, err := he.Respond(roster, key, share, ident, c)
	if err != nil {
		return fmt.Errorf("trustee respond: %s: %w", *challengePath, err)
	}
	resp, err := r.MarshalBinary()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(record), 0o700); err != nil {
		return fmt.Errorf("trustee respond: %w", err)
	}
	if err := trustee.WriteSecretFile(record, resp); err != nil {
		return err
	}
	if err := trustee.WritePublicFile(*out, resp); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s's response to the challenge of %s written to %s\n", ident.ID, from, *out)
	return nil
}

func runTrusteeApprove(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newTrusteeFlags("approve", stdout)
	dir := fs.String("dir", "", "the trustee's directory (holds identity.key, share.key, key-epoch.bin and keycheck.key)")
	rosterPath := fs.String("roster", "", "the roster file")
	out := fs.String("out", "", "file to write this trustee's approval of the key epoch to")
	var respPaths fileList
	fs.Var(&respPaths, "responses", "the other trustees' responses to this trustee's challenge (comma-separated, or the flag repeated)")
	if err := parseTrusteeFlags(fs, args, "dir", "roster", "out", "responses"); err != nil {
		return err
	}
	ident, roster, err := loadCeremonyInputs(*dir, *rosterPath)
	if err != nil {
		return err
	}
	p := he.DefaultParams()
	share, err := trustee.LoadShare(p, filepath.Join(*dir, trustee.ShareFile))
	if err != nil {
		return fmt.Errorf("trustee approve: %w", err)
	}
	key, err := trustee.LoadKeyEpoch(p, filepath.Join(*dir, trustee.KeyEpochFile))
	if err != nil {
		return fmt.Errorf("trustee approve: %w", err)
	}
	kcPath := filepath.Join(*dir, keyCheckFile)
	data, err := trustee.ReadSecretFile(kcPath)
	if err != nil {
		return fmt.Errorf("trustee approve: %w (run vigil trustee challenge first)", err)
	}
	kc, err := he.ParseKeyCheck(roster, key, data)
	if err != nil {
		return fmt.Errorf("trustee approve: %s: %w", kcPath, err)
	}
	files := ceremonyFiles{kind: "response", paths: map[uint64]string{}}
	var responses []*he.Response
	for _, path := range respPaths {
		data, err := trustee.ReadPublicFile(path)
		if err != nil {
			return err
		}
		r, err := he.ParseResponse(p, data)
		if err != nil {
			return fmt.Errorf("trustee approve: %s: %w", path, err)
		}
		files.paths[r.From] = path
		responses = append(responses, r)
	}
	a, err := kc.Approve(share, ident, responses)
	if err != nil {
		return fmt.Errorf("trustee approve: %w; do not sign key epoch %d", files.blame(err), key.Epoch)
	}
	ab, err := a.MarshalBinary()
	if err != nil {
		return err
	}
	if err := trustee.WritePublicFile(*out, ab); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "test decryption of %s's challenge succeeded; approval of key epoch %d (key digest %s) written to %s\n",
		ident.ID, key.Epoch, hex.EncodeToString(a.KeyDigest[:]), *out)
	return nil
}

// fileList is a flag holding file names: comma-separated, or the flag repeated.
type fileList []string

func (l *fileList) String() string { return strings.Join(*l, ",") }

func (l *fileList) Set(s string) error {
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			*l = append(*l, f)
		}
	}
	return nil
}

// ceremonyFiles remembers which file each trustee's message came from, so that an error the
// he package attributes to a trustee (he.TrusteeError) names the file too.
type ceremonyFiles struct {
	kind  string
	paths map[uint64]string // by the sender's Shamir point
}

func (f ceremonyFiles) blame(err error) error {
	var te *he.TrusteeError
	if errors.As(err, &te) {
		if path, ok := f.paths[te.Point]; ok {
			return fmt.Errorf("%s file %s: %w", f.kind, path, err)
		}
	}
	return err
}

// commitmentSet is the commitments read from files, with the file of each.
type commitmentSet struct {
	ceremonyFiles
	list []*he.Commitment
}

func readCommitments(cmd string, roster *he.Roster, paths []string) (*commitmentSet, error) {
	set := &commitmentSet{ceremonyFiles: ceremonyFiles{kind: "commitment", paths: map[uint64]string{}}}
	for _, path := range paths {
		data, err := trustee.ReadPublicFile(path)
		if err != nil {
			return nil, err
		}
		c, err := he.ParseCommitment(he.DefaultParams(), data)
		if err != nil {
			return nil, fmt.Errorf("trustee %s: %s: %w", cmd, path, err)
		}
		set.paths[c.From] = path
		set.list = append(set.list, c)
	}
	return set, nil
}

// memberAt names the roster member at Shamir point x, for messages and file names.
func memberAt(roster *he.Roster, x uint64) string {
	for _, m := range roster.Members {
		if m.Point == x {
			return m.ID
		}
	}
	return fmt.Sprintf("point-%d", x)
}
