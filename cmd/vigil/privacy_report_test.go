package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/dp"
)

// TestPrivacyOnByDefault is issue 12's item 4: turning differential privacy off takes
// --insecure-no-dp; a zero noise multiplier is refused with a message saying so.
func TestPrivacyOnByDefault(t *testing.T) {
	for _, args := range [][]string{
		{"coordinator", "--org", t.TempDir(), "--noise-multiplier", "0"},
		{"coordinator", "--org", t.TempDir(), "--insecure-no-dp", "--noise-multiplier", "1"},
		{"client", "--device-id", "d", "--synthetic-seed", "1", "--root", "x", "--min-noise-multiplier", "0"},
		{"demo", "--noise-multiplier", "0"},
	} {
		err := run(context.Background(), args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "insecure-no-dp") {
			t.Errorf("%v: %v, want a refusal naming --insecure-no-dp", args, err)
		}
	}
}

// TestPrivacyCurveIsCapped is issue 12's attack 8: `privacy curve --rounds 1e8` used 811 MB for
// five minutes and ignored SIGTERM. The rounds are capped before any work, and a cancelled
// context stops the command.
func TestPrivacyCurveIsCapped(t *testing.T) {
	args := []string{"privacy", "curve", "--sampling-rate", "0.01", "--delta", "1e-5", "--noise-multipliers", "1"}
	start := time.Now()
	err := run(context.Background(), append(args, "--rounds", "100000000"), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--rounds") || time.Since(start) > time.Second {
		t.Fatalf("1e8 rounds: %v after %v, want a quick refusal naming --rounds", err, time.Since(start))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := run(ctx, append(args, "--rounds", "1000"), io.Discard, io.Discard); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	start = time.Now()
	if err := run(context.Background(), append(args, "--rounds", "100000"), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	t.Logf("a curve of the maximum %d rounds: %v", dp.MaxCurveRounds, time.Since(start))
}

// writeTestLedger writes dir/state/model.ledger for keystroke-ae with the given budget and rounds.
func writeTestLedger(t *testing.T, dir string, budget dp.Budget, charges ...dp.RoundCharge) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	l, err := dp.OpenLedger(filepath.Join(dir, "state", "model.ledger"), "keystroke-ae", budget)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range charges {
		if _, err := l.ChargeRound(c); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPrivacyReportWarns is issue 12's item 9: a reviewer is told when delta is not small
// against the population (delta 0.01 with N = 1000 was accepted silently), when the budget is
// almost spent, and when differential privacy was off at any point.
func TestPrivacyReportWarns(t *testing.T) {
	dir := t.TempDir()
	round := func(r uint64, z float64) dp.RoundCharge {
		return dp.RoundCharge{Round: r, Event: dp.Event{SamplingRate: 0.5, NoiseMultiplier: z, Steps: 1, Mechanism: dp.KnownParticipation},
			ClipNorm: 1, MinParticipants: 10, ToleratedDevices: 1, Participants: 12, Time: time.Now()}
	}
	one, _, err := dp.Epsilon([]dp.Event{round(1, 2).Event}, 0.01, dp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	writeTestLedger(t, dir, dp.Budget{Epsilon: 1.05 * one, Delta: 0.01}, round(1, 2), dp.RoundCharge{Round: 2, Unprotected: true, ClipNorm: 1, MinParticipants: 10, Participants: 10})
	var out bytes.Buffer
	if err := run(context.Background(), []string{"privacy", "report", "--dir", dir, "--population", "1000", "--json"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var rep privacyReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	all := strings.Join(rep.Warnings, "\n")
	for _, want := range []string{"exceeds 1/N", "OFF in round(s) [2]", "budget almost spent"} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings lack %q:\n%s", want, all)
		}
	}
	if len(rep.Models) != 1 || len(rep.Models[0].Rounds) != 2 || rep.Models[0].Rounds[0].ToleratedDevices != 1 || rep.Adjacency == "" {
		t.Fatalf("report %+v", rep)
	}
	// In text, a round without noise leaves no epsilon to print: it once said "spent epsilon
	// 0 of 1", the placeholder budget of a ledger begun without differential privacy.
	out.Reset()
	if err := run(context.Background(), []string{"privacy", "report", "--dir", dir, "--population", "1000"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if text := out.String(); !strings.Contains(text, "privacy loss unbounded: differential privacy was off in 1 of 2 rounds") ||
		!strings.Contains(text, "composed across 1 model(s): unbounded") || strings.Contains(text, "spent epsilon") {
		t.Errorf("text report claims an epsilon for rounds without noise:\n%s", text)
	}
}

// TestPrivacyReportOnDemo runs the demo with its defaults (differential privacy on, device
// ledgers) and reviews its state directory: JSON, text, and a signed HTML page.
func TestPrivacyReportOnDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo")
	}
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"demo", "--devices", "4", "--rounds", "2", "--dir", dir}, &stdout, &stderr); err != nil {
		t.Fatalf("demo: %v\n%s", err, stderr.String())
	}
	for _, want := range []string{"privacy ledger is " + filepath.Join(dir, "state", "model.ledger"), "privacy report", "tolerating t_dev = 1"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, stdout.String())
		}
	}
	devLedgers, _ := filepath.Glob(filepath.Join(dir, "devices", "*", "privacy.ledger"))
	if len(devLedgers) != 4 {
		t.Errorf("%d device ledgers, want 4", len(devLedgers))
	}

	var out bytes.Buffer
	if err := run(context.Background(), []string{"privacy", "report", "--dir", dir, "--json"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var rep privacyReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Models) != 1 || rep.Population != 4 {
		t.Fatalf("report %+v", rep)
	}
	m := rep.Models[0]
	// Four devices are too few for a population round at z = 2: the two training rounds.
	if len(m.Rounds) != 2 || m.Spent <= 0 || rep.Composed.Epsilon != m.Spent {
		t.Fatalf("model report %+v, composed %+v", m, rep.Composed)
	}
	for _, r := range m.Rounds {
		if r.Mechanism != "known-participation" || r.Store != "matches the store" || r.ToleratedDevices != 1 || r.NoiseMultiplier != 2 || r.Participants < 2 {
			t.Errorf("round %+v", r)
		}
	}

	key, err := sig.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	keyPath, pubPath, html := filepath.Join(t.TempDir(), "reviewer.key"), filepath.Join(t.TempDir(), "reviewer.pub"), filepath.Join(t.TempDir(), "report.html")
	if err := sig.WritePrivateKeyFile(keyPath, key); err != nil {
		t.Fatal(err)
	}
	if err := sig.WritePublicKeyFile(pubPath, key.Public()); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"privacy", "report", "--dir", dir, "--html", html, "--sign-key", keyPath}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"privacy", "verify-report", "--html", html, "--public-key", pubPath}, io.Discard, io.Discard); err != nil {
		t.Fatalf("signed report does not verify: %v", err)
	}
	page, _ := os.ReadFile(html)
	if err := os.WriteFile(html, bytes.Replace(page, []byte("epsilon"), []byte("epsilom"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"privacy", "verify-report", "--html", html, "--public-key", pubPath}, io.Discard, io.Discard); !errors.Is(err, sig.ErrBadSignature) || exitCodeOf(err) != 1 {
		t.Fatalf("edited report: %v (exit %d), want ErrBadSignature and exit 1", err, exitCodeOf(err))
	}
}

