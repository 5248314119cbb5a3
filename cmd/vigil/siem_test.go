package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilauth/vigil/siem"
)

// testHEC is a HEC-compatible endpoint that records the events it receives by metadata.uid.
func testHEC(t *testing.T, token string) (srv *httptest.Server, caFile string, got func() map[string]siem.Event) {
	var mu sync.Mutex
	events := map[string]siem.Event{}
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/services/collector/event" || r.Header.Get("Authorization") != "Splunk "+token {
			http.Error(w, `{"text":"Invalid token","code":4}`, http.StatusForbidden)
			return
		}
		sc := bufio.NewScanner(r.Body)
		for sc.Scan() {
			var env struct {
				Event json.RawMessage `json:"event"`
			}
			if err := json.Unmarshal(sc.Bytes(), &env); err != nil || siem.Validate(env.Event) != nil {
				http.Error(w, `{"text":"Invalid data format","code":6}`, http.StatusBadRequest)
				return
			}
			var ev siem.Event
			json.Unmarshal(env.Event, &ev)
			mu.Lock()
			events[ev.Metadata.UID] = ev
			mu.Unlock()
		}
		w.Write([]byte(`{"text":"Success","code":0}`))
	}))
	t.Cleanup(srv.Close)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, caFile, func() map[string]siem.Event {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]siem.Event{}
		for k, v := range events {
			out[k] = v
		}
		return out
	}
}

// TestSIEMSendLog replays a verified decision log to a local HTTPS collector: every decision
// and the gap arrive once or more, as valid OCSF; a tampered log sends nothing.
func TestSIEMSendLog(t *testing.T) {
	dir := t.TempDir()
	priv, pub := keygen(t, dir, "audit")
	logPath := writeTestLog(t, dir, priv, 10, true)
	srv, caFile, got := testHEC(t, "tok")
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("tok\n"), 0o600)
	spool := filepath.Join(dir, "spool")
	var out, errOut bytes.Buffer
	args := []string{"send", "--spool", spool, "--hec", srv.URL, "--token-file", tokenFile, "--ca", caFile, "--log", logPath, "--key", pub}
	if err := runSIEM(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("siem send: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "spooled 11 events") {
		t.Errorf("output %q, want 11 events spooled (10 decisions and a gap)", out.String())
	}
	events := got()
	gaps := 0
	for _, ev := range events {
		if ev.Unmapped != nil && ev.Unmapped.Vigil.Kind == "gap" {
			gaps++
		}
	}
	if len(events) != 11 || gaps != 1 {
		t.Fatalf("collector has %d events (%d gaps), want 11 (1)", len(events), gaps)
	}

	// A log altered after signing is refused before anything is sent.
	data, _ := os.ReadFile(logPath)
	os.WriteFile(logPath, bytes.Replace(data, []byte(`"trust":14`), []byte(`"trust":94`), 1), 0o600)
	args[2] = filepath.Join(dir, "spool2")
	err := runSIEM(context.Background(), args, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("siem send of a tampered log: %v", err)
	}
}

// TestSIEMSendSaysWhyDeliveryFails: a wrong token stops siem send at once with the collector's
// answer and the flag to check (it used to wait out --timeout, a minute here); a collector whose
// CA is not given is named on stderr while siem send retries.
func TestSIEMSendSaysWhyDeliveryFails(t *testing.T) {
	dir := t.TempDir()
	priv, pub := keygen(t, dir, "audit")
	logPath := writeTestLog(t, dir, priv, 3, false)
	srv, caFile, _ := testHEC(t, "tok")
	wrong := filepath.Join(dir, "wrong-token")
	os.WriteFile(wrong, []byte("not-the-token\n"), 0o600)
	for _, tc := range []struct {
		name, timeout string
		ca            []string
		want          []string // in the error and on stderr
	}{
		{"wrong token", "1m", []string{"--ca", caFile}, []string{"Invalid token", "--token-file"}},
		{"collector's CA not given", "1s", nil, []string{"certificate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"send", "--spool", filepath.Join(t.TempDir(), "spool"), "--hec", srv.URL, "--token-file", wrong,
				"--log", logPath, "--key", pub, "--timeout", tc.timeout}, tc.ca...)
			err := runSIEM(context.Background(), args, &out, &errOut)
			if err == nil {
				t.Fatal("siem send succeeded")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error()+errOut.String(), want) {
					t.Fatalf("siem send: %v; stderr %q, want them to name %q", err, errOut.String(), want)
				}
			}
			if errors.Is(err, context.DeadlineExceeded) && tc.timeout == "1m" {
				t.Fatalf("siem send waited out --timeout: %v", err)
			}
		})
	}
}

