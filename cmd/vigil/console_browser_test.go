package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigilauth/vigil/console"
	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/dp"
)

// consoleChromium finds the browser; in CI (VIGIL_CHROMIUM set by .ci/run) its absence fails
// the test instead of skipping it.
func consoleChromium(t *testing.T) string {
	path := os.Getenv("VIGIL_CHROMIUM")
	required := path != ""
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(path); err != nil {
		if required {
			t.Fatalf("VIGIL_CHROMIUM=%s: %v", path, err)
		}
		t.Skipf("chromium not found at %s (apt-get install chromium, or set VIGIL_CHROMIUM): skipping the browser test", path)
	}
	return path
}

// runSmallDemo runs `vigil demo` in-process until its first round is charged to the model's
// ledger (or the demo ends), and returns the organisation's directory.
func runSmallDemo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runDemo(ctx, []string{"--devices", "4", "--rounds", "1", "--updaters", "2", "--dir", dir}, io.Discard, io.Discard)
	}()
	ledger := filepath.Join(dir, "state", "model.ledger")
	deadline := time.Now().Add(5 * time.Minute)
	for {
		select {
		case err := <-done:
			cancel()
			if err != nil {
				t.Fatalf("demo: %v", err)
			}
			return dir
		case <-time.After(200 * time.Millisecond):
		}
		// A demo that has not ended after two minutes but has charged its round has saved
		// what the console reads; what it still does (its report) is not this test's subject.
		if snap, err := dp.ReadLedger(ledger); err == nil && len(snap.Entries) > 0 && time.Now().After(deadline.Add(-3*time.Minute)) {
			cancel()
			<-done
			return dir
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatal("the demo charged no round in 5 minutes")
		}
	}
}

// TestConsoleBrowser: a real browser (headless chromium, driven by chromedp) reads every page
// of `vigil console` serving a demo organisation's state directory and ledger. The privacy
// page's epsilon is the ledger's; the devices page lists the demo's devices; a client without
// an operator's certificate is refused at the handshake. Each page's screenshot is an artefact.
// Chromium reads the console through startConsole's proxy, which holds an operator's
// certificate.
func TestConsoleBrowser(t *testing.T) {
	tab := newBrowser(t)
	org := runSmallDemo(t)
	ledgerPath := filepath.Join(org, "state", "model.ledger")
	snap, err := dp.ReadLedger(ledgerPath)
	if err != nil {
		t.Fatal(err)
	}
	spent, _ := snap.Spent()
	composed, _, err := dp.ComposeLedgers(snap.Budget.Delta, snap)
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	priv, pub := keygen(t, dir, "audit")
	logPath := writeTestLog(t, dir, priv, 5, false)
	reviewer, err := sig.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	reviewerKey, reviewerPub := filepath.Join(dir, "reviewer.key"), filepath.Join(dir, "reviewer.pub")
	if err := sig.WritePrivateKeyFile(reviewerKey, reviewer); err != nil {
		t.Fatal(err)
	}
	if err := sig.WritePublicKeyFile(reviewerPub, reviewer.Public()); err != nil {
		t.Fatal(err)
	}
	tradeoffPath := consoleTradeoff(t, dir)
	tradeoff, err := console.ReadTradeoff(tradeoffPath)
	if err != nil {
		t.Fatal(err)
	}
	c := startConsole(t, "--log", logPath, "--key", pub, "--state", filepath.Join(org, "state"), "--ledger", ledgerPath,
		"--root", filepath.Join(org, "regions", "eu", "root", "1.root.json"),
		"--region", filepath.Join(org, "regions", "eu"), "--region", filepath.Join(org, "regions", "us"),
		"--report-dir", org, "--report-key", reviewerKey, "--tradeoff", tradeoffPath)

	// Without a certificate: no page, not even an error page.
	anon := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: c.roots}}}
	if resp, err := anon.Get(c.base + "privacy"); err == nil {
		resp.Body.Close()
		t.Fatalf("a client without a certificate got %d", resp.StatusCode)
	}

	pages := []struct {
		path  string
		wants []string
	}{
		{"/rounds", []string{"Rounds", "keystroke-ae", fmt.Sprintf("%d", snap.Entries[0].Round)}},
		{"/privacy", []string{fmt.Sprintf("epsilon %.4g spent of %g", spent, snap.Budget.Epsilon), fmt.Sprintf("in %d rounds", len(snap.Entries)), "Download the signed privacy report",
			"Accuracy against epsilon", "∞ (no noise)", fmt.Sprintf("%.2f%%", 100*tradeoff.Rows[0].EERMean),
			fmt.Sprintf("Composed across the 1 models' ledgers shown: epsilon %.4g at delta %g", composed, snap.Budget.Delta)}},
		{"/trustees", []string{"Trustees"}},
		{"/keyepochs", []string{"Key epochs", "Root of trust version 1", "No key-epoch document given"}},
		{"/releases", []string{"Everything verifies", "keystroke-ae version", "pointer expires in", "regions/us"}},
		{"/devices", []string{"4 enrolled, 0 removed", "device-001", "device-004"}},
		{"/decisions", []string{"verifies"}},
	}
	for i, p := range pages {
		text := visit(t, tab, c.front+p.path, fmt.Sprintf("console-%02d-%s", i+1, strings.TrimPrefix(p.path, "/")))
		for _, w := range p.wants {
			if !strings.Contains(text, w) {
				t.Errorf("%s lacks %q:\n%s", p.path, w, text)
			}
		}
	}
	checkTradeoffPlot(t, tab, c.front, tradeoff, snap.Subject, spent)

	// The download button's target: the report and its signature, which verify under the
	// reviewer's key.
	resp, err := http.Get(c.front + "/privacy/report")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Disposition") == "" {
		t.Fatalf("report download: %d %v", resp.StatusCode, resp.Header)
	}
	got := map[string]string{}
	tr := tar.NewReader(resp.Body)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, filepath.Base(h.Name))
		data, _ := io.ReadAll(tr)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		got[h.Name] = path
	}
	if err := runPrivacyVerifyReport(context.Background(), []string{"--html", got["privacy-report.html"], "--public-key", reviewerPub}, io.Discard, io.Discard); err != nil {
		t.Errorf("downloaded report (%v): %v", got, err)
	}
	if page, _ := os.ReadFile(got["privacy-report.html"]); !strings.Contains(string(page), fmt.Sprintf("%.6g", spent)) { // as the report prints it
		t.Errorf("the report does not show the ledger's epsilon %.6g", spent)
	}
	if spent <= 0 {
		t.Errorf("the demo's ledger shows epsilon %g spent: no private round was charged", spent)
	}
}

