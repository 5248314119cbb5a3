package dp

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"
	"unicode"
	"unicode/utf8"
)

// LedgerFormat identifies the ledger file format.
const LedgerFormat = "vigil-privacy-ledger/v2"

// LedgerAccounting names the accounting every ledger uses: RDP at
// dp_accounting's 156 default orders, the conservative series and the
// improved conversion; each entry names its mechanism (see Mechanism). A
// file written under another accounting is rejected with ErrLedgerMismatch.
const LedgerAccounting = "rdp; orders=dp_accounting-default-156; series=bound; conversion=improved"

// MechanismNone is the mechanism recorded for a round released without
// differential privacy: its privacy loss is unbounded.
const MechanismNone = "none"

// LedgerEntry records one round. The fields from ClipNorm to Participants
// are the round's privacy parameters as the coordinator fixed them before
// asking any device (zero in a device's ledger, which charges only the
// event); Time is when it was charged and ModelSHA256 the SHA-256 of the
// parameters the round released, once known.
type LedgerEntry struct {
	Round            uint64  `json:"round"`
	Mechanism        string  `json:"mechanism"`
	SamplingRate     float64 `json:"sampling_rate"`
	NoiseMultiplier  float64 `json:"noise_multiplier"`
	Steps            int     `json:"steps"`
	ClipNorm         float64 `json:"clip_norm"`
	MinParticipants  int     `json:"min_participants"`
	ToleratedDevices int     `json:"tolerated_devices"`
	Participants     int     `json:"participants"`
	Time             string  `json:"time"`
	ModelSHA256      string  `json:"model_sha256"`
	// Epsilon is the subject's total epsilon after this round over its
	// differentially private rounds, at the budget's delta, and Order the
	// RDP order that gives it (both 0 before the first private round).
	Epsilon float64 `json:"epsilon"`
	Order   float64 `json:"order"`
}

// Private reports whether the round was differentially private.
func (e LedgerEntry) Private() bool { return e.Mechanism != MechanismNone }

// Event returns the event the entry charged (the zero Event for a round
// without differential privacy).
func (e LedgerEntry) Event() Event {
	if !e.Private() {
		return Event{}
	}
	m, err := ParseMechanism(e.Mechanism)
	if err != nil {
		m = -1 // invalid: Validate refuses it
	}
	return Event{SamplingRate: e.SamplingRate, NoiseMultiplier: e.NoiseMultiplier, Steps: e.Steps, Mechanism: m}
}

// LedgerSnapshot is the content of a ledger file, validated.
type LedgerSnapshot struct {
	Subject string
	Budget  Budget
	Entries []LedgerEntry
}

// Spent returns the epsilon recorded after the last round (0 with no rounds)
// and its order. It counts the private rounds only: see Unprotected.
func (s *LedgerSnapshot) Spent() (eps, order float64) {
	if len(s.Entries) == 0 {
		return 0, 0
	}
	last := s.Entries[len(s.Entries)-1]
	return last.Epsilon, last.Order
}

// Unprotected returns the rounds released without differential privacy.
// If there is one, the subject's privacy loss is unbounded whatever Spent says.
func (s *LedgerSnapshot) Unprotected() []uint64 {
	var r []uint64
	for _, e := range s.Entries {
		if !e.Private() {
			r = append(r, e.Round)
		}
	}
	return r
}

// ledgerBody is what the MAC covers: everything but the MAC.
type ledgerBody struct {
	Format     string        `json:"format"`
	Subject    string        `json:"subject"`
	Budget     Budget        `json:"budget"`
	Accounting string        `json:"accounting"`
	Entries    []LedgerEntry `json:"entries"`
}

type ledgerFile struct {
	ledgerBody
	MAC string `json:"mac"`
}

// LedgerKeySize is the size of a ledger's MAC key.
const LedgerKeySize = 32

// mac is HMAC-SHA256 under the ledger's key: a plain hash would let anyone
// who edits the file recompute it, a keyed one only whoever holds the key.
func mac(body ledgerBody, key []byte) (string, error) {
	if len(key) != LedgerKeySize {
		return "", fmt.Errorf("ledger key of %d bytes, want %d", len(key), LedgerKeySize)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return "", err
	}
	h := hmac.New(sha256.New, key)
	h.Write(b)
	return "hmac-sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// Encode returns the canonical file encoding of the snapshot: compact JSON
// with fields in a fixed order, shortest round-trip numbers, an
// HMAC-SHA256 of the body under key, and a final newline. It does not
// validate the snapshot; DecodeLedger does.
func (s *LedgerSnapshot) Encode(key []byte) ([]byte, error) {
	body := ledgerBody{Format: LedgerFormat, Subject: s.Subject, Budget: s.Budget, Accounting: LedgerAccounting, Entries: s.Entries}
	if body.Entries == nil {
		body.Entries = []LedgerEntry{}
	}
	sum, err := mac(body, key)
	if err != nil {
		return nil, fmt.Errorf("dp: encoding ledger: %w", err)
	}
	b, err := json.Marshal(ledgerFile{ledgerBody: body, MAC: sum})
	if err != nil {
		return nil, fmt.Errorf("dp: encoding ledger: %w", err)
	}
	return append(b, '\n'), nil
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrLedgerCorrupt}, args...)...)
}

