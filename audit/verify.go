package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Report summarises a log that verified.
type Report struct {
	Records       int    // all records, checkpoints included
	Decisions     int    // KindDecision records
	SessionEvents int    // KindSession records
	Checkpoints   int    // KindCheckpoint records, all with valid signatures
	Head          Head   // the last record
	LastSigned    uint64 // the last record covered by a checkpoint; 0 if none
	Gaps          []GapAt
	Dropped       uint64 // sum of Gaps
	Invalid       uint64 // of Dropped, entries the log format refused (the rest found the queue full)
}

// Unsigned returns how many records follow the last record a checkpoint signed, the
// checkpoint itself among them (Uncovered leaves it out).
func (r Report) Unsigned() uint64 { return r.Head.Seq - r.LastSigned }

// Uncovered returns how many records no checkpoint signs, checkpoints not counted. Nothing
// but an outside copy of a later head can show that such records were cut off the end of
// the log.
func (r Report) Uncovered() uint64 {
	if r.Checkpoints == 0 {
		return r.Head.Seq
	}
	return r.Unsigned() - 1
}

// Signed returns an error if nothing in a log that verifies shows who wrote it: an empty
// log, or records without a checkpoint. Whoever can write such a log could have emptied or
// written it; only a head kept elsewhere (VerifyAgainst) can say otherwise.
func (r Report) Signed() error {
	switch {
	case r.Records == 0:
		return errors.New("the log is empty: nothing shows it was not emptied")
	case r.Checkpoints == 0:
		return errors.New("no signed checkpoint: the chain is intact but nothing shows who wrote it")
	}
	return nil
}

// GapAt is a gap marker found in a log.
type GapAt struct {
	Seq     uint64
	Dropped uint64
	Invalid uint64 `json:",omitempty"` // of Dropped, entries the log format refused
}

// VerifyError names the first problem Verify found.
type VerifyError struct {
	Line   int    // line of the file where the problem showed (1-based)
	Seq    uint64 // the record at fault; for ErrMissing the first missing one
	Err    error  // ErrMalformed, ErrTampered, ErrReordered, ErrMissing, ErrTruncated or ErrBadSignature
	Detail string
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("%v: record %d (line %d): %s", e.Err, e.Seq, e.Line, e.Detail)
}

// Unwrap lets errors.Is match the kind of problem.
func (e *VerifyError) Unwrap() error { return e.Err }

// Verify reads a whole log and checks every record: strict canonical encoding, its hash, its
// sequence number, its link to the record before, non-decreasing times, and every checkpoint's
// signature under v. It returns a *VerifyError naming the first problem.
//
// A log cut back to one of its checkpoints still verifies: use VerifyAgainst with a head
// exported before the cut.
func Verify(r io.Reader, v Verifier) (Report, error) { return verify(r, v, nil) }

