package console

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilauth/vigil/audit"
	"github.com/vigilauth/vigil/dp"
	"github.com/vigilauth/vigil/siem"
)

// testLog writes a signed log: an opened session, decisions (one denied, one for a session
// whose name is markup), a gap, a revocation.
func testLog(t *testing.T) (string, audit.Verifier) {
	t.Helper()
	signer, _, err := audit.GenerateMLDSA65(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(path, audit.Config{Signer: signer, CheckpointEvery: 3})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	step := func() time.Time { at = at.Add(time.Second); return at }
	must := func(_ audit.Record, err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(l.AppendSessionEvent(step(), audit.SessionEvent{At: at, Session: "s-alice", User: "alice", Event: "opened", From: "none", To: "monitor", Trust: 50}))
	must(l.AppendDecision(step(), audit.Decision{At: at, Session: "s-alice", User: "alice", Resource: "transfer", Allow: true, Outcome: "allowed", Tier: "monitor", Trust: 80, Required: 70}))
	must(l.AppendDecision(step(), audit.Decision{At: at, Session: "s-alice", User: "alice", Resource: "admin", Outcome: "low_trust", Tier: "soft_challenge", Trust: 31, Required: 85,
		Reasons: []audit.Reason{{Signal: "impossible_travel", Impact: -40, Text: "900 km in 5 minutes"}}}))
	must(l.AppendDecision(step(), audit.Decision{At: at, Session: "<script>alert(1)</script>", User: "mallory", Resource: "transfer", Outcome: "unknown_session", Tier: "none"}))
	must(l.AppendGap(step(), 7))
	must(l.AppendSessionEvent(step(), audit.SessionEvent{At: at, Session: "s-alice", User: "alice", Event: "revoked", From: "hard_challenge", To: "terminate", Trust: 5}))
	if err := l.Close(step()); err != nil {
		t.Fatal(err)
	}
	return path, signer.Public()
}

func get(t *testing.T, h http.Handler, method, target string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Result(), string(body)
}

// TestPages checks each page: what it shows, what it filters out, the escaping of names from
// the log, the headers, and that nothing but reading is allowed.
func TestPages(t *testing.T) {
	logPath, v := testLog(t)
	spool := t.TempDir()
	sp, err := siem.OpenSpool(spool, 1<<20, siem.MinSegmentBytes, "hec")
	if err != nil {
		t.Fatal(err)
	}
	sp.Append([]byte("{}\n{}\n"))
	sp.Cursor("hec").Ack(3)
	sp.Close()
	h, err := New(Config{LogPath: logPath, Verifier: v, SpoolDir: spool})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, target string
		status               int
		wants, refuses       []string
	}{
		{"overview", "GET", "/", 200, []string{"verifies", "3 decisions", "2 changes of standing", "7 entries were dropped", "<td>hec</td><td>3</td><td>3</td>"}, nil},
		{"all decisions", "GET", "/decisions", 200, []string{"s-alice", "900 km in 5 minutes (-40)", `class="deny"`, "revoked", "7 entries were dropped before the log",
			"&lt;script&gt;alert(1)&lt;/script&gt;"}, []string{"<script>"}},
		{"by user", "GET", "/decisions?user=mallory", 200, []string{"mallory"}, []string{"s-alice"}},
		{"by outcome", "GET", "/decisions?outcome=low_trust", 200, []string{"admin"}, []string{"revoked", "mallory"}},
		{"by event", "GET", "/decisions?session=s-alice&outcome=revoked", 200, []string{"hard_challenge to terminate"}, []string{"admin"}},
		{"stylesheet", "GET", "/style.css", 200, []string{"table{"}, nil},
		{"post refused", "POST", "/decisions", 405, []string{"read-only"}, nil},
		{"unknown page", "GET", "/admin", 404, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, h, tc.method, tc.target)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d\n%s", resp.StatusCode, tc.status, body)
			}
			for _, w := range tc.wants {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q\n%s", w, body)
				}
			}
			for _, r := range tc.refuses {
				if strings.Contains(body, r) {
					t.Errorf("page shows %q", r)
				}
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("Content-Security-Policy %q", csp)
			}
			if strings.Contains(body, "<script") || strings.Contains(body, "http://") || strings.Contains(body, "https://") {
				t.Error("page has a script or a third-party reference")
			}
		})
	}
}

