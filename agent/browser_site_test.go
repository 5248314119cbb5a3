package agent_test

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigilauth/vigil/agent"
	"github.com/vigilauth/vigil/agent/attest"
)

// sitePage is a web site's page served from its own origin: it loads the agent's capture
// script, starts its session itself, registers the device's key with its server, and asks its
// server for a nonce before each transfer; the server decides on the signed decision alone.
const sitePage = `<!doctype html><html><head><title>Bank</title>
<style>body{font:16px sans-serif;margin:2em}textarea{width:40em;height:6em}#result{margin-top:1em;font-weight:bold}</style>
<script src="%s/vigil.js"></script></head><body>
<h1>Bank (a site served from elsewhere)</h1>
<p>Origin <code id="origin"></code>, session <code id="session">starting</code></p>
<textarea id="note"></textarea><br><button id="transfer">Transfer</button>
<div id="result"></div>
<script>
document.getElementById("origin").textContent = location.origin;
function show(r) { window.lastResult = r; document.getElementById("result").textContent = JSON.stringify(r); document.body.dataset.result = "1"; }
Vigil.start({session: "web-1", user: "alice"}).then(function (st) {
  document.getElementById("session").textContent = st.session;
  return fetch("/register", {method: "POST", body: JSON.stringify({key: st.siteKey})});
}).then(function () { document.body.dataset.started = "1"; },
  function (err) { show({started: false, reason: err.reason, error: err.message}); });
document.getElementById("transfer").onclick = function () {
  delete document.body.dataset.result;
  fetch("/nonce").then(function (r) { return r.text(); }).then(function (nonce) {
    return Vigil.authorize("transfer", {nonce: nonce});
  }).then(function (d) {
    window.lastAttestation = d.attestation;
    return fetch("/transfer", {method: "POST", body: JSON.stringify(d.attestation)}).then(function (r) { return r.json(); })
      .then(function (server) { server.agentSaid = d.allow; show(server); });
  }).catch(function (err) { show({error: err.message, reason: err.reason}); });
};
</script></body></html>`

// siteServer is the site's server: the device key kept at registration, the nonces issued.
type siteServer struct {
	origin   string
	mu       sync.Mutex
	signedIn time.Time // alice's sign-in: the page served
	key      []byte
	nonces   map[string]bool
}

type siteVerdict struct {
	Verified bool   `json:"verified"`
	Allow    bool   `json:"allow"`
	Outcome  string `json:"outcome"`
	Error    string `json:"error"`
}

func (s *siteServer) handler(agentURL string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.signedIn = time.Now()
		s.mu.Unlock()
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, sitePage, agentURL)
	})
	mux.HandleFunc("POST /register", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Key []byte }
		json.NewDecoder(r.Body).Decode(&req)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.key == nil { // trust on first use, as a passkey's registration
			s.key = req.Key
		}
	})
	mux.HandleFunc("GET /nonce", func(w http.ResponseWriter, r *http.Request) {
		n := rand.Text()
		s.mu.Lock()
		s.nonces[n] = true
		s.mu.Unlock()
		fmt.Fprint(w, n)
	})
	mux.HandleFunc("POST /transfer", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(s.verify(r))
	})
	return mux
}

// verify is the server's whole check: the signed decision, for its own origin, session,
// resource and one of its unused nonces (spent whatever the outcome).
func (s *siteServer) verify(r *http.Request) siteVerdict {
	var att struct{ Payload, Signature []byte }
	if err := json.NewDecoder(r.Body).Decode(&att); err != nil {
		return siteVerdict{Error: err.Error()}
	}
	var claimed struct{ Nonce string }
	json.Unmarshal(att.Payload, &claimed)
	s.mu.Lock()
	key, fresh, signedIn := s.key, s.nonces[claimed.Nonce], s.signedIn
	delete(s.nonces, claimed.Nonce)
	s.mu.Unlock()
	if !fresh {
		return siteVerdict{Error: "nonce not issued or already used"}
	}
	d, err := attest.Verify(key, att.Payload, att.Signature, attest.Expect{Origin: s.origin, Session: "web-1", User: "alice", Resource: "transfer", Nonce: claimed.Nonce, SignedIn: signedIn})
	if err != nil {
		return siteVerdict{Error: err.Error()}
	}
	return siteVerdict{Verified: true, Allow: d.Allow, Outcome: d.Outcome}
}

// TestBrowserSite: a site served from another origin, listed with --site, starts its session
// from its page in a real browser (CORS, no install secret), its user types, and its server
// takes the transfer on the decision the agent signed; the same decision replayed is refused,
// and the same page from an unlisted origin cannot start a session.
func TestBrowserSite(t *testing.T) {
	exe := chromium(t)
	site := &siteServer{nonces: map[string]bool{}}
	siteHTTP := httptest.NewUnstartedServer(nil)
	site.origin = "http://" + siteHTTP.Listener.Addr().String()
	r := startAgentConfig(t, agent.Config{Dir: t.TempDir(), Sites: []string{site.origin}}, "", false)
	siteHTTP.Config.Handler = site.handler(r.httpURL)
	siteHTTP.Start()
	defer siteHTTP.Close()
	unlisted := httptest.NewServer((&siteServer{nonces: map[string]bool{}}).handler(r.httpURL))
	defer unlisted.Close()

	b := startBrowser(t, exe, 1000, 600)

	b.do(chromedp.Navigate(site.origin+"/"), chromedp.WaitReady(chromedp.CSS(`body[data-started]`)))
	site.mu.Lock()
	registered := site.key != nil
	site.mu.Unlock()
	if !registered {
		t.Fatal("the page did not register the device's key with its server")
	}
	b.do(chromedp.Focus(chromedp.ID("note")), chromedp.SendKeys(chromedp.ID("note"), "please transfer the usual amount"))
	var sent int
	b.eval(`Vigil.flush().then(function () { return Vigil.sent(); })`, &sent)
	if sent < 20 {
		t.Fatalf("the agent accepted %d of the page's key events", sent)
	}
	b.screenshot("site-typed")
	b.click("transfer")
	b.do(chromedp.WaitReady(chromedp.CSS(`body[data-result]`)))
	var got struct {
		siteVerdict
		AgentSaid bool `json:"agentSaid"`
	}
	b.eval(`window.lastResult`, &got)
	b.screenshot("site-transfer")
	if !got.Verified || got.Allow != got.AgentSaid || got.Outcome == "" {
		t.Fatalf("the site's server on the agent's signed decision: %+v", got)
	}
	t.Logf("the site's server verified the agent's decision: allow %v, outcome %s", got.Allow, got.Outcome)

	// The attacker replays the signed decision the page received, for a second transfer.
	var att json.RawMessage
	b.eval(`JSON.stringify(window.lastAttestation)`, &att)
	var body string
	json.Unmarshal(att, &body)
	resp, err := http.Post(site.origin+"/transfer", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var replay siteVerdict
	json.NewDecoder(resp.Body).Decode(&replay)
	resp.Body.Close()
	if replay.Verified {
		t.Fatal("the site's server took a replayed decision")
	}

	// The same page from an origin the device's owner did not list.
	b.do(chromedp.Navigate(unlisted.URL+"/"), chromedp.WaitReady(chromedp.CSS(`body[data-result]`)))
	var refused struct {
		Started *bool
		Reason  string
	}
	b.eval(`window.lastResult`, &refused)
	b.screenshot("site-unlisted")
	if refused.Reason != agent.ReasonNotASite {
		t.Fatalf("an unlisted site's page starting a session: %+v", refused)
	}
}