// TestSIEMSendFlagErrors checks that each mistake is refused naming the flag.
func TestSIEMSendFlagErrors(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte("t"), 0o600)
	notPEM := filepath.Join(dir, "ca.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	tests := []struct {
		args  []string
		wants string
	}{
		{[]string{"send"}, "--spool"},
		{[]string{"send", "--spool", dir}, "--hec, --syslog"},
		{[]string{"send", "--spool", dir, "--hec", "https://h"}, "--token-file"},
		{[]string{"send", "--spool", dir, "--syslog", "h:6514", "--token-file", tok}, "--token-file without --hec"},
		{[]string{"send", "--spool", dir, "--hec", "http://h:8088", "--token-file", tok}, "--hec"},
		{[]string{"send", "--spool", dir, "--hec", "https://h", "--token-file", filepath.Join(dir, "missing")}, "--token-file"},
		{[]string{"send", "--spool", dir, "--syslog", "h"}, "--syslog"},
		{[]string{"send", "--spool", dir, "--syslog", "h:6514", "--ca", notPEM}, "--ca"},
		{[]string{"send", "--spool", dir, "--syslog", "h:6514", "--key", tok}, "--log"},
		{[]string{"send", "--spool", dir, "--syslog", "h:6514", "--log", filepath.Join(dir, "missing")}, "--log"},
		{[]string{"send", "--spool", dir, "--syslog", "h:6514", "--client-cert", tok}, "--client-cert and --client-key"},
		{[]string{"send", "--spool", dir, "--syslog", "h:6514", "--client-cert", tok, "--client-key", tok}, "--client-cert/--client-key"},
		{[]string{"send", "--spool", filepath.Join(dir, "typo"), "--hec", "https://h", "--token-file", tok}, "--spool " + filepath.Join(dir, "typo") + " is not a spool directory"},
		{[]string{"frobnicate"}, "unknown subcommand"},
	}
	for _, tc := range tests {
		var out bytes.Buffer
		err := runSIEM(context.Background(), tc.args, &out, &out)
		if err == nil || !strings.Contains(err.Error(), tc.wants) {
			t.Errorf("vigil siem %s: %v, want an error naming %q", strings.Join(tc.args, " "), err, tc.wants)
		}
	}
}

// TestSIEMCheck checks a spool segment the agent test's kind of events fill, and a broken line.
func TestSIEMCheck(t *testing.T) {
	dir := t.TempDir()
	good := siem.FromGap(siem.Source{}, time.Now(), 3, "test", 0)
	line, _ := siem.AppendEvent(nil, &good)
	path := filepath.Join(dir, "events.jsonl")
	os.WriteFile(path, append(append([]byte{}, line...), line...), 0o600)
	var out bytes.Buffer
	if err := runSIEM(context.Background(), []string{"check", "--file", path}, &out, &out); err != nil || !strings.Contains(out.String(), "2 events") {
		t.Fatalf("check: %v %s", err, out.String())
	}
	broken := bytes.Replace(line, []byte(`"class_uid":2004`), []byte(`"class_uid":2003`), 1)
	os.WriteFile(path, append(append([]byte{}, line...), broken...), 0o600)
	err := runSIEM(context.Background(), []string{"check", "--file", path}, &out, &out)
	if !errors.Is(err, siem.ErrInvalidEvent) || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("check of a broken event: %v", err)
	}

	// Events as a HEC collector receives them: in HEC's envelope, one per line.
	envelope := func(event []byte) []byte {
		b, _ := json.Marshal(map[string]any{"time": 1764000000.25, "source": "vigil", "sourcetype": "ocsf", "event": json.RawMessage(bytes.TrimSpace(event))})
		return append(b, '\n')
	}
	os.WriteFile(path, slices.Concat(line, envelope(line), envelope(line)), 0o600)
	out.Reset()
	if err := runSIEM(context.Background(), []string{"check", "--file", path}, &out, &out); err != nil || !strings.Contains(out.String(), "3 events") || !strings.Contains(out.String(), "2 in HEC envelopes") {
		t.Fatalf("check of events in HEC envelopes: %v %s", err, out.String())
	}
	os.WriteFile(path, slices.Concat(envelope(line), envelope(broken)), 0o600)
	err = runSIEM(context.Background(), []string{"check", "--file", path}, &out, &out)
	if !errors.Is(err, siem.ErrInvalidEvent) || !strings.Contains(err.Error(), "line 2: in its HEC envelope") {
		t.Fatalf("check of a broken event in a HEC envelope: %v", err)
	}
}