// TestSharesByModel: the report breaks a ledger down by the model each round released, each
// model's rounds composed alone; a model with a round without differential privacy is
// unbounded, and a round that released nothing is named so.
func TestSharesByModel(t *testing.T) {
	entry := func(round uint64, z, q float64) dp.LedgerEntry {
		return dp.LedgerEntry{Round: round, Mechanism: dp.KnownParticipation.String(), SamplingRate: q, NoiseMultiplier: z, Steps: 1}
	}
	rounds := []roundReport{
		{LedgerEntry: entry(1, 2, 1), Model: "keystroke-population"},
		{LedgerEntry: entry(2, 2, 0.25), Model: "keystroke-ae"},
		{LedgerEntry: entry(3, 2, 0.25), Model: "keystroke-ae"},
		{LedgerEntry: entry(4, 2, 0.25)},
		{LedgerEntry: dp.LedgerEntry{Round: 5, Mechanism: dp.MechanismNone}, Model: "keystroke-mouse"},
		{LedgerEntry: dp.LedgerEntry{Round: 6, Mechanism: dp.MechanismNone}, Model: "keystroke-ae"},
	}
	got, err := sharesByModel(rounds, 1e-5, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		model     string
		rounds    int
		events    []dp.Event
		unbounded bool
	}{
		{"keystroke-population", 1, []dp.Event{rounds[0].Event()}, false},
		{"keystroke-ae", 3, nil, true},
		{"not released", 1, []dp.Event{rounds[3].Event()}, false},
		{"keystroke-mouse", 1, nil, true},
	}
	if len(got) != len(want) {
		t.Fatalf("shares %+v, want %d", got, len(want))
	}
	for i, w := range want {
		eps := 0.0
		if !w.unbounded {
			if eps, _, err = dp.Epsilon(w.events, 1e-5, dp.Options{}); err != nil {
				t.Fatal(err)
			}
		}
		if got[i].Model != w.model || got[i].Rounds != w.rounds || got[i].Unbounded != w.unbounded || got[i].Epsilon != eps {
			t.Errorf("share %d: %+v, want %s over %d rounds at epsilon %v, unbounded %v", i, got[i], w.model, w.rounds, eps, w.unbounded)
		}
	}
}