// consoleTradeoff writes the accuracy-against-epsilon file the privacy page plots: `vigil
// privacy tradeoff --json` on 20 Aalto participants when the data set is here, else the same
// output for tradeoffResults' figures.
func consoleTradeoff(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "tradeoff.json")
	var out bytes.Buffer
	if _, err := os.Stat(evalAaltoDir); err == nil {
		if err := runPrivacyTradeoff(context.Background(), []string{"--data", evalAaltoDir, "--users", "20", "--epsilons", "1,2,4,8,inf",
			"--png", "", "--json"}, &out, io.Discard); err != nil {
			t.Fatalf("vigil privacy tradeoff: %v", err)
		}
	} else {
		t.Logf("Aalto keystroke data not at %s: plotting the README's figures", evalAaltoDir)
		if err := evalWriteJSON(&out, tradeoffJSON(tradeoffResults(), "")); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkTradeoffPlot reads the privacy page's plot in the browser: it is laid out, every point's
// tooltip gives the file's value and interval, the ledger's epsilon is marked, and the metric
// links switch what it plots. Screenshots of both are artefacts.
func checkTradeoffPlot(t *testing.T, tab context.Context, front string, tr *console.Tradeoff, subject string, spent float64) {
	t.Helper()
	plot := func(url, shot string) (titles []string, text string) {
		visit(t, tab, url, shot)
		ctx, cancel := context.WithTimeout(tab, time.Minute)
		defer cancel()
		width, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.querySelector("svg.plot").getBoundingClientRect().width`))
		if err != nil || width < 400 {
			t.Errorf("%s: the plot is %v wide (%v)", url, width, err)
		}
		if titles, err = chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("svg.plot g.point > title"), e => e.textContent)`)); err != nil {
			t.Fatal(err)
		}
		if text, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("svg.plot").textContent`)); err != nil {
			t.Fatal(err)
		}
		return titles, text
	}
	rate := func(v float64) string { return fmt.Sprintf("%.2f%%", 100*v) }
	titles, text := plot(front+"/privacy?metric=eer#tradeoff", "console-02b-privacy-tradeoff")
	if len(titles) != 2*len(tr.Rows) {
		t.Errorf("%d points with a tooltip, want %d (two series of %d budgets): %q", len(titles), 2*len(tr.Rows), len(tr.Rows), titles)
	}
	for _, r := range tr.Rows {
		want := fmt.Sprintf("mean per-user EER at epsilon %s: %s (95%% interval %s to %s)", r.Epsilon, rate(r.EERMean), rate(r.EERMeanCI.Lo), rate(r.EERMeanCI.Hi))
		if !strings.Contains(strings.Join(titles, "\n"), want) {
			t.Errorf("no tooltip %q among %q", want, titles)
		}
	}
	if want := fmt.Sprintf("%s now: %.3g", subject, spent); !strings.Contains(text, want) {
		t.Errorf("the plot does not mark the ledger's epsilon (%q):\n%s", want, text)
	}
	titles, _ = plot(front+"/privacy?metric=eer-pooled#tradeoff", "console-02c-privacy-tradeoff-pooled")
	if len(titles) != len(tr.Rows) || !strings.HasPrefix(titles[0], "pooled EER at epsilon ") {
		t.Errorf("the pooled EER link plots %q", titles)
	}
}