// TestTamperedLogShowsNothing alters one decision: the pages say the log does not verify and
// list none of its entries.
func TestTamperedLogShowsNothing(t *testing.T) {
	logPath, v := testLog(t)
	data, _ := os.ReadFile(logPath)
	os.WriteFile(logPath, bytes.Replace(data, []byte(`"trust":31`), []byte(`"trust":91`), 1), 0o600)
	h, err := New(Config{LogPath: logPath, Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	_, body := get(t, h, "GET", "/decisions")
	if !strings.Contains(body, "does not verify") || strings.Contains(body, "s-alice") {
		t.Fatalf("tampered log shown:\n%s", body)
	}
}

// TestConfigErrors checks the required fields.
func TestConfigErrors(t *testing.T) {
	_, v := testLog(t)
	for _, tc := range []struct {
		cfg   Config
		wants string
	}{
		{Config{Verifier: v}, "LogPath"},
		{Config{LogPath: "x"}, "Verifier"},
		{Config{LogPath: "x", Verifier: v, Rows: -1}, "Rows"},
	} {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.wants) {
			t.Errorf("New(%+v) = %v, want an error naming %s", tc.cfg, err, tc.wants)
		}
	}
}

// TestPrivacyPage shows a ledger with two private rounds and one released without DP, and a
// ledger file that does not parse.
func TestPrivacyPage(t *testing.T) {
	logPath, v := testLog(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "global.ledger")
	l, err := dp.OpenLedger(path, "model/global", dp.Budget{Epsilon: 10, Delta: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	ev := dp.Event{SamplingRate: 0.25, NoiseMultiplier: 1, Steps: 1}
	for round := uint64(1); round <= 2; round++ {
		if _, err := l.ChargeRound(dp.RoundCharge{Round: round, Event: ev, ClipNorm: 1, MinParticipants: 3, Participants: 5}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.ChargeRound(dp.RoundCharge{Round: 3, Unprotected: true, ClipNorm: 1, MinParticipants: 3, Participants: 5}); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.ledger")
	os.WriteFile(bad, []byte("not a ledger"), 0o600)
	h, err := New(Config{LogPath: logPath, Verifier: v, Ledgers: []string{path, bad}})
	if err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, h, "GET", "/privacy")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, w := range []string{"model/global", "privacy loss unbounded (budget epsilon 10 at delta 1e-05)", "in 3 rounds", "Rounds 3 were released without differential privacy", bad,
		"Composition of the models' ledgers: not computed, since " + bad + " does not read"} {
		if !strings.Contains(body, w) {
			t.Errorf("privacy page lacks %q\n%s", w, body)
		}
	}
	if strings.Contains(body, "spent of 10") {
		t.Errorf("the privacy page gives a spent epsilon for a ledger with a round without differential privacy\n%s", body)
	}
}

// TestPrivacyComposition: the composed epsilon is the models' ledgers', as vigil privacy
// report composes them: unbounded when a round of one had no differential privacy, and
// without devices' own ledgers, which are each a device's account.
func TestPrivacyComposition(t *testing.T) {
	logPath, v := testLog(t)
	dir := t.TempDir()
	ledger := func(path, subject string, unprotected bool) string {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		l, err := dp.OpenLedger(path, subject, dp.Budget{Epsilon: 10, Delta: 1e-5})
		if err != nil {
			t.Fatal(err)
		}
		ev := dp.Event{SamplingRate: 0.25, NoiseMultiplier: 1, Steps: 1}
		if _, err := l.ChargeRound(dp.RoundCharge{Round: 1, Event: ev, ClipNorm: 1, MinParticipants: 3, Participants: 5}); err != nil {
			t.Fatal(err)
		}
		if unprotected {
			if _, err := l.ChargeRound(dp.RoundCharge{Round: 2, Unprotected: true, ClipNorm: 1, MinParticipants: 3, Participants: 5}); err != nil {
				t.Fatal(err)
			}
		}
		return path
	}
	model := ledger(filepath.Join(dir, "model.ledger"), "model/global", false)
	open := ledger(filepath.Join(dir, "open.ledger"), "model/open", true)
	device := ledger(filepath.Join(dir, "device-1", dp.DeviceLedgerFile), "device-1", false)
	snap, err := dp.ReadLedger(model)
	if err != nil {
		t.Fatal(err)
	}
	spent, _ := snap.Spent()
	for _, tc := range []struct {
		name    string
		ledgers []string
		want    string
	}{
		{"a model and a device", []string{model, device}, fmt.Sprintf("Composed across the 1 models' ledgers shown: epsilon %.4g", spent)},
		{"a round without DP", []string{model, open}, "Composed across the 2 models' ledgers shown: unbounded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := New(Config{LogPath: logPath, Verifier: v, Ledgers: tc.ledgers})
			if err != nil {
				t.Fatal(err)
			}
			if _, body := get(t, h, "GET", "/privacy"); !strings.Contains(body, tc.want) {
				t.Errorf("privacy page lacks %q\n%s", tc.want, body)
			}
		})
	}
}

// TestUnsignedLogIsNotShownAsVerified: a log emptied, or cut to records no checkpoint signs,
// verifies as a chain, but nothing shows who wrote it; the console says so in red and shows
// none of it, as vigil audit verify refuses it.
func TestUnsignedLogIsNotShownAsVerified(t *testing.T) {
	logPath, v := testLog(t)
	whole, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := bytes.Cut(whole, []byte("\n"))
	for _, tc := range []struct {
		name, log, want string
	}{
		{"emptied", "", "the log is empty"},
		{"cut before its first checkpoint", string(first) + "\n", "no signed checkpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(logPath, []byte(tc.log), 0o600); err != nil {
				t.Fatal(err)
			}
			h, err := New(Config{LogPath: logPath, Verifier: v})
			if err != nil {
				t.Fatal(err)
			}
			_, body := get(t, h, "GET", "/")
			if !strings.Contains(body, "does not verify") || !strings.Contains(body, tc.want) || strings.Contains(body, `class="good"`) {
				t.Errorf("overview of a log %s:\n%s", tc.name, body)
			}
		})
	}
}
