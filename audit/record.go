package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Kind names the payload a record carries.
type Kind string

// The record kinds.
const (
	KindDecision   Kind = "decision"   // an Authorize decision
	KindSession    Kind = "session"    // a change in a session's standing
	KindGap        Kind = "gap"        // decisions that could not be recorded
	KindCheckpoint Kind = "checkpoint" // a signature over the chain so far
)

// Hash is the SHA-256 hash of a record. It encodes as 64 lowercase hex digits.
type Hash [sha256.Size]byte

// String returns the hash in lowercase hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText implements encoding.TextMarshaler.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler. It accepts exactly 64 lowercase hex digits.
func (h *Hash) UnmarshalText(b []byte) error { return decodeHex(h[:], b) }

// KeyID names the key that signed a checkpoint: the first 16 bytes of SHA-256 over the encoded
// public key. It encodes as 32 lowercase hex digits.
type KeyID [16]byte

// String returns the key ID in lowercase hex.
func (k KeyID) String() string { return hex.EncodeToString(k[:]) }

// MarshalText implements encoding.TextMarshaler.
func (k KeyID) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler. It accepts exactly 32 lowercase hex digits.
func (k *KeyID) UnmarshalText(b []byte) error { return decodeHex(k[:], b) }

// KeyIDOf returns the key ID of an encoded public key.
func KeyIDOf(publicKey []byte) KeyID {
	sum := sha256.Sum256(publicKey)
	var id KeyID
	copy(id[:], sum[:])
	return id
}

func decodeHex(dst []byte, src []byte) error {
	if len(src) != 2*len(dst) {
		return fmt.Errorf("want %d hex digits, got %d", 2*len(dst), len(src))
	}
	for _, c := range src {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return fmt.Errorf("invalid hex digit %q (lowercase only)", c)
		}
	}
	_, err := hex.Decode(dst, src)
	return err
}

// Reason is one signal that contributed to a decision, in plain words.
type Reason struct {
	Signal string  `json:"signal"` // stable name, e.g. "impossible_travel"
	Impact float64 `json:"impact"` // trust points the signal moved; negative lowered trust
	Text   string  `json:"text"`   // plain words for people
}

// Decision is the payload of a KindDecision record: one answer of the session guard's Authorize.
type Decision struct {
	At       time.Time `json:"at"` // when the decision was made (UTC in the log)
	Session  string    `json:"session"`
	User     string    `json:"user,omitempty"`
	Resource string    `json:"resource"`
	Allow    bool      `json:"allow"`
	Outcome  string    `json:"outcome"`
	Tier     string    `json:"tier"`
	Trust    float64   `json:"trust"`
	Required float64   `json:"required,omitempty"` // the resource's minimum trust; absent if unknown
	Reasons  []Reason  `json:"reasons,omitempty"`
}

// SessionEvent is the payload of a KindSession record: a change in a session's standing.
type SessionEvent struct {
	At        time.Time `json:"at"`
	Session   string    `json:"session"`
	User      string    `json:"user,omitempty"`
	Event     string    `json:"event"` // e.g. "challenge_issued", "revoked", "feedback_genuine"
	From      string    `json:"from"`  // tier before
	To        string    `json:"to"`    // tier after
	Trust     float64   `json:"trust"`
	Challenge uint64    `json:"challenge,omitempty"`
	Reasons   []Reason  `json:"reasons,omitempty"`
}

// Gap is the payload of a KindGap record: Dropped decisions or session events were not recorded.
// Invalid of them were refused by the log format (a field it cannot hold, which the writer could
// not repair); the others were dropped because the queue in front of the log was full. The gap
// sits at about the place where they were lost; it makes the loss visible instead of silent.
type Gap struct {
	Dropped uint64 `json:"dropped"`
	Invalid uint64 `json:"invalid,omitempty"` // at most Dropped
}

// Checkpoint is the payload of a KindCheckpoint record: a signature by key Key over the sequence
// number Covers and hash Head of the record just before the checkpoint, and the checkpoint's time.
type Checkpoint struct {
	Covers uint64 `json:"covers"`
	Head   Hash   `json:"head"`
	Key    KeyID  `json:"key"`
	Sig    []byte `json:"sig"`
}

// Record is one line of the log. Exactly one of Decision, Session, Gap and Checkpoint is set,
// the one Kind names.
type Record struct {
	Seq        uint64        `json:"seq"` // 1 for the first record, then consecutive
	Time       time.Time     `json:"time"`
	Prev       Hash          `json:"prev"` // Hash of record Seq-1; zero for the first record
	Kind       Kind          `json:"kind"`
	Decision   *Decision     `json:"decision,omitempty"`
	Session    *SessionEvent `json:"session,omitempty"`
	Gap        *Gap          `json:"gap,omitempty"`
	Checkpoint *Checkpoint   `json:"checkpoint,omitempty"`
	Hash       Hash          `json:"hash"`
}

// Errors Verify and DecodeRecord report, to be checked with errors.Is.
var (
	ErrMalformed    = errors.New("audit: malformed record")
	ErrTampered     = errors.New("audit: record altered")
	ErrReordered    = errors.New("audit: record out of order")
	ErrMissing      = errors.New("audit: record missing")
	ErrTruncated    = errors.New("audit: log truncated")
	ErrBadSignature = errors.New("audit: checkpoint signature invalid")
)

// recordDomain and checkpointDomain separate the hashes and signatures of this format from
// any other use of the same bytes or key.
const (
	recordDomain     = "vigil/audit/record/v1\n"
	checkpointDomain = "vigil/audit/checkpoint/v1\n"
)

// ComputeHash returns the hash r should carry: SHA-256 over the record domain and the canonical
// encoding of r without its Hash.
func (r *Record) ComputeHash() (Hash, error) {
	body, err := r.encodeBody()
	if err != nil {
		return Hash{}, err
	}
	return hashBody(body), nil
}

// CheckpointMessage returns the bytes a checkpoint signs: the checkpoint domain, the covered
// sequence number and head hash, and the checkpoint time in Unix nanoseconds, integers big-endian.
func CheckpointMessage(covers uint64, head Hash, t time.Time) []byte {
	msg := make([]byte, 0, len(checkpointDomain)+8+len(head)+8)
	msg = append(msg, checkpointDomain...)
	msg = appendUint64(msg, covers)
	msg = append(msg, head[:]...)
	msg = appendUint64(msg, uint64(t.UnixNano()))
	return msg
}

func appendUint64(b []byte, v uint64) []byte {
	return append(b, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}
