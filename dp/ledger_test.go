package dp_test

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilauth/vigil/dp"
)

var (
	testBudget = dp.Budget{Epsilon: 2, Delta: 1e-6}
	roundEvent = dp.Event{SamplingRate: 0.01, NoiseMultiplier: 1.0, Steps: 1}
)

func TestLedgerChargesAndSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.ledger")
	l, err := dp.OpenLedger(path, "model/authnet", testBudget)
	if err != nil {
		t.Fatal(err)
	}
	if eps, _ := l.Spent(); eps != 0 {
		t.Fatalf("new ledger spent %v", eps)
	}
	const rounds = 6 // every charge fsyncs twice; keep the test quick on slow disks
	for r := uint64(1); r <= rounds; r++ {
		e, err := l.Charge(r, roundEvent)
		if err != nil {
			t.Fatal(err)
		}
		want, order, err := dp.Epsilon([]dp.Event{{SamplingRate: 0.01, NoiseMultiplier: 1.0, Steps: int(r)}}, testBudget.Delta, dp.Options{})
		if err != nil {
			t.Fatal(err)
		}
		// The ledger adds per-round RDP; Epsilon multiplies by T: equal to rounding.
		if math.Abs(e.Epsilon-want) > 1e-12*want || e.Order != order || e.Round != r {
			t.Fatalf("round %d: entry %+v, want epsilon %v at order %v", r, e, want, order)
		}
	}
	spent, _ := l.Spent()

	// Restart: a fresh process opens the same file and sees the same history.
	l2, err := dp.OpenLedger(path, "model/authnet", testBudget)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := l2.Spent(); got != spent || len(l2.Entries()) != rounds {
		t.Fatalf("after restart: spent %v (want %v), %d entries", got, spent, len(l2.Entries()))
	}
	// It keeps accounting from where it was.
	e, err := l2.Charge(rounds+1, roundEvent)
	if err != nil {
		t.Fatal(err)
	}
	want, _, _ := dp.Epsilon([]dp.Event{{SamplingRate: 0.01, NoiseMultiplier: 1.0, Steps: rounds + 1}}, testBudget.Delta, dp.Options{})
	if math.Abs(e.Epsilon-want) > 1e-12*want {
		t.Errorf("round %d after restart: %v, want %v", rounds+1, e.Epsilon, want)
	}
	// No temporary files are left behind.
	files, _ := os.ReadDir(filepath.Dir(path))
	if len(files) != 2 {
		t.Errorf("directory holds %d files, want only the ledger and its key", len(files))
	}
}

func TestLedgerRefusesOverBudget(t *testing.T) {
	path := filepath.Join(t.TempDir(), "device.ledger")
	l, err := dp.OpenLedger(path, "device/d-42", dp.Budget{Epsilon: 1, Delta: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	heavy := dp.Event{SamplingRate: 0.1, NoiseMultiplier: 2, Steps: 1} // 11 rounds fit in epsilon 1
	var round uint64
	for round = 1; ; round++ {
		if _, _, err := l.Check(heavy); err != nil {
			break
		}
		if _, err := l.Charge(round, heavy); err != nil {
			t.Fatalf("Check passed but Charge failed: %v", err)
		}
		if round > 1000 {
			t.Fatal("budget never exhausted")
		}
	}
	before, _ := os.ReadFile(path)
	_, err = l.Charge(round, heavy)
	var be *dp.BudgetError
	if !errors.Is(err, dp.ErrBudgetExhausted) || !errors.As(err, &be) {
		t.Fatalf("err = %v, want a *BudgetError", err)
	}
	spent, _ := l.Spent()
	if be.Round != round || be.Spent != spent || be.After <= 1 || be.Budget.Epsilon != 1 || be.Subject != "device/d-42" {
		t.Errorf("BudgetError %+v", be)
	}
	for _, s := range []string{"device/d-42", "round", "budget"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("message %q lacks %q", err, s)
		}
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) || len(l.Entries()) != int(round-1) {
		t.Error("a refused round changed the ledger")
	}
	if spent > 1 || l.Remaining() < 0 {
		t.Errorf("spent %v over the budget", spent)
	}
	t.Logf("budget 1 exhausted after %d rounds (spent %.4f, next round would reach %.4f)", round-1, spent, be.After)
}

func TestLedgerIdempotentAndConflicts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l")
	l, err := dp.OpenLedger(path, "model/x", testBudget)
	if err != nil {
		t.Fatal(err)
	}
	first, err := l.Charge(5, roundEvent)
	if err != nil {
		t.Fatal(err)
	}
	again, err := l.Charge(5, roundEvent)
	if err != nil || again != first || len(l.Entries()) != 1 {
		t.Fatalf("retried charge: %+v %v, %d entries", again, err, len(l.Entries()))
	}
	if _, err := l.Charge(5, dp.Event{SamplingRate: 0.02, NoiseMultiplier: 1, Steps: 1}); !errors.Is(err, dp.ErrRoundConflict) {
		t.Errorf("different event for round 5: %v", err)
	}
	if _, err := l.Charge(7, roundEvent); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Charge(6, roundEvent); !errors.Is(err, dp.ErrRoundConflict) {
		t.Errorf("older new round: %v", err)
	}
	if _, err := l.Charge(5, roundEvent); err != nil {
		t.Errorf("retry of an older recorded round: %v", err)
	}
	if _, err := l.Charge(8, dp.Event{SamplingRate: 0.01, NoiseMultiplier: 1, Steps: 0}); !errors.Is(err, dp.ErrInvalidParameter) {
		t.Errorf("zero steps: %v", err)
	}
}

func TestLedgerRejectsForeignAndCorruptFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.ledger")
	l, err := dp.OpenLedger(path, "model/a", testBudget)
	if err != nil {
		t.Fatal(err)
	}
	for r := uint64(1); r <= 3; r++ {
		if _, err := l.Charge(r, roundEvent); err != nil {
			t.Fatal(err)
		}
	}
	good, _ := os.ReadFile(path)

	if _, err := dp.OpenLedger(path, "model/b", testBudget); !errors.Is(err, dp.ErrLedgerMismatch) || !strings.Contains(err.Error(), `"model/a"`) {
		t.Errorf("other model: %v", err)
	}
	if _, err := dp.OpenLedger(path, "model/a", dp.Budget{Epsilon: 3, Delta: 1e-6}); !errors.Is(err, dp.ErrLedgerMismatch) {
		t.Errorf("other budget: %v", err)
	}

	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flipped := append([]byte(nil), good...)
	i := bytes.Index(flipped, []byte(`"noise_multiplier":1`))
	flipped[i+len(`"noise_multiplier":`)] = '2'
	cases := map[string][]byte{
		"empty":         {},
		"truncated":     good[:len(good)/2],
		"no newline":    good[:len(good)-1],
		"flipped value": flipped,
		"reindented":    bytes.Replace(good, []byte(`,"subject"`), []byte(`, "subject"`), 1),
		"trailing data": append(append([]byte(nil), good...), '{', '}', '\n'),
		"not json":      []byte("hello\n"),
	}
	for name, data := range cases {
		p := write(strings.ReplaceAll(name, " ", "_"), data)
		_, err := dp.OpenLedger(p, "model/a", testBudget)
		if !errors.Is(err, dp.ErrLedgerCorrupt) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: err = %v, want ErrLedgerCorrupt naming the file", name, err)
		}
		if _, err := dp.ReadLedger(p); !errors.Is(err, dp.ErrLedgerCorrupt) {
			t.Errorf("%s: ReadLedger err = %v", name, err)
		}
	}
}

// TestLedgerRecomputesEpsilon: a file whose MAC is valid but whose
// recorded epsilon does not follow from its entries is corrupt.
func TestLedgerRecomputesEpsilon(t *testing.T) {
	snap := &dp.LedgerSnapshot{Subject: "model/a", Budget: testBudget, Entries: []dp.LedgerEntry{
		{Round: 1, Mechanism: "poisson-hidden", SamplingRate: 0.01, NoiseMultiplier: 1, Steps: 1, Epsilon: 0.001, Order: 63},
	}}
	key := bytes.Repeat([]byte{1}, dp.LedgerKeySize)
	data, err := snap.Encode(key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dp.DecodeLedger(data, key); !errors.Is(err, dp.ErrLedgerCorrupt) || !strings.Contains(err.Error(), "recorded epsilon") {
		t.Errorf("err = %v", err)
	}
}

func TestLedgerBadArguments(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		subject string
		budget  dp.Budget
	}{
		{"", testBudget},
		{"model\n", testBudget},
		{strings.Repeat("m", dp.MaxSubjectLen+1), testBudget},
		{"model/a", dp.Budget{Epsilon: 0, Delta: 1e-6}},
		{"model/a", dp.Budget{Epsilon: 1, Delta: 1}},
	} {
		if _, err := dp.OpenLedger(filepath.Join(dir, "x"), tc.subject, tc.budget); !errors.Is(err, dp.ErrInvalidParameter) {
			t.Errorf("%q %+v: err = %v", tc.subject, tc.budget, err)
		}
	}
	if _, err := dp.OpenLedger(filepath.Join(dir, "missing-dir", "x"), "model/a", testBudget); err == nil {
		t.Error("unwritable path accepted")
	}
}

// TestLedgerChargeFailsCleanly: when the write fails, Charge reports it and
// the in-memory ledger is unchanged, so a retry after the disk recovers
// charges the round exactly once.
func TestLedgerChargeFailsCleanly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "model.ledger")
	l, err := dp.OpenLedger(path, "model/a", testBudget)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Charge(1, roundEvent); err != nil {
		t.Fatal(err)
	}
	spent, _ := l.Spent()
	key, err := os.ReadFile(dp.LedgerKeyPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Charge(2, roundEvent); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("charge on a vanished directory: %v", err)
	}
	if got, _ := l.Spent(); got != spent || len(l.Entries()) != 1 {
		t.Fatalf("failed charge changed the ledger: spent %v, %d entries", got, len(l.Entries()))
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dp.LedgerKeyPath(path), key, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Charge(2, roundEvent); err != nil {
		t.Fatal(err)
	}
	reopened, err := dp.OpenLedger(path, "model/a", testBudget)
	if err != nil || len(reopened.Entries()) != 2 {
		t.Fatalf("reopened: %v", err)
	}
}
