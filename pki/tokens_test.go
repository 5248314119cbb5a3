package pki

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestTokenRedeemedOnceAcrossReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tokens, err := OpenTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokens.Issue("dev-a", 24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 43 {
		t.Fatalf("token %q has %d characters, want 43", tok, len(tok))
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), tok) {
		t.Fatal("the token file holds the token itself")
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v", info.Mode().Perm())
	}
	if err := tokens.Redeem(tok, "dev-a", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// A new process (a restarted coordinator) reads the file and refuses the token.
	again, err := OpenTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Redeem(tok, "dev-a", now.Add(2*time.Hour)); !errors.Is(err, ErrTokenUsed) {
		t.Fatalf("redeem after reload: %v, want ErrTokenUsed", err)
	}
	if s, err := again.Stats(now.Add(2 * time.Hour)); err != nil || s != (TokenStats{Redeemed: 1}) {
		t.Fatalf("stats %+v, %v", s, err)
	}
}

func TestTokenRefusals(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tokens, _ := OpenTokens(path)
	tok, _ := tokens.Issue("dev-a", time.Hour, now)
	for _, tc := range []struct {
		name   string
		token  string
		device string
		at     time.Time
		want   error
	}{
		{"wrong device", tok, "dev-b", now, ErrTokenWrongDevice},
		{"expired at the instant", tok, "dev-a", now.Add(time.Hour), ErrTokenExpired},
		{"unknown", strings.Repeat("A", 43), "dev-a", now, ErrTokenUnknown},
		{"padded", tok + "=", "dev-a", now, ErrTokenUnknown},
		{"standard base64", strings.Replace(tok, tok[:1], "+", 1), "dev-a", now, ErrTokenUnknown},
		{"empty", "", "dev-a", now, ErrTokenUnknown},
	} {
		if err := tokens.Redeem(tc.token, tc.device, tc.at); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// None of the refusals used the token up.
	if err := tokens.Redeem(tok, "dev-a", now.Add(time.Hour-time.Nanosecond)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id  string
		ttl time.Duration
	}{{"", time.Hour}, {"a/b", time.Hour}, {"dev", 0}, {"dev", MaxTokenTTL + 1}} {
		if _, err := tokens.Issue(tc.id, tc.ttl, now); err == nil {
			t.Errorf("Issue(%q, %v) succeeded", tc.id, tc.ttl)
		}
	}
}

func TestTokenRedeemedExactlyOnceUnderRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	now := time.Now()
	first, _ := OpenTokens(path)
	tok, _ := first.Issue("dev-a", time.Hour, now)
	// Two stores on the same file stand for two processes.
	second, _ := OpenTokens(path)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, used := 0, 0
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := []*Tokens{first, second}[i%2].Redeem(tok, "dev-a", now)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, ErrTokenUsed):
				used++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 || used != 15 {
		t.Fatalf("%d redemptions succeeded and %d were refused as used; want 1 and 15", wins, used)
	}
}

func TestTokensPrunedAfterRetention(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tokens, _ := OpenTokens(path)
	old, _ := tokens.Issue("dev-a", time.Hour, now)
	later := now.Add(time.Hour + TokenRetention + time.Second)
	if _, err := tokens.Issue("dev-b", time.Hour, later); err != nil {
		t.Fatal(err)
	}
	if s, _ := tokens.Stats(later); s != (TokenStats{Outstanding: 1}) {
		t.Fatalf("stats after pruning %+v", s)
	}
	if err := tokens.Redeem(old, "dev-a", later); !errors.Is(err, ErrTokenUnknown) {
		t.Fatalf("pruned token: %v", err)
	}
}

func TestCorruptTokenFileRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	os.WriteFile(path, []byte(`{"version":1,"tokens":[],"extra":1}`), 0o600)
	if _, err := OpenTokens(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("corrupt token file: %v", err)
	}
}