func verify(r io.Reader, v Verifier, expect *Head) (Report, error) {
	if v == nil {
		return Report{}, errors.New("audit: Verify needs a Verifier")
	}
	key := KeyIDOf(v.PublicKey())
	br := bufio.NewReaderSize(r, MaxRecordBytes)
	var rep Report
	var check headCheck
	if expect != nil {
		check.want = *expect
	}
	line := 0
	for {
		b, err := readLine(br)
		if err == io.EOF {
			if err := check.result(rep, line); err != nil {
				return Report{}, err
			}
			return rep, nil
		}
		line++
		expect := rep.Head.Seq + 1
		fail := func(kind error, seq uint64, format string, args ...any) (Report, error) {
			return Report{}, &VerifyError{Line: line, Seq: seq, Err: kind, Detail: fmt.Sprintf(format, args...)}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			return fail(ErrMalformed, expect, "line longer than %d bytes", MaxRecordBytes)
		case errors.Is(err, errNoNewline):
			return fail(ErrTruncated, expect, "last line is incomplete (%d bytes, no newline): the log was cut mid-record", len(b))
		case err != nil:
			return Report{}, fmt.Errorf("audit: read line %d: %w", line+1, err)
		}
		rec, want, err := decodeLine(b)
		if err != nil {
			return fail(ErrMalformed, expect, "%v", err)
		}
		if rec.Seq != expect {
			detail, kind := classifyOutOfPlace(br, line, expect, rec.Seq)
			return fail(kind, expect, "%s", detail)
		}
		if want != rec.Hash {
			return fail(ErrTampered, rec.Seq, "contents do not match the record's hash")
		}
		if rec.Prev != rep.Head.Hash {
			// This record is intact but its link disagrees with the record before, whose hash
			// matched its own contents: that record was rewritten together with its hash.
			return fail(ErrTampered, rec.Seq-1, "record %d was rewritten: its hash is not the one record %d links to", rec.Seq-1, rec.Seq)
		}
		if rec.Time.Before(rep.Head.Time) {
			return fail(ErrTampered, rec.Seq, "time %s is before the previous record's", rec.Time)
		}
		switch rec.Kind {
		case KindDecision:
			rep.Decisions++
		case KindSession:
			rep.SessionEvents++
		case KindGap:
			rep.Gaps = append(rep.Gaps, GapAt{Seq: rec.Seq, Dropped: rec.Gap.Dropped, Invalid: rec.Gap.Invalid})
			rep.Dropped += rec.Gap.Dropped
			rep.Invalid += rec.Gap.Invalid
		case KindCheckpoint:
			cp := rec.Checkpoint
			if cp.Key != key {
				return fail(ErrBadSignature, rec.Seq, "checkpoint signed by key %s, not by the given key %s", cp.Key, key)
			}
			if !v.Verify(CheckpointMessage(cp.Covers, cp.Head, rec.Time), cp.Sig) {
				return fail(ErrBadSignature, rec.Seq, "signature does not verify: records %d..%d were rewritten after signing, or the checkpoint is forged", rep.LastSigned+1, cp.Covers)
			}
			rep.Checkpoints++
			rep.LastSigned = cp.Covers
		}
		rep.Records++
		rep.Head = Head{Seq: rec.Seq, Hash: rec.Hash, Time: rec.Time}
		check.see(rec.Seq, rec.Hash)
	}
}

var errNoNewline = errors.New("no newline")

// readLine returns the next line without its newline; io.EOF at a clean end; errNoNewline with
// the bytes of a final line that lacks one; bufio.ErrBufferFull for a line over the cap.
func readLine(br *bufio.Reader) ([]byte, error) {
	b, err := br.ReadSlice('\n')
	switch {
	case err == nil:
		return b[:len(b)-1], nil
	case err == io.EOF && len(b) == 0:
		return nil, io.EOF
	case err == io.EOF:
		return b, errNoNewline
	default:
		return b, err
	}
}

// classifyOutOfPlace decides, when line holds record found instead of expect, whether expect was
// moved (it appears further on) or is missing, reading the rest of the log only for sequence
// numbers.
func classifyOutOfPlace(br *bufio.Reader, line int, expect, found uint64) (detail string, kind error) {
	if found < expect {
		return fmt.Sprintf("line %d holds record %d again or out of order, where record %d belongs", line, found, expect), ErrReordered
	}
	for l := line + 1; ; l++ {
		b, err := readLine(br)
		if err != nil && !errors.Is(err, errNoNewline) {
			break
		}
		var probe struct {
			Seq uint64 `json:"seq"`
		}
		if json.Unmarshal(bytes.TrimSpace(b), &probe) == nil && probe.Seq == expect {
			return fmt.Sprintf("record %d is at line %d, after record %d at line %d", expect, l, found, line), ErrReordered
		}
		if err != nil {
			break
		}
	}
	if found == expect+1 {
		return fmt.Sprintf("record %d is missing: line %d holds record %d", expect, line, found), ErrMissing
	}
	return fmt.Sprintf("records %d..%d are missing: line %d holds record %d", expect, found-1, line, found), ErrMissing
}
