package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// A log's checkpoints prove that nothing before them was changed, but nothing inside a log can
// prove that its end is still there: cutting the log back to a checkpoint, or emptying it,
// leaves a shorter chain that verifies. So the log's owner exports signed heads (SignHead) to
// somewhere the log's attacker cannot rewrite (the coordinator, a SIEM, an operator's archive),
// and verification against the newest exported head (VerifyAgainst) refuses any log that ends
// before it or disagrees with it.

// headDomain separates head signatures from checkpoint signatures made with the same key.
const headDomain = "vigil/audit/head/v1\n"

// SignedHead is a log's head signed by the log's checkpoint key, for keeping outside the log.
type SignedHead struct {
	Seq  uint64    `json:"seq"`
	Hash Hash      `json:"hash"`
	Time time.Time `json:"time"`
	Key  KeyID     `json:"key"`
	Sig  []byte    `json:"sig"`
}

// HeadMessage is the message a SignedHead's signature covers.
func HeadMessage(h Head) []byte {
	msg := append([]byte(headDomain), appendUint64(nil, h.Seq)...)
	msg = append(msg, h.Hash[:]...)
	return appendUint64(msg, uint64(h.Time.UnixNano()))
}

// SignHead signs the log's current head for export. The head covers every record written so
// far, signed by a checkpoint or not.
func (l *Log) SignHead() (SignedHead, error) {
	if l.err != nil {
		return SignedHead{}, l.err
	}
	sig, err := l.cfg.Signer.Sign(HeadMessage(l.head))
	if err != nil {
		return SignedHead{}, err
	}
	return SignedHead{Seq: l.head.Seq, Hash: l.head.Hash, Time: l.head.Time, Key: l.key, Sig: sig}, nil
}

// ParseSignedHead decodes an exported head (JSON, as json.Marshal writes a SignedHead) and
// checks its signature under v.
func ParseSignedHead(data []byte, v Verifier) (Head, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var sh SignedHead
	if err := dec.Decode(&sh); err != nil {
		return Head{}, fmt.Errorf("%w: signed head: %v", ErrMalformed, err)
	}
	h := Head{Seq: sh.Seq, Hash: sh.Hash, Time: sh.Time}
	if sh.Key != KeyIDOf(v.PublicKey()) {
		return Head{}, fmt.Errorf("%w: signed head is signed by key %s, not by the given key", ErrBadSignature, sh.Key)
	}
	if !v.Verify(HeadMessage(h), sh.Sig) {
		return Head{}, fmt.Errorf("%w: signed head of record %d does not verify", ErrBadSignature, sh.Seq)
	}
	return h, nil
}

// VerifyAgainst is Verify for a log whose head was exported as expect (from ParseSignedHead,
// or a sequence number and hash kept by an operator; a zero Hash checks the length only): it
// also fails with ErrTruncated when the log ends before record expect.Seq, and with ErrTampered
// when the record there has another hash.
func VerifyAgainst(r io.Reader, v Verifier, expect Head) (Report, error) {
	return verify(r, v, &expect)
}

// headCheck remembers the hash of one record while a log is walked.
type headCheck struct {
	want  Head
	found bool
	hash  Hash
}

func (c *headCheck) see(seq uint64, h Hash) {
	if seq == c.want.Seq {
		c.found, c.hash = true, h
	}
}

func (c *headCheck) result(rep Report, lines int) error {
	switch {
	case c.want.Seq == 0:
		return nil
	case !c.found:
		return &VerifyError{Line: lines, Seq: rep.Head.Seq + 1, Err: ErrTruncated,
			Detail: fmt.Sprintf("the log ends at record %d, but its head was exported at record %d: records %d..%d were cut off",
				rep.Head.Seq, c.want.Seq, rep.Head.Seq+1, c.want.Seq)}
	case c.want.Hash != (Hash{}) && c.hash != c.want.Hash:
		return &VerifyError{Line: lines, Seq: c.want.Seq, Err: ErrTampered,
			Detail: fmt.Sprintf("record %d has hash %s, the exported head says %s: the log was rewritten", c.want.Seq, c.hash, c.want.Hash)}
	}
	return nil
}
