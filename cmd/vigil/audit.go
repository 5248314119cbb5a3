package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/vigilauth/vigil/internal/atomicfile"
	"io"
	"os"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"

	"github.com/vigilauth/vigil/audit"
)

const auditUsage = `usage: vigil audit <subcommand> [flags]

subcommands:
  verify   check a decision log's hash chain and ML-DSA-65 checkpoint signatures
           (exit 1 if it does not verify, 2 for a wrong flag or file)
  keygen   create an ML-DSA-65 key pair for signing audit checkpoints
`

// runAudit implements "vigil audit".
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, auditUsage)
		return errors.New("audit: missing subcommand (verify or keygen)")
	}
	switch args[0] {
	case "verify":
		return runAuditVerify(ctx, args[1:], stdout, stderr)
	case "keygen":
		return runAuditKeygen(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stderr, auditUsage)
		return flag.ErrHelp
	}
	fmt.Fprint(stderr, auditUsage)
	return fmt.Errorf("audit: unknown subcommand %q", args[0])
}

func runAuditVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("audit verify", stdout)
	logPath := fs.String("log", "", "decision log to verify (JSON lines) `FILE`")
	keyPath := fs.String("key", "", "ML-DSA-65 public key that signs the checkpoints: raw 1,952 bytes or base64 `FILE`")
	strict := fs.Bool("strict", false, "also fail on gap records (dropped decisions) and on records after the last checkpoint")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	headPath := fs.String("head", "", "a signed head the log's owner exported (JSON `FILE`): the log must reach it unchanged, so a log cut back to a checkpoint fails")
	expectSeq := fs.Uint64("expect-seq", 0, "the log must hold at least record `N` (a head kept outside the log)")
	expectHead := fs.String("expect-head", "", "with --expect-seq: the hash of record N, 64 hex digits (`HASH`)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return unexpectedArgument("audit verify", fs)
	case *logPath == "":
		return errors.New("audit verify: --log is required")
	case *keyPath == "":
		return errors.New("audit verify: --key is required")
	}
	v, err := loadVerifier(*keyPath)
	if err != nil {
		return fmt.Errorf("audit verify: --key %s: %w", *keyPath, err)
	}
	expect, err := expectedHead(*headPath, *expectSeq, *expectHead, v)
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	f, err := os.Open(*logPath)
	if err != nil {
		return fmt.Errorf("audit verify: --log: %w", err)
	}
	defer f.Close()
	rep, err := audit.VerifyAgainst(ctxReader{ctx, f}, v, expect)
	if err != nil {
		err = fmt.Errorf("audit verify: %s: %w", *logPath, err)
		if verr := (*audit.VerifyError)(nil); errors.As(err, &verr) {
			return refusedErr(err) // the log does not verify; a file that cannot be read stays 2
		}
		return err
	}
	if *asJSON {
		if err := writeReportJSON(stdout, *logPath, rep); err != nil {
			return err
		}
	} else {
		writeReport(stdout, *logPath, rep, audit.KeyIDOf(v.PublicKey()))
	}
	// What does not verify exits 1, as vigil release verify does; 2 is for a wrong flag or file.
	switch err := rep.Signed(); {
	case err != nil && rep.Records == 0 && expect == (audit.Head{}):
		return refusedErr(fmt.Errorf("audit verify: %s: %w; give --head with a head the agent exported", *logPath, err))
	case err != nil && rep.Records > 0:
		return refusedErr(fmt.Errorf("audit verify: %s: %w", *logPath, err))
	case *strict && rep.Dropped > 0:
		return refusedErr(fmt.Errorf("audit verify: %s: %d entries were dropped (gap records) (--strict)", *logPath, rep.Dropped))
	case *strict && rep.Uncovered() > 0:
		return refusedErr(fmt.Errorf("audit verify: %s: %d records after the last checkpoint are unsigned (--strict)", *logPath, rep.Uncovered()))
	}
	return nil
}

// expectedHead is the head the log must reach: from a signed head file, or from a sequence
// number and hash an operator kept; the zero Head when neither is given.
func expectedHead(headPath string, seq uint64, hash string, v audit.Verifier) (audit.Head, error) {
	switch {
	case headPath != "" && (seq != 0 || hash != ""):
		return audit.Head{}, errors.New("--head and --expect-seq/--expect-head are alternatives; give one")
	case headPath != "":
		data, err := os.ReadFile(headPath)
		if err != nil {
			return audit.Head{}, fmt.Errorf("--head: %w", err)
		}
		h, err := audit.ParseSignedHead(data, v)
		if err != nil {
			return audit.Head{}, fmt.Errorf("--head %s: %w", headPath, err)
		}
		return h, nil
	case hash != "" && seq == 0:
		return audit.Head{}, errors.New("--expect-head needs --expect-seq, the record it is the hash of")
	}
	h := audit.Head{Seq: seq}
	if hash != "" {
		if err := h.Hash.UnmarshalText([]byte(hash)); err != nil {
			return audit.Head{}, fmt.Errorf("--expect-head: %w", err)
		}
	}
	return h, nil
}

