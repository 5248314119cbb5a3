package agent_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilauth/vigil/agent"
	"github.com/vigilauth/vigil/agent/attest"
)

const (
	bank = "https://bank.example"
	shop = "https://shop.example"
)

func b64(t *testing.T, v any) []byte {
	t.Helper()
	s, _ := v.(string)
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		t.Fatalf("%v is not base64: %v", v, err)
	}
	return b
}

// startSite is a listed site's page starting its own session over HTTP: no credential, the
// browser's Origin header.
func startSite(t *testing.T, r *running, origin, session, user string) httpResult {
	t.Helper()
	return post(t, r.httpURL+"/v1/agent/StartSession", "", fmt.Sprintf(`{"session":%q,"user":%q}`, session, user), "Origin", origin)
}

// A listed site's page starts a session itself, sends its events, gets a decision signed for
// its server, and signs its user out; the server's check passes, and the device's key for the
// site survives a restart.
func TestSiteSession(t *testing.T) {
	dir := t.TempDir()
	r := startAgentConfig(t, agent.Config{Dir: dir, Sites: []string{bank, shop}}, "", false)
	api := r.httpURL + "/v1/agent/"
	signedIn := time.Now()
	start := startSite(t, r, bank, "s-1", "alice")
	if start.Code != 200 || start.Body["session"] != "site:"+bank+"/s-1" || start.Body["user"] != "site:"+bank+"/alice" {
		t.Fatalf("StartSession from the site's page: %v", start)
	}
	if start.Head.Get("Access-Control-Allow-Origin") != bank {
		t.Fatalf("no CORS answer for the site: %v", start.Head)
	}
	key, token := b64(t, start.Body["siteKey"]), start.Body["sessionToken"].(string)
	session := start.Body["session"].(string)
	if got := post(t, api+"SendEvents", token, fmt.Sprintf(`{"session":%q}`, session)); got.Code != 200 {
		t.Fatalf("SendEvents with the site session's token: %v", got)
	}
	nonce := "n-0123456789abcdef"
	got := post(t, api+"Authorize", token, fmt.Sprintf(`{"session":%q,"resource":"transfer","nonce":%q}`, session, nonce))
	att, _ := got.Body["attestation"].(map[string]any)
	if got.Code != 200 || att == nil {
		t.Fatalf("Authorize with a nonce: %v", got)
	}
	d, err := attest.Verify(key, b64(t, att["payload"]), b64(t, att["signature"]),
		attest.Expect{Origin: bank, Session: "s-1", User: "alice", Resource: "transfer", Nonce: nonce, SignedIn: signedIn})
	if err != nil {
		t.Fatalf("the site's server refused the agent's decision: %v", err)
	}
	if d.User != "alice" || d.Allow != (got.Body["allow"] == true) || d.Outcome != got.Body["outcome"] {
		t.Fatalf("signed %+v, answered %v", d, got.Body)
	}
	if end := post(t, api+"EndSession", token, fmt.Sprintf(`{"session":%q}`, session)); end.Code != 200 || end.Body["ended"] != true {
		t.Fatalf("the page signing its user out: %v", end)
	}

	r.stop()
	r = startAgentConfig(t, agent.Config{Dir: dir, Sites: []string{bank}}, "", false)
	again := startSite(t, r, bank, "s-2", "alice")
	if again.Code != 200 || !bytes.Equal(b64(t, again.Body["siteKey"]), key) {
		t.Fatalf("after a restart the device's key for the site changed: %v", again)
	}
	if got := startSite(t, r, shop, "s-1", "alice"); got.Code != 403 || got.Body["reason"] != agent.ReasonNotASite {
		t.Fatalf("a site no longer listed started a session: %v", got)
	}
}

