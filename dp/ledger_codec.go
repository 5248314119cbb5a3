package dp

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"unicode"
	"unicode/utf8"
)

// LedgerFormat identifies the ledger file format.
const LedgerFormat = "vigil-privacy-ledger/v1"

// LedgerAccounting names the accounting every ledger uses: RDP of the
// Poisson-subsampled Gaussian at dp_accounting's 156 default orders, the
// conservative series and the improved conversion. A file written under
// another accounting is rejected with ErrLedgerMismatch.
const LedgerAccounting = "rdp-poisson-subsampled-gaussian; orders=dp_accounting-default-156; series=bound; conversion=improved"

// LedgerEntry records one charged round.
type LedgerEntry struct {
	Round           uint64  `json:"round"`
	SamplingRate    float64 `json:"sampling_rate"`
	NoiseMultiplier float64 `json:"noise_multiplier"`
	Steps           int     `json:"steps"`
	// Epsilon is the subject's total epsilon after this round, at the
	// budget's delta, and Order the RDP order that gives it.
	Epsilon float64 `json:"epsilon"`
	Order   float64 `json:"order"`
}

// Event returns the event the entry charged.
func (e LedgerEntry) Event() Event {
	return Event{SamplingRate: e.SamplingRate, NoiseMultiplier: e.NoiseMultiplier, Steps: e.Steps}
}

// LedgerSnapshot is the content of a ledger file, validated.
type LedgerSnapshot struct {
	Subject string
	Budget  Budget
	Entries []LedgerEntry
}

// Spent returns the epsilon recorded after the last round (0 with no rounds)
// and its order.
func (s *LedgerSnapshot) Spent() (eps, order float64) {
	if len(s.Entries) == 0 {
		return 0, 0
	}
	last := s.Entries[len(s.Entries)-1]
	return last.Epsilon, last.Order
}

// ledgerBody is what the checksum covers: everything but the checksum.
type ledgerBody struct {
	Format     string        `json:"format"`
	Subject    string        `json:"subject"`
	Budget     Budget        `json:"budget"`
	Accounting string        `json:"accounting"`
	Entries    []LedgerEntry `json:"entries"`
}

type ledgerFile struct {
	ledgerBody
	Checksum string `json:"checksum"`
}

func checksum(body ledgerBody) (string, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// Encode returns the canonical file encoding of the snapshot: compact JSON
// with fields in a fixed order, shortest round-trip numbers, a SHA-256
// checksum of the body, and a final newline. It does not validate the
// snapshot; DecodeLedger does.
func (s *LedgerSnapshot) Encode() ([]byte, error) {
	body := ledgerBody{Format: LedgerFormat, Subject: s.Subject, Budget: s.Budget, Accounting: LedgerAccounting, Entries: s.Entries}
	if body.Entries == nil {
		body.Entries = []LedgerEntry{}
	}
	return encodeFile(body)
}

func encodeFile(body ledgerBody) ([]byte, error) {
	sum, err := checksum(body)
	if err != nil {
		return nil, fmt.Errorf("dp: encoding ledger: %w", err)
	}
	b, err := json.Marshal(ledgerFile{ledgerBody: body, Checksum: sum})
	if err != nil {
		return nil, fmt.Errorf("dp: encoding ledger: %w", err)
	}
	return append(b, '\n'), nil
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrLedgerCorrupt}, args...)...)
}

// DecodeLedger parses and validates a ledger file. It accepts only the
// canonical encoding that Encode produces (any other spelling of the same
// JSON is rejected), checks the checksum, the format and accounting
// identifiers, the budget, the entries (strictly increasing rounds, valid
// events), and recomputes every recorded epsilon from the entries.
// Failures wrap ErrLedgerCorrupt, or ErrLedgerMismatch for a file written
// under another accounting method.
func DecodeLedger(data []byte) (*LedgerSnapshot, error) {
	s, _, err := decodeLedger(data)
	return s, err
}

// decodeLedger is DecodeLedger, also returning an Accountant holding the
// RDP of all entries.
func decodeLedger(data []byte) (*LedgerSnapshot, *Accountant, error) {
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
	canon, err := encodeFileWithChecksum(f)
	if err != nil || !bytes.Equal(canon, data) {
		return nil, nil, corrupt("not in canonical form (edited by hand?)")
	}
	want, err := checksum(f.ledgerBody)
	if err != nil || want != f.Checksum {
		return nil, nil, corrupt("checksum mismatch: recorded %q, content hashes to %q", f.Checksum, want)
	}
	return validateBody(f.ledgerBody)
}

// encodeFileWithChecksum re-encodes a decoded file with its recorded
// checksum, for the canonical-form comparison.
func encodeFileWithChecksum(f ledgerFile) ([]byte, error) {
	if f.Entries == nil {
		return nil, fmt.Errorf("entries missing")
	}
	b, err := json.Marshal(f)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
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
	for i, e := range b.Entries {
		if i > 0 && e.Round <= b.Entries[i-1].Round {
			return nil, nil, corrupt("entry %d: round %d does not follow round %d", i+1, e.Round, b.Entries[i-1].Round)
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
		if err := checkRecorded(acc, b.Budget.Delta, e); err != nil {
			return nil, nil, corrupt("entry %d (round %d): %v", i+1, e.Round, err)
		}
		if e.Epsilon > b.Budget.Epsilon {
			return nil, nil, corrupt("entry %d (round %d): epsilon %g exceeds the budget %g", i+1, e.Round, e.Epsilon, b.Budget.Epsilon)
		}
	}
	return &LedgerSnapshot{Subject: b.Subject, Budget: b.Budget, Entries: b.Entries}, acc, nil
}

// recomputeTolerance is the relative difference allowed between a recorded
// epsilon and its recomputation (floating-point contraction differs
// between CPU architectures).
const recomputeTolerance = 1e-9

// checkRecorded verifies that the entry's epsilon is the minimum over the
// orders and that its order attains it, within recomputeTolerance.
func checkRecorded(acc *Accountant, delta float64, e LedgerEntry) error {
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
	if e.Epsilon == 0 && e.Order == 0 {
		return nil
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