// DecodeLedger parses and validates a ledger file under its MAC key. It
// accepts only the canonical encoding that Encode produces (any other
// spelling of the same JSON is rejected), checks the MAC, the format and
// accounting identifiers, the budget, the entries (strictly increasing
// rounds, valid events and parameters, no private round after an
// unprotected one), and recomputes every recorded epsilon from the
// entries. Failures wrap ErrLedgerCorrupt, or ErrLedgerMismatch for a file
// written under another accounting method.
func DecodeLedger(data, key []byte) (*LedgerSnapshot, error) {
	s, _, err := decodeLedger(data, key)
	return s, err
}

// decodeLedger is DecodeLedger, also returning an Accountant holding the
// RDP of all entries.
func decodeLedger(data, key []byte) (*LedgerSnapshot, *Accountant, error) {
	if len(data) > MaxLedgerBytes {
		return nil, nil, corrupt("%d bytes, over the cap of %d", len(data), MaxLedgerBytes)
	}
	if len(data) == 0 || data[len(data)-1] != '\n' {
		return nil, nil, corrupt("file does not end with a newline (truncated?)")
	}
	dec := json.NewDecoder(bytes.NewReader(data[:len(data)-1]))
	dec.DisallowUnknownFields()
	var f ledgerFile
	if err := dec.Decode(&f); err != nil {
		return nil, nil, corrupt("%v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, corrupt("trailing data after the ledger object")
	}
	if f.Entries == nil {
		return nil, nil, corrupt("entries missing")
	}
	canon, err := json.Marshal(f)
	if err != nil || !bytes.Equal(append(canon, '\n'), data) {
		return nil, nil, corrupt("not in canonical form (edited by hand?)")
	}
	want, err := mac(f.ledgerBody, key)
	if err != nil {
		return nil, nil, corrupt("%v", err)
	}
	if !hmac.Equal([]byte(want), []byte(f.MAC)) {
		return nil, nil, corrupt("MAC mismatch: the file was changed by someone without its key, or the key is not this ledger's")
	}
	return validateBody(f.ledgerBody)
}

// validateBody checks the semantics of a body whose bytes are intact, and
// returns an Accountant holding the RDP of its entries. Rounds usually
// repeat one event, so RDP curves are computed once per distinct event.
func validateBody(b ledgerBody) (*LedgerSnapshot, *Accountant, error) {
	if b.Format != LedgerFormat {
		return nil, nil, corrupt("format %q, want %q", b.Format, LedgerFormat)
	}
	if b.Accounting != LedgerAccounting {
		return nil, nil, fmt.Errorf("%w: ledger accounts with %q, this build with %q", ErrLedgerMismatch, b.Accounting, LedgerAccounting)
	}
	if err := validateSubject(b.Subject); err != nil {
		return nil, nil, corrupt("%v", err)
	}
	if err := b.Budget.Validate(); err != nil {
		return nil, nil, corrupt("budget: %v", err)
	}
	if len(b.Entries) > MaxLedgerEntries {
		return nil, nil, corrupt("%d entries, over the cap of %d", len(b.Entries), MaxLedgerEntries)
	}
	acc, err := NewAccountant(Options{})
	if err != nil {
		return nil, nil, err
	}
	curves := map[Event][]float64{}
	private, unprotected := false, false
	for i, e := range b.Entries {
		if i > 0 && e.Round <= b.Entries[i-1].Round {
			return nil, nil, corrupt("entry %d: round %d does not follow round %d", i+1, e.Round, b.Entries[i-1].Round)
		}
		if err := validateDetails(e); err != nil {
			return nil, nil, corrupt("entry %d (round %d): %v", i+1, e.Round, err)
		}
		if !e.Private() {
			unprotected = true
		} else {
			if unprotected {
				return nil, nil, corrupt("entry %d (round %d): a private round after a round without differential privacy", i+1, e.Round)
			}
			if err := validateChargeEvent(e.Event()); err != nil {
				return nil, nil, corrupt("entry %d (round %d): %v", i+1, e.Round, err)
			}
			r, ok := curves[e.Event()]
			if !ok {
				if r, err = RDP(e.Event(), acc.opts.Orders, acc.opts.Series); err != nil {
					return nil, nil, corrupt("entry %d (round %d): %v", i+1, e.Round, err)
				}
				curves[e.Event()] = r
			}
			acc.add(r)
			private = true
		}
		if err := checkRecorded(acc, private, b.Budget.Delta, e); err != nil {
			return nil, nil, corrupt("entry %d (round %d): %v", i+1, e.Round, err)
		}
		if e.Epsilon > b.Budget.Epsilon {
			return nil, nil, corrupt("entry %d (round %d): epsilon %g exceeds the budget %g", i+1, e.Round, e.Epsilon, b.Budget.Epsilon)
		}
	}
	return &LedgerSnapshot{Subject: b.Subject, Budget: b.Budget, Entries: b.Entries}, acc, nil
}

// validateDetails checks an entry's round parameters, time and model hash.
// All-zero parameters are a device's entry, which records the event only.
func validateDetails(e LedgerEntry) error {
	if !e.Private() && (e.SamplingRate != 0 || e.NoiseMultiplier != 0 || e.Steps != 0) {
		return fmt.Errorf("a round without differential privacy records an event")
	}
	if m, err := ParseMechanism(e.Mechanism); e.Private() && (err != nil || m.String() != e.Mechanism) {
		return fmt.Errorf("mechanism %q is not one this build accounts", e.Mechanism)
	}
	device := e.ClipNorm == 0 && e.MinParticipants == 0 && e.ToleratedDevices == 0 && e.Participants == 0
	if !device {
		switch {
		case !(e.ClipNorm > 0 || (!e.Private() && e.ClipNorm == 0)) || math.IsInf(e.ClipNorm, 1):
			return fmt.Errorf("clip norm %v", e.ClipNorm)
		case e.MinParticipants < 1:
			return fmt.Errorf("m_min %d", e.MinParticipants)
		case e.ToleratedDevices < 0 || e.ToleratedDevices >= e.MinParticipants:
			return fmt.Errorf("t_dev %d not in [0, m_min = %d)", e.ToleratedDevices, e.MinParticipants)
		case e.Participants < 0:
			return fmt.Errorf("%d participants", e.Participants)
		case e.Participants < e.MinParticipants && e.ModelSHA256 != "":
			// A round of fewer is charged when it fails (whether it fails depends on who
			// answered), but can have released nothing.
			return fmt.Errorf("%d participants, fewer than m_min %d, released a model", e.Participants, e.MinParticipants)
		}
	}
	if e.Time != "" {
		t, err := time.Parse(time.RFC3339, e.Time)
		if err != nil || t.UTC().Format(time.RFC3339) != e.Time {
			return fmt.Errorf("time %q is not RFC 3339 UTC to the second", e.Time)
		}
	}
	if e.ModelSHA256 != "" {
		if b, err := hex.DecodeString(e.ModelSHA256); err != nil || len(b) != sha256.Size || hex.EncodeToString(b) != e.ModelSHA256 {
			return fmt.Errorf("model SHA-256 %q is not 64 lower-case hex digits", e.ModelSHA256)
		}
	}
	return nil
}

// recomputeTolerance is the relative difference allowed between a recorded
// epsilon and its recomputation (floating-point contraction differs
// between CPU architectures).
const recomputeTolerance = 1e-9

// checkRecorded verifies that the entry's epsilon is the minimum over the
// orders and that its order attains it, within recomputeTolerance. Before
// the first private round both must be 0.
func checkRecorded(acc *Accountant, private bool, delta float64, e LedgerEntry) error {
	if !private {
		if e.Epsilon != 0 || e.Order != 0 {
			return fmt.Errorf("epsilon %v at order %v recorded before any private round", e.Epsilon, e.Order)
		}
		return nil
	}
	eps, _, err := acc.Epsilon(delta)
	if err != nil {
		return err
	}
	if !closeRel(e.Epsilon, eps) {
		return fmt.Errorf("recorded epsilon %v, entries give %v", e.Epsilon, eps)
	}
	rdp := acc.rdp
	for i, a := range acc.opts.Orders {
		if a == e.Order {
			at, _, err := EpsilonFromRDP([]float64{a}, rdp[i:i+1], delta, acc.opts.Conversion)
			if err != nil || !closeRel(at, e.Epsilon) {
				return fmt.Errorf("recorded order %v does not give the recorded epsilon %v", e.Order, e.Epsilon)
			}
			return nil
		}
	}
	return fmt.Errorf("recorded order %v is not an accounting order", e.Order)
}

func closeRel(a, b float64) bool {
	return math.Abs(a-b) <= recomputeTolerance*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

// validateSubject accepts 1..MaxSubjectLen bytes of printable UTF-8.
func validateSubject(s string) error {
	if s == "" || len(s) > MaxSubjectLen || !utf8.ValidString(s) {
		return paramErr("ledger subject", fmt.Sprintf("%q", s), fmt.Sprintf("1 to %d bytes of UTF-8", MaxSubjectLen))
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return paramErr("ledger subject", fmt.Sprintf("%q", s), "printable characters only")
		}
	}
	return nil
}