// TestAttackSiteReachesBeyondItsSessions plays a page of a web site: an unlisted one starting
// sessions, a listed one acting on the device's applications' sessions or another site's,
// calling without its token, or asking signed decisions it may not have.
func TestAttackSiteReachesBeyondItsSessions(t *testing.T) {
	r := startAgentConfig(t, agent.Config{Dir: t.TempDir(), Sites: []string{bank, shop}}, "", false)
	api := r.httpURL + "/v1/agent/"
	if got := post(t, api+"StartSession", r.secret, `{"session":"app-1","user":"alice"}`); got.Code != 200 {
		t.Fatalf("the application's session: %v", got)
	}
	bankPage := startSite(t, r, bank, "s-1", "alice")
	shopPage := startSite(t, r, shop, "s-1", "alice")
	if bankPage.Code != 200 || shopPage.Code != 200 {
		t.Fatalf("sites' sessions: %v %v", bankPage, shopPage)
	}
	bankToken := bankPage.Body["sessionToken"].(string)
	if bytes.Equal(b64(t, bankPage.Body["siteKey"]), b64(t, shopPage.Body["siteKey"])) {
		t.Fatal("two sites got the same device key: they could link the device")
	}
	bankSession, shopSession := "site:"+bank+"/s-1", "site:"+shop+"/s-1"
	nonce := "n-0123456789abcdef"
	tests := []struct {
		name, method, cred, body string
		header                   []string
		code                     int
		reason, field            string
	}{
		{"an unlisted site starts a session", "StartSession", "", `{"session":"x","user":"alice"}`, []string{"Origin", "https://evil.example"}, 403, agent.ReasonNotASite, "origin"},
		{"a listed site's name over plain http", "StartSession", "", `{"session":"x","user":"alice"}`, []string{"Origin", "http://bank.example"}, 403, agent.ReasonNotASite, "origin"},
		{"a sandboxed frame (Origin null)", "StartSession", "", `{"session":"x","user":"alice"}`, []string{"Origin", "null"}, 403, agent.ReasonNotASite, "origin"},
		{"no Origin, no credential", "StartSession", "", `{"session":"x","user":"alice"}`, nil, 401, agent.ReasonBadSecret, "authorization"},
		// Before, the empty names were taken: every such page shared one session and user.
		{"a site's page names no session", "StartSession", "", `{"user":"alice"}`, []string{"Origin", bank}, 400, agent.ReasonInvalidField, "session"},
		{"a site's page names no user", "StartSession", "", `{"session":"x","user":""}`, []string{"Origin", bank}, 400, agent.ReasonInvalidField, "user"},
		{"a site's page asks without its token", "Authorize", "", fmt.Sprintf(`{"session":%q,"resource":"transfer"}`, bankSession), []string{"Origin", bank}, 401, agent.ReasonBadSecret, "authorization"},
		{"a site's page on the application's session", "Authorize", bankToken, `{"session":"app-1","resource":"transfer"}`, nil, 403, agent.ReasonWrongSession, "session"},
		{"a site's page on another site's session", "SendEvents", bankToken, fmt.Sprintf(`{"session":%q}`, shopSession), nil, 403, agent.ReasonWrongSession, "session"},
		{"a site's page ends the application's session", "EndSession", bankToken, `{"session":"app-1"}`, nil, 403, agent.ReasonWrongSession, "authorization"},
		{"a site's page answers its own challenge", "AnswerChallenge", bankToken, fmt.Sprintf(`{"session":%q,"challengeId":"1","passed":true}`, bankSession), nil, 403, agent.ReasonWrongSession, "authorization"},
		{"an application poses as a site", "StartSession", r.secret, `{"session":"site:https://bank.example/s-9","user":"mallory"}`, nil, 400, agent.ReasonInvalidField, "session"},
		{"a signed decision for the application's session", "Authorize", r.secret, fmt.Sprintf(`{"session":"app-1","resource":"transfer","nonce":%q}`, nonce), nil, 400, agent.ReasonInvalidField, "nonce"},
		{"a guessable nonce", "Authorize", bankToken, fmt.Sprintf(`{"session":%q,"resource":"transfer","nonce":"1"}`, bankSession), nil, 400, agent.ReasonInvalidField, "nonce"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := post(t, api+tc.method, tc.cred, tc.body, tc.header...)
			if got.Code != tc.code || got.Body["reason"] != tc.reason || got.Body["field"] != tc.field {
				t.Fatalf("got %d %v, want %d reason %s field %q", got.Code, got.Body, tc.code, tc.reason, tc.field)
			}
		})
	}
	// None of it touched the application's session.
	if got := post(t, api+"Authorize", r.secret, `{"session":"app-1","resource":"profile.read"}`); got.Code != 200 {
		t.Fatalf("the application's session after the attacks: %v", got)
	}
}

