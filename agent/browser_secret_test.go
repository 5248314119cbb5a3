package agent_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// secretFieldsPage holds fields whose typing vigil.js must not capture, in the forms real pages
// give them, and one plain field that it must.
const secretFieldsPage = `<!doctype html><html><body>
<p><input id="plain"></p>
<p><input id="pw" type="password"></p>
<p><input id="shown" type="password"></p>
<p><x-password id="comp"></x-password></p>
<p><input id="ccname" autocomplete="billing cc-name"></p>
<p><input id="otp" autocomplete="One-Time-Code"></p>
<p><x-secret id="sec"></x-secret></p>
<script>
customElements.define("x-password", class extends HTMLElement {
  constructor() { super(); this.attachShadow({mode: "open"}).innerHTML = '<input type="password">'; }
});
customElements.define("x-secret", class extends HTMLElement {
  constructor() { super(); this.attachShadow({mode: "open"}).innerHTML = '<div data-vigil-ignore><input id="s"></div>'; }
});
</script>
<script src="AGENT/vigil.js"></script>
</body></html>`

// TestAttackCaptureOfSecretFields: vigil.js skipped password fields and fields marked
// sensitive only when the event's target at the document was the field itself, and read
// autocomplete as one word. A password field inside a web component (as Shoelace's and
// Material's render theirs), a data-vigil-ignore inside one, a password shown by a toggle
// (its type switched to text), and autocomplete="billing cc-name" or "One-Time-Code" were
// all captured and, once enrolled, kept in the agent's state (found by review). Each is typed
// into in a real chromium here, and nothing of it may reach the agent; the plain field must.
func TestAttackCaptureOfSecretFields(t *testing.T) {
	exe := chromium(t)
	r := startAgent(t, t.TempDir(), "", false)
	body, _ := json.Marshal(map[string]string{"session": "s1", "user": "alice"})
	req, _ := http.NewRequest(http.MethodPost, r.httpURL+"/v1/agent/StartSession", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+r.secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var started struct{ SessionToken string }
	err = json.NewDecoder(resp.Body).Decode(&started)
	resp.Body.Close()
	if err != nil || started.SessionToken == "" {
		t.Fatalf("StartSession: %v, token %q", err, started.SessionToken)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, strings.ReplaceAll(secretFieldsPage, "AGENT", r.httpURL))
	})}
	go srv.Serve(lis)
	t.Cleanup(func() { srv.Close() })

	b := startBrowser(t, exe, 900, 700)
	b.do(chromedp.Navigate("http://" + lis.Addr().String() + "/"))
	var ok bool
	b.eval(fmt.Sprintf(`Vigil.start({session: "s1", token: %q}).then(() => true)`, started.SessionToken), &ok)
	// The toggle shows the password after the page has loaded, as a "show password" button does.
	b.eval(`document.getElementById("shown").focus(); document.getElementById("shown").type = "text"; true`, &ok)
	captured := func(focus string) int {
		t.Helper()
		var before, after int
		b.eval(`Vigil.flush().then(() => Vigil.sent() + Vigil.pending())`, &before)
		b.eval(focus+"; true", &ok)
		keys := []replayKey{{0, 80 * time.Millisecond, 'H'}, {150 * time.Millisecond, 230 * time.Millisecond, 'U'},
			{300 * time.Millisecond, 370 * time.Millisecond, 'N'}, {450 * time.Millisecond, 540 * time.Millisecond, 'T'}}
		b.typeKeys(keys, time.Time{})
		b.eval(`Vigil.flush().then(() => Vigil.sent() + Vigil.pending())`, &after)
		return after - before
	}
	for _, f := range []struct{ name, focus string }{
		{"type=password", `document.getElementById("pw").focus()`},
		{"a password shown by a toggle", `document.getElementById("shown").focus()`},
		{"type=password inside a web component", `document.getElementById("comp").shadowRoot.querySelector("input").focus()`},
		{`autocomplete="billing cc-name"`, `document.getElementById("ccname").focus()`},
		{`autocomplete="One-Time-Code"`, `document.getElementById("otp").focus()`},
		{"data-vigil-ignore inside a web component", `document.getElementById("sec").shadowRoot.getElementById("s").focus()`},
	} {
		if n := captured(f.focus); n != 0 {
			t.Errorf("%s: %d keystrokes captured", f.name, n)
		}
	}
	var typed string
	b.eval(`document.getElementById("comp").shadowRoot.querySelector("input").value`, &typed)
	if strings.ToLower(typed) != "hunt" {
		t.Fatalf("the web component's password field holds %q: the keys did not go in, and the test shows nothing", typed)
	}
	if n := captured(`document.getElementById("plain").focus()`); n != 4 {
		t.Fatalf("the plain field: %d keystrokes captured, want 4", n)
	}
	b.screenshot("secret-fields")
}