// TestPrivacyReportUnboundedEverywhere: once a round had no differential privacy, every output
// says the loss is unbounded, as the text report does. The signed HTML page said "spent 0,
// remaining 1" (the placeholder budget of a ledger begun without differential privacy) and
// composed a finite epsilon over the private rounds; the JSON had no marker, and `privacy
// ledger` ended with "spent epsilon ... remaining".
func TestPrivacyReportUnboundedEverywhere(t *testing.T) {
	dir := t.TempDir()
	private := dp.RoundCharge{Round: 1, Event: dp.Event{SamplingRate: 0.5, NoiseMultiplier: 2, Steps: 1, Mechanism: dp.KnownParticipation},
		ClipNorm: 1, MinParticipants: 10, ToleratedDevices: 1, Participants: 12}
	writeTestLedger(t, dir, dp.Budget{Epsilon: 10, Delta: 1e-5}, private,
		dp.RoundCharge{Round: 2, Unprotected: true, ClipNorm: 1, MinParticipants: 10, Participants: 10})
	html := filepath.Join(t.TempDir(), "report.html")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"privacy", "report", "--dir", dir, "--population", "1000000", "--json", "--html", html}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var js struct {
		Composed map[string]any   `json:"composed"`
		Models   []map[string]any `json:"models"`
	}
	if err := json.Unmarshal(out.Bytes(), &js); err != nil || len(js.Models) != 1 {
		t.Fatalf("%s: %v", out.String(), err)
	}
	if c := js.Composed; c["unbounded"] != true || c["epsilon"] != nil || c["order"] != nil {
		t.Errorf("JSON composed %v, want unbounded and epsilon null", c)
	}
	if m := js.Models[0]; m["unbounded"] != true || m["spent"] != nil || m["remaining"] != nil || m["order"] != nil {
		t.Errorf("JSON model %v, want unbounded and spent, remaining, order null", m)
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	text := string(page)
	composedPart := text[strings.Index(text, "<h2>Composed"):]
	if strings.Contains(text, "spent <b>") || strings.Contains(text, "remaining") && !strings.Contains(text, "no epsilon is spent or remaining") ||
		!strings.Contains(text, `privacy loss <b class="warn">unbounded</b>: differential privacy was off in round(s) 2 of 2`) ||
		strings.Contains(composedPart, "epsilon <b>") || !strings.Contains(composedPart, "unbounded") {
		t.Errorf("HTML report gives an epsilon for a model without differential privacy:\n%s", text)
	}
	// A ledger that is unprotected only: the demo's --insecure-no-dp.
	dir2 := t.TempDir()
	writeTestLedger(t, dir2, dp.Budget{Epsilon: 1, Delta: 1e-5}, dp.RoundCharge{Round: 1, Unprotected: true, ClipNorm: 1, MinParticipants: 10, Participants: 10})
	for _, d := range []string{dir, dir2} {
		path := filepath.Join(d, "state", "model.ledger")
		out.Reset()
		if err := run(context.Background(), []string{"privacy", "ledger", "--path", path}, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		if s := out.String(); strings.Contains(s, "spent epsilon") || !strings.Contains(s, "privacy loss unbounded") {
			t.Errorf("privacy ledger %s:\n%s", path, s)
		}
		out.Reset()
		if err := run(context.Background(), []string{"privacy", "ledger", "--path", path, "--json"}, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		var l map[string]any
		if err := json.Unmarshal(out.Bytes(), &l); err != nil || l["unbounded"] != true || l["spent"] != nil || l["remaining"] != nil {
			t.Errorf("privacy ledger --json %s: %s (%v)", path, out.String(), err)
		}
	}
}

// TestPrivacyReportWithoutStore: `privacy report --dir` on a directory without store/ created
// one, then labelled every round, released ones included, "no version in the store (round
// charged, not released)" without a warning. It creates nothing, warns naming the store's path,
// and says no round was checked; with an empty store, a round whose release the ledger records
// is MISSING from it, with a warning.
func TestPrivacyReportWithoutStore(t *testing.T) {
	dir := t.TempDir()
	writeTestLedger(t, dir, dp.Budget{Epsilon: 10, Delta: 1e-5})
	l, err := dp.OpenLedger(filepath.Join(dir, "state", "model.ledger"), "keystroke-ae", dp.Budget{Epsilon: 10, Delta: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	for r := uint64(1); r <= 2; r++ {
		if _, err := l.ChargeRound(dp.RoundCharge{Round: r, Event: dp.Event{SamplingRate: 0.5, NoiseMultiplier: 2, Steps: 1, Mechanism: dp.KnownParticipation},
			ClipNorm: 1, MinParticipants: 10, ToleratedDevices: 1, Participants: 12}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.RecordRelease(1, strings.Repeat("ab", 32)); err != nil {
		t.Fatal(err)
	}
	report := func() privacyReport {
		t.Helper()
		var out bytes.Buffer
		if err := run(context.Background(), []string{"privacy", "report", "--dir", dir, "--population", "1000000", "--json"}, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		var rep privacyReport
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil || len(rep.Models) != 1 || len(rep.Models[0].Rounds) != 2 {
			t.Fatalf("%s: %v", out.String(), err)
		}
		return rep
	}
	storeDir := filepath.Join(dir, "store")
	rep := report()
	if _, err := os.Stat(storeDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the report created %s (%v)", storeDir, err)
	}
	if w := strings.Join(rep.Warnings, "\n"); !rep.StoreMissing || !strings.Contains(w, "no model store at "+storeDir) {
		t.Errorf("no warning naming the missing store %s: %q", storeDir, rep.Warnings)
	}
	for _, r := range rep.Models[0].Rounds {
		if !strings.HasPrefix(r.Store, "not checked (no model store)") {
			t.Errorf("round %d without a store: %q", r.Round, r.Store)
		}
	}
	for _, s := range rep.Models[0].ByModel {
		if s.Model == "not released" {
			t.Errorf("without a store, rounds counted as not released: %+v", rep.Models[0].ByModel)
		}
	}
	if err := os.Mkdir(storeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	rep = report()
	rounds := rep.Models[0].Rounds
	if rep.StoreMissing || !strings.HasPrefix(rounds[0].Store, "MISSING") || !strings.Contains(rounds[1].Store, "not released") ||
		!strings.Contains(strings.Join(rep.Warnings, "\n"), "round 1: the ledger records a release") {
		t.Errorf("empty store: rounds %q, %q; warnings %q", rounds[0].Store, rounds[1].Store, rep.Warnings)
	}
	if s := rep.Models[0].ByModel; len(s) != 2 || s[0].Model != "released, not in the store" || s[1].Model != "not released" {
		t.Errorf("empty store: shares %+v", s)
	}
}