// TestAttackSitePageShedsItsStanding: the device's application marks a site's session
// compromised; a script in the page (or the impostor at the keyboard) starts the session again
// to shed it, or names a fresh user, whose trust rests on context alone. The agent allows the
// transfer in the new session, as it would a new sign-in; the site's server refuses it.
func TestAttackSitePageShedsItsStanding(t *testing.T) {
	r := startAgentConfig(t, agent.Config{Dir: t.TempDir(), Sites: []string{bank}}, "", false)
	api := r.httpURL + "/v1/agent/"
	signedIn := time.Now()
	first := startSite(t, r, bank, "s-1", "alice")
	session, token := first.Body["session"].(string), first.Body["sessionToken"].(string)
	key := b64(t, first.Body["siteKey"])
	if got := post(t, api+"Feedback", r.secret, fmt.Sprintf(`{"session":%q,"verdict":"compromised"}`, session)); got.Code != 200 {
		t.Fatalf("Feedback: %v", got)
	}
	authorize := func(token, session, nonce string) attest.Expect {
		t.Helper()
		got := post(t, api+"Authorize", token, fmt.Sprintf(`{"session":%q,"resource":"transfer","nonce":%q}`, session, nonce))
		att, _ := got.Body["attestation"].(map[string]any)
		if got.Code != 200 || att == nil {
			t.Fatalf("Authorize: %v", got)
		}
		want := attest.Expect{Origin: bank, Session: "s-1", User: "alice", Resource: "transfer", Nonce: nonce, SignedIn: signedIn}
		d, err := attest.Verify(key, b64(t, att["payload"]), b64(t, att["signature"]), want)
		if err == nil && d.Allow {
			t.Fatalf("the site's server took a transfer: %+v", d)
		}
		t.Logf("the server: %+v, %v", d, err)
		return want
	}
	authorize(token, session, "n-revoked-0000000")
	time.Sleep(300 * time.Millisecond) // a restart later than the clocks' tolerance, scaled down below
	if got := post(t, api+"EndSession", token, fmt.Sprintf(`{"session":%q}`, session)); got.Code != 200 {
		t.Fatalf("EndSession: %v", got)
	}
	again := startSite(t, r, bank, "s-1", "alice")
	got := post(t, api+"Authorize", again.Body["sessionToken"].(string), fmt.Sprintf(`{"session":%q,"resource":"transfer","nonce":"n-restarted-00000"}`, session))
	att := got.Body["attestation"].(map[string]any)
	if got.Body["allow"] != true {
		t.Fatalf("the restarted session is not allowed at all, so this test shows nothing: %v", got.Body)
	}
	want := attest.Expect{Origin: bank, Session: "s-1", User: "alice", Resource: "transfer", Nonce: "n-restarted-00000",
		SignedIn: signedIn, Now: time.Now(), MaxAge: 150 * time.Millisecond}
	if _, err := attest.Verify(key, b64(t, att["payload"]), b64(t, att["signature"]), want); !errors.Is(err, attest.ErrMismatch) || !strings.Contains(err.Error(), "started it again") {
		t.Fatalf("a restarted session's allow: %v", err)
	}

	fresh := startSite(t, r, bank, "s-1b", "mallory-fresh")
	got = post(t, api+"Authorize", fresh.Body["sessionToken"].(string), fmt.Sprintf(`{"session":%q,"resource":"transfer","nonce":"n-freshuser-00000"}`, fresh.Body["session"]))
	att = got.Body["attestation"].(map[string]any)
	want = attest.Expect{Origin: bank, Session: "s-1b", User: "alice", Resource: "transfer", Nonce: "n-freshuser-00000", SignedIn: time.Now()}
	if _, err := attest.Verify(key, b64(t, att["payload"]), b64(t, att["signature"]), want); !errors.Is(err, attest.ErrMismatch) || !strings.Contains(err.Error(), "user") {
		t.Fatalf("another user's allow, for alice: %v", err)
	}
}

