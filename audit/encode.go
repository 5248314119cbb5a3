package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"time"
	"unicode/utf8"
)

// encodeBody returns the canonical JSON of r without its hash: the bytes ComputeHash hashes.
func (r *Record) encodeBody() ([]byte, error) {
	body := *r
	body.Hash = Hash{}
	b, err := json.Marshal(bodyViewOf(body))
	if err != nil {
		return nil, fmt.Errorf("audit: encode record %d: %w", r.Seq, err)
	}
	return b, nil
}

// bodyView is Record without the hash field, so the hashed bytes never contain a hash.
type bodyView struct {
	Seq        uint64        `json:"seq"`
	Time       time.Time     `json:"time"`
	Prev       Hash          `json:"prev"`
	Kind       Kind          `json:"kind"`
	Decision   *Decision     `json:"decision,omitempty"`
	Session    *SessionEvent `json:"session,omitempty"`
	Gap        *Gap          `json:"gap,omitempty"`
	Checkpoint *Checkpoint   `json:"checkpoint,omitempty"`
}

func bodyViewOf(r Record) bodyView {
	return bodyView{r.Seq, r.Time, r.Prev, r.Kind, r.Decision, r.Session, r.Gap, r.Checkpoint}
}

// hashSuffixLen is the length of `,"hash":"<64 hex digits>"}`, the end of every canonical line:
// the hash field comes last, so a line is its hashed body with the hash spliced in before the
// closing brace.
const hashSuffixLen = len(`,"hash":""}`) + 2*len(Hash{})

// encodeLine returns the canonical line for r, newline included, and the hash it carries,
// ignoring r.Hash. It marshals once: the line is the body with the hash spliced in.
func (r *Record) encodeLine() ([]byte, Hash, error) {
	if err := r.validate(); err != nil {
		return nil, Hash{}, err
	}
	body, err := r.encodeBody()
	if err != nil {
		return nil, Hash{}, err
	}
	h := hashBody(body)
	line := make([]byte, 0, len(body)+hashSuffixLen)
	line = append(line, body[:len(body)-1]...)
	line = append(line, `,"hash":"`...)
	line = hex.AppendEncode(line, h[:])
	line = append(line, "\"}\n"...)
	if len(line) > MaxRecordBytes {
		return nil, Hash{}, fmt.Errorf("%w: record %d is %d bytes, limit %d", ErrMalformed, r.Seq, len(line), MaxRecordBytes)
	}
	return line, h, nil
}

func hashBody(body []byte) Hash {
	h := sha256.New()
	h.Write([]byte(recordDomain))
	h.Write(body)
	var out Hash
	h.Sum(out[:0])
	return out
}

// Encode returns the canonical line for r, newline included. It checks the record's shape and
// size but not its hash: Log computes hashes, Verify checks them.
func (r *Record) Encode() ([]byte, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("audit: encode record %d: %w", r.Seq, err)
	}
	if len(b)+1 > MaxRecordBytes {
		return nil, fmt.Errorf("%w: record %d is %d bytes, limit %d", ErrMalformed, r.Seq, len(b)+1, MaxRecordBytes)
	}
	return append(b, '\n'), nil
}

// DecodeRecord parses one line (with or without its trailing newline) strictly: the line must be
// exactly the canonical encoding of a well-formed record. It does not check the hash.
func DecodeRecord(line []byte) (Record, error) {
	r, _, err := decodeLine(line)
	return r, err
}