func writeReport(w io.Writer, path string, rep audit.Report, key audit.KeyID) {
	fmt.Fprintf(w, "%s: chain intact, checkpoint signatures valid\n", path)
	fmt.Fprintf(w, "  records      %d (%d decisions, %d session events, %d gaps, %d checkpoints)\n",
		rep.Records, rep.Decisions, rep.SessionEvents, len(rep.Gaps), rep.Checkpoints)
	if rep.Records == 0 {
		fmt.Fprintln(w, "  the log is empty")
		return
	}
	fmt.Fprintf(w, "  head         record %d at %s, hash %s\n", rep.Head.Seq, rep.Head.Time.Format("2006-01-02T15:04:05.000Z07:00"), rep.Head.Hash)
	if rep.Checkpoints > 0 {
		fmt.Fprintf(w, "  signed       records 1..%d, by key %s\n", rep.LastSigned, key)
	}
	if n := rep.Uncovered(); n > 0 {
		fmt.Fprintf(w, "  WARNING      %d records after record %d are not covered by a signature: cutting them off would go unnoticed\n", n, rep.LastSigned)
	}
	if rep.Dropped > 0 {
		fmt.Fprintf(w, "  WARNING      %d entries were dropped before reaching the log (%s); first gap at record %d\n", rep.Dropped, dropCauses(rep), rep.Gaps[0].Seq)
	}
}

// dropCauses says why a log's gap records lost their entries: a full queue, or entries the log
// format refused.
func dropCauses(rep audit.Report) string {
	const invalid = "invalid: the log format refused them"
	switch full := rep.Dropped - rep.Invalid; {
	case rep.Invalid == 0:
		return "queue full"
	case full == 0:
		return invalid
	default:
		return fmt.Sprintf("%d queue full, %d %s", full, rep.Invalid, invalid)
	}
}

func writeReportJSON(w io.Writer, path string, rep audit.Report) error {
	out := struct {
		Log           string        `json:"log"`
		Records       int           `json:"records"`
		Decisions     int           `json:"decisions"`
		SessionEvents int           `json:"session_events"`
		Checkpoints   int           `json:"checkpoints"`
		HeadSeq       uint64        `json:"head_seq"`
		HeadHash      audit.Hash    `json:"head_hash"`
		LastSigned    uint64        `json:"last_signed"`
		Unsigned      uint64        `json:"unsigned"`
		Dropped       uint64        `json:"dropped"`
		Invalid       uint64        `json:"dropped_invalid"`
		Gaps          []audit.GapAt `json:"gaps"`
	}{path, rep.Records, rep.Decisions, rep.SessionEvents, rep.Checkpoints, rep.Head.Seq, rep.Head.Hash,
		rep.LastSigned, rep.Uncovered(), rep.Dropped, rep.Invalid, rep.Gaps}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// loadVerifier reads a public key file: the raw encoding, or its base64.
func loadVerifier(path string) (audit.Verifier, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) != mldsa65.PublicKeySize {
		text := bytes.TrimSpace(data)
		decoded := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
		n, err := base64.StdEncoding.Decode(decoded, text)
		if err != nil || n != mldsa65.PublicKeySize {
			return nil, fmt.Errorf("not an ML-DSA-65 public key: want %d raw bytes or their base64, got %d bytes", mldsa65.PublicKeySize, len(data))
		}
		data = decoded[:n]
	}
	return audit.ParseMLDSA65PublicKey(data)
}

func runAuditKeygen(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("audit keygen", stdout)
	privPath := fs.String("priv", "", "where to write the private key seed (32 bytes, mode 0600) `FILE`")
	pubPath := fs.String("pub", "", "where to write the public key (base64) `FILE`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return unexpectedArgument("audit keygen", fs)
	case *privPath == "":
		return errors.New("audit keygen: --priv is required")
	case *pubPath == "":
		return errors.New("audit keygen: --pub is required")
	}
	signer, seed, err := audit.GenerateMLDSA65(nil)
	if err != nil {
		return err
	}
	if err := writeNew(*privPath, seed, 0o600); err != nil {
		return fmt.Errorf("audit keygen: --priv: %w", err)
	}
	pub := base64.StdEncoding.EncodeToString(signer.Public().PublicKey()) + "\n"
	if err := writeNew(*pubPath, []byte(pub), 0o644); err != nil {
		os.Remove(*privPath)
		return fmt.Errorf("audit keygen: --pub: %w", err)
	}
	fmt.Fprintf(stdout, "key %s\n", audit.KeyIDOf(signer.Public().PublicKey()))
	return nil
}

// writeNew writes a file that must not exist yet, so that keygen never overwrites a key.
func writeNew(path string, data []byte, mode os.FileMode) error {
	return atomicfile.Create(path, data, mode)
}

// ctxReader stops reading when ctx is done, so that verifying a large log can be interrupted.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