// TestAttackSiteFillsTheAgent: a site's pages start sessions without end, several at once, and
// name new users without end. The site starts at most SiteStartBurst at once, keeps at most
// MaxSiteSessions sessions (its oldest ended first) and MaxSiteUsers users, and the device's
// applications still start theirs.
func TestAttackSiteFillsTheAgent(t *testing.T) {
	began := time.Now()
	r := startAgentConfig(t, agent.Config{Dir: t.TempDir(), Sites: []string{bank, shop}}, "", false)
	api := r.httpURL + "/v1/agent/"
	type started struct{ session, token string }
	results := make(chan started, 200)
	var limited atomic.Int32
	var wg sync.WaitGroup
	for g := range 6 { // about a browser's connections to one host
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 30 {
				req, _ := http.NewRequest("POST", api+"StartSession", strings.NewReader(fmt.Sprintf(`{"session":"g%d-%d","user":"alice"}`, g, i)))
				req.Header.Set("Origin", bank)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					continue
				}
				var st struct{ Session, SessionToken string }
				json.NewDecoder(resp.Body).Decode(&st)
				resp.Body.Close()
				switch resp.StatusCode {
				case 200:
					results <- started{st.Session, st.SessionToken}
				case 429:
					limited.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(results)
	n, live := 0, 0
	for st := range results {
		n++
		if got := post(t, api+"SendEvents", st.token, fmt.Sprintf(`{"session":%q}`, st.session)); got.Code == 200 {
			live++
		}
	}
	allowance := agent.SiteStartBurst + int(time.Since(began).Seconds()*agent.SiteStartsPerSecond) + 1
	if n <= agent.MaxSiteSessions || n > allowance || n+int(limited.Load()) != 180 || live != agent.MaxSiteSessions {
		t.Fatalf("%d of 180 started (allowance %d), %d refused RATE_LIMITED, %d of the site's sessions live, want %d",
			n, allowance, limited.Load(), live, agent.MaxSiteSessions)
	}
	// Another site, whose starts are its own.
	if got := startSite(t, r, shop, "u-alice", "alice"); got.Code != 200 {
		t.Fatalf("another site's start: %v", got)
	}
	for i := range agent.MaxSiteUsers - 1 { // alice is one
		if got := startSite(t, r, shop, fmt.Sprintf("u-%d", i), fmt.Sprintf("user-%d", i)); got.Code != 200 {
			t.Fatalf("user %d: %v", i, got)
		}
	}
	if got := startSite(t, r, shop, "u-new", "user-new"); got.Code != 429 || got.Body["reason"] != agent.ReasonTooMany || got.Body["field"] != "user" {
		t.Fatalf("the site's user beyond its maximum: %v", got)
	}
	if got := startSite(t, r, shop, "u-known", "alice"); got.Code != 200 {
		t.Fatalf("a user the site already has: %v", got)
	}
	if got := post(t, api+"StartSession", r.secret, `{"session":"app-1","user":"carol"}`); got.Code != 200 {
		t.Fatalf("the application could not start a session: %v", got)
	}
}

// TestSiteNotInASCII: a site listed by a host not in ASCII is the origin its browsers send,
// in punycode. Before, the agent kept the name as given and refused the site's pages.
func TestSiteNotInASCII(t *testing.T) {
	r := startAgentConfig(t, agent.Config{Dir: t.TempDir(), Sites: []string{"https://bücher.example"}}, "", false)
	if got := startSite(t, r, "https://xn--bcher-kva.example", "s", "alice"); got.Code != 200 || got.Body["session"] != "site:https://xn--bcher-kva.example/s" {
		t.Fatalf("the site's page, as a browser sends its Origin: %v", got)
	}
}

func TestSitesConfig(t *testing.T) {
	for _, sites := range [][]string{{"http://bank.example"}, {"https://bank.example/login"}, {"bank.example"}} {
		_, err := agent.New(agent.Config{Dir: t.TempDir(), Sites: sites})
		if !errors.Is(err, attest.ErrOrigin) || !strings.Contains(err.Error(), "Sites") {
			t.Errorf("Sites %q: %v", sites, err)
		}
	}
}

// TestAttackSitePageRestartsAroundLimits plays a script in a listed site's page that asks
// Authorize in a loop and, refused, ends its session and starts it again for a fresh
// allowance. The site's pages share one allowance, so the restarts win nothing, and its starts
// are bounded too: the audit log is not filled either way. Before, each restart brought 100
// more answers (a review's flood got about 2,400 decisions a second into the log).
func TestAttackSitePageRestartsAroundLimits(t *testing.T) {
	r := startAgentConfig(t, agent.Config{Dir: t.TempDir(), Sites: []string{bank}}, "", false)
	api := r.httpURL + "/v1/agent/"
	started := time.Now()
	st := startSite(t, r, bank, "s", "alice")
	session, token := st.Body["session"].(string), st.Body["sessionToken"].(string)
	answered, restarts := 0, 0
	for range 1500 {
		got := post(t, api+"Authorize", token, fmt.Sprintf(`{"session":%q,"resource":"profile.read"}`, session))
		switch {
		case got.Code == 200:
			answered++
			continue
		case got.Code != 429 || got.Body["reason"] != agent.ReasonRateLimited:
			t.Fatalf("Authorize: %v", got)
		}
		if end := post(t, api+"EndSession", token, fmt.Sprintf(`{"session":%q}`, session)); end.Code != 200 {
			t.Fatalf("EndSession: %v", end)
		}
		again := startSite(t, r, bank, "s", "alice")
		if again.Code != 200 {
			if again.Code != 429 || again.Body["reason"] != agent.ReasonRateLimited {
				t.Fatalf("StartSession again: %v", again)
			}
			break // the site's starts are spent
		}
		restarts++
		token = again.Body["sessionToken"].(string)
	}
	elapsed := time.Since(started)
	allowance := agent.PageAuthorizeBurst + int(elapsed.Seconds()*agent.PageAuthorizePerSecond) + 1
	t.Logf("%d answered, %d restarts in %v", answered, restarts, elapsed.Round(time.Millisecond))
	if answered > allowance {
		t.Errorf("the page got %d Authorize calls answered in %v by starting its session %d times again, allowance %d",
			answered, elapsed.Round(time.Millisecond), restarts, allowance)
	}

	// Starting and ending sessions alone: bounded too.
	starts := 0
	for i := range 2 * agent.SiteStartBurst {
		got := startSite(t, r, bank, fmt.Sprintf("t-%d", i), "alice")
		if got.Code == 429 && got.Body["reason"] == agent.ReasonRateLimited {
			break
		}
		if got.Code != 200 {
			t.Fatalf("StartSession: %v", got)
		}
		starts++
		post(t, api+"EndSession", got.Body["sessionToken"].(string), fmt.Sprintf(`{"session":%q}`, got.Body["session"]))
	}
	if limit := agent.SiteStartBurst + int(time.Since(started).Seconds()*agent.SiteStartsPerSecond) + 1; restarts+1+starts > limit {
		t.Errorf("the site's pages started %d sessions in %v, allowance %d", restarts+1+starts, time.Since(started).Round(time.Millisecond), limit)
	}
	// The application is never bounded.
	if got := post(t, api+"StartSession", r.secret, `{"session":"app-1","user":"carol"}`); got.Code != 200 {
		t.Fatalf("the application's StartSession: %v", got)
	}
}