// decodeLine is DecodeRecord that also returns the hash the record's contents call for, computed
// from the line itself: a canonical line minus its hash field is the hashed body.
func decodeLine(line []byte) (Record, Hash, error) {
	r, err := decodeStrict(line)
	if err != nil {
		return Record{}, Hash{}, err
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	body := make([]byte, 0, len(line)-hashSuffixLen+1)
	body = append(body, line[:len(line)-hashSuffixLen]...)
	return r, hashBody(append(body, '}')), nil
}

func decodeStrict(line []byte) (Record, error) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	if len(line)+1 > MaxRecordBytes {
		return Record{}, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformed, len(line)+1, MaxRecordBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var r Record
	if err := dec.Decode(&r); err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() || dec.InputOffset() != int64(len(line)) {
		return Record{}, fmt.Errorf("%w: trailing data after the record", ErrMalformed)
	}
	if err := r.validate(); err != nil {
		return Record{}, err
	}
	again, err := json.Marshal(&r)
	if err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if !bytes.Equal(again, line) {
		return Record{}, fmt.Errorf("%w: not in canonical form", ErrMalformed)
	}
	return r, nil
}

// validate checks what the JSON shape alone does not: one payload matching Kind, UTC times,
// strings in UTF-8 and every cap in limits.go.
func (r *Record) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: record %d: %s", ErrMalformed, r.Seq, fmt.Sprintf(format, args...))
	}
	if r.Seq == 0 {
		return bad("sequence numbers start at 1")
	}
	if err := checkTime(r.Time); err != nil {
		return bad("time: %v", err)
	}
	set := 0
	for _, p := range []bool{r.Decision != nil, r.Session != nil, r.Gap != nil, r.Checkpoint != nil} {
		if p {
			set++
		}
	}
	if set != 1 {
		return bad("want exactly one payload, got %d", set)
	}
	switch r.Kind {
	case KindDecision:
		if r.Decision == nil {
			return bad("kind %q without a decision", r.Kind)
		}
		return r.Decision.validate(bad)
	case KindSession:
		if r.Session == nil {
			return bad("kind %q without a session event", r.Kind)
		}
		return r.Session.validate(bad)
	case KindGap:
		if r.Gap == nil || r.Gap.Dropped == 0 {
			return bad("gap without a positive count")
		}
		if r.Gap.Invalid > r.Gap.Dropped {
			return bad("gap of %d entries, %d of them invalid", r.Gap.Dropped, r.Gap.Invalid)
		}
	case KindCheckpoint:
		c := r.Checkpoint
		if c == nil {
			return bad("kind %q without a checkpoint", r.Kind)
		}
		if c.Covers+1 != r.Seq || c.Head != r.Prev {
			return bad("checkpoint must cover the record just before it")
		}
		if len(c.Sig) == 0 || len(c.Sig) > MaxSignatureBytes {
			return bad("signature of %d bytes, want 1..%d", len(c.Sig), MaxSignatureBytes)
		}
	default:
		return bad("unknown kind %q", r.Kind)
	}
	return nil
}

func (d *Decision) validate(bad func(string, ...any) error) error {
	if err := checkTime(d.At); err != nil {
		return bad("decision time: %v", err)
	}
	if err := checkNames(d.Session, d.User, d.Resource, d.Outcome, d.Tier); err != nil {
		return bad("decision: %v", err)
	}
	if d.Session == "" || d.Outcome == "" || d.Tier == "" {
		return bad("decision needs session, outcome and tier")
	}
	if err := checkScore(d.Trust); err != nil {
		return bad("decision trust: %v", err)
	}
	if err := checkScore(d.Required); err != nil {
		return bad("decision required trust: %v", err)
	}
	return checkReasons(d.Reasons, bad)
}

func (e *SessionEvent) validate(bad func(string, ...any) error) error {
	if err := checkTime(e.At); err != nil {
		return bad("session event time: %v", err)
	}
	if err := checkNames(e.Session, e.User, e.Event, e.From, e.To); err != nil {
		return bad("session event: %v", err)
	}
	if e.Session == "" || e.Event == "" || e.From == "" || e.To == "" {
		return bad("session event needs session, event, from and to")
	}
	if err := checkScore(e.Trust); err != nil {
		return bad("session event trust: %v", err)
	}
	return checkReasons(e.Reasons, bad)
}

func checkReasons(rs []Reason, bad func(string, ...any) error) error {
	if len(rs) > MaxReasons {
		return bad("%d reasons, limit %d", len(rs), MaxReasons)
	}
	for i, r := range rs {
		if r.Signal == "" || len(r.Signal) > MaxNameBytes || len(r.Text) > MaxTextBytes {
			return bad("reason %d: signal must be 1..%d bytes and text at most %d", i, MaxNameBytes, MaxTextBytes)
		}
		if !utf8.ValidString(r.Signal) || !utf8.ValidString(r.Text) {
			return bad("reason %d: not valid UTF-8", i)
		}
		if math.IsNaN(r.Impact) || math.Abs(r.Impact) > MaxTrust {
			return bad("reason %d: impact %v outside [-%d, %d]", i, r.Impact, MaxTrust, MaxTrust)
		}
	}
	return nil
}

// checkNames checks names' lengths and that they are UTF-8: JSON would write invalid bytes as
// U+FFFD, so the line read back would not be the line hashed and signed, and the log would
// never verify again.
func checkNames(names ...string) error {
	for _, n := range names {
		if len(n) > MaxNameBytes {
			return fmt.Errorf("name of %d bytes, limit %d", len(n), MaxNameBytes)
		}
		if !utf8.ValidString(n) {
			return fmt.Errorf("name %q is not valid UTF-8", n)
		}
	}
	return nil
}

func checkScore(v float64) error {
	if !(v >= 0 && v <= MaxTrust) {
		return fmt.Errorf("%v outside [0, %d]", v, MaxTrust)
	}
	return nil
}

func checkTime(t time.Time) error {
	if _, off := t.Zone(); off != 0 || t.Location() != time.UTC {
		return fmt.Errorf("%s is not in UTC", t.Format(time.RFC3339Nano))
	}
	if t.Year() < 2000 || t.Year() > 9999 {
		return fmt.Errorf("year %d outside 2000..9999", t.Year())
	}
	return nil
}