// TestTokenRedeemedWithClockBehindItsIssue redeems a token on a clock stepped back since it was
// issued (an NTP step, a restored VM): the redemption is filed at the issue time, and the file
// stays readable, the token used and the other tokens usable.
func TestTokenRedeemedWithClockBehindItsIssue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tokens, _ := OpenTokens(path)
	tok, _ := tokens.Issue("dev-a", time.Hour, now)
	other, _ := tokens.Issue("dev-b", time.Hour, now.Add(-time.Minute))
	back := now.Add(-2 * time.Second)
	if err := tokens.Redeem(tok, "dev-a", back); err != nil {
		t.Fatal(err)
	}
	again, err := OpenTokens(path)
	if err != nil {
		t.Fatalf("the token file after a redemption on a clock behind the issue: %v", err)
	}
	if err := again.Redeem(tok, "dev-a", now); !errors.Is(err, ErrTokenUsed) || !strings.Contains(err.Error(), now.Format(time.RFC3339)) {
		t.Fatalf("redeem again: %v, want ErrTokenUsed at the issue time %s", err, now.Format(time.RFC3339))
	}
	if err := again.Redeem(other, "dev-b", back); err != nil {
		t.Fatalf("another token: %v", err)
	}
	if _, err := again.Issue("dev-c", time.Hour, back); err != nil {
		t.Fatalf("issue: %v", err)
	}
}

// TestTokenFileRedeemedBeforeIssuedReads reads a token file as earlier versions wrote it after a
// redemption on a clock stepped back: the whole store stays usable, and that token used.
func TestTokenFileRedeemedBeforeIssuedReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tokens, _ := OpenTokens(path)
	tok, _ := tokens.Issue("dev-a", time.Hour, now)
	data, _ := os.ReadFile(path)
	var f tokenFile
	if err := decodeStrictJSON(data, &f); err != nil {
		t.Fatal(err)
	}
	back := now.Add(-2 * time.Second)
	f.Tokens[0].Redeemed = &back
	data, _ = encodeTokenFile(f.Tokens)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	again, err := OpenTokens(path)
	if err != nil {
		t.Fatalf("a token file with a redemption before its issue: %v", err)
	}
	if _, err := again.Check(tok, "dev-a", now); !errors.Is(err, ErrTokenUsed) {
		t.Fatalf("check: %v, want ErrTokenUsed", err)
	}
	if err := again.Redeem(tok, "dev-a", now); !errors.Is(err, ErrTokenUsed) {
		t.Fatalf("redeem: %v, want ErrTokenUsed", err)
	}
	if _, err := again.Issue("dev-b", time.Hour, now); err != nil {
		t.Fatalf("issue: %v", err)
	}
	if s, err := again.Stats(now); err != nil || s != (TokenStats{Outstanding: 1, Redeemed: 1}) {
		t.Fatalf("stats %+v, %v", s, err)
	}
}

// TestTokenDatedAtWholeSecond: a token is dated at the first whole second not before its issue,
// as the device record it buys will be, and valid for its lifetime from then.
func TestTokenDatedAtWholeSecond(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tokens, _ := OpenTokens(filepath.Join(t.TempDir(), "tokens.json"))
	for _, tc := range []struct{ now, want time.Time }{
		{t0, t0},
		{t0.Add(time.Nanosecond), t0.Add(time.Second)},
		{t0.Add(999 * time.Millisecond), t0.Add(time.Second)},
		{t0.In(time.FixedZone("X", 3600)).Add(time.Second / 2), t0.Add(time.Second)},
	} {
		if got := TokenDate(tc.now); !got.Equal(tc.want) || got.Location() != time.UTC {
			t.Errorf("TokenDate(%s) = %s, want %s", tc.now.Format(time.RFC3339Nano), got, tc.want)
		}
		tok, err := tokens.Issue("dev-a", time.Hour, tc.now)
		if err != nil {
			t.Fatal(err)
		}
		if issued, err := tokens.Check(tok, "dev-a", tc.now); err != nil || !issued.Equal(tc.want) {
			t.Errorf("issued at %s: dated %s (%v), want %s", tc.now.Format(time.RFC3339Nano), issued, err, tc.want)
		}
		if _, err := tokens.Check(tok, "dev-a", tc.want.Add(time.Hour-time.Nanosecond)); err != nil {
			t.Errorf("a token valid for an hour from %s, at the last instant: %v", tc.want, err)
		}
		if _, err := tokens.Check(tok, "dev-a", tc.want.Add(time.Hour)); !errors.Is(err, ErrTokenExpired) {
			t.Errorf("a token valid for an hour from %s, an hour later: %v", tc.want, err)
		}
	}
}
