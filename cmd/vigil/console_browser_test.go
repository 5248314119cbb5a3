package main

import (
	"archive/tar"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

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
//
// Chromium does not hold the operator's certificate (that needs an NSS database and a policy
// to pick it): it reads the console through a loopback proxy that does, so the console itself
// is served exactly as in production, behind mutual TLS.
func TestConsoleBrowser(t *testing.T) {
	exe := consoleChromium(t)
	shots := os.Getenv("VIGIL_SCREENSHOTS")
	if shots == "" {
		shots = t.ArtifactDir()
	}
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
	caFile, issue := testCA(t, dir, "operators")
	certFile, keyFile := writeKeyPair(t, dir, "console", issue("console", true))
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runConsole(ctx, []string{"--listen", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile, "--client-ca", caFile,
			"--log", logPath, "--key", pub, "--state", filepath.Join(org, "state"), "--ledger", ledgerPath,
			"--root", filepath.Join(org, "regions", "eu", "root", "1.root.json"),
			"--region", filepath.Join(org, "regions", "eu"), "--region", filepath.Join(org, "regions", "us"),
			"--report-dir", org, "--report-key", reviewerKey}, &out, io.Discard)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("console: %v", err)
		}
	}()
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == ""; {
		if m := regexp.MustCompile(`https://\S+/`).FindString(out.String()); m != "" {
			base = m
		} else if time.Now().After(deadline) {
			t.Fatal("console never said where it listens")
		}
		time.Sleep(10 * time.Millisecond)
	}
	caPEM, _ := os.ReadFile(caFile)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)

	// Without a certificate: no page, not even an error page.
	anon := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	if resp, err := anon.Get(base + "privacy"); err == nil {
		resp.Body.Close()
		t.Fatalf("a client without a certificate got %d", resp.StatusCode)
	}

	target, _ := url.Parse(base)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{issue("operator-1", false)}}}
	front := httptest.NewServer(proxy)
	defer front.Close()

	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1200, 900))
	defer cancelAlloc()
	bctx, cancelTab := chromedp.NewContext(actx)
	defer cancelTab()
	// The first run starts the browser and must not carry a timeout: it would stop the browser.
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	pages := []struct {
		path  string
		wants []string
	}{
		{"/rounds", []string{"Rounds", "keystroke-ae", fmt.Sprintf("%d", snap.Entries[0].Round)}},
		{"/privacy", []string{fmt.Sprintf("epsilon %.4g spent of %g", spent, snap.Budget.Epsilon), fmt.Sprintf("in %d rounds", len(snap.Entries)), "Download the signed privacy report",
			fmt.Sprintf("Composed across the 1 ledgers shown: epsilon %.4g at delta %g", composed, snap.Budget.Delta)}},
		{"/trustees", []string{"Trustees"}},
		{"/releases", []string{"Everything verifies", "keystroke-ae version", "pointer expires in", "regions/us"}},
		{"/devices", []string{"4 enrolled, 0 removed", "device-001", "device-004"}},
		{"/decisions", []string{"verifies"}},
	}
	for i, p := range pages {
		tctx, cancel := context.WithTimeout(bctx, time.Minute)
		if err := chromedp.Do(tctx, chromedp.Navigate(front.URL+p.path), chromedp.WaitReady(chromedp.CSS("main"))); err != nil {
			cancel()
			t.Fatalf("%s: %v", p.path, err)
		}
		text, err := chromedp.Run(tctx, chromedp.Evaluate[string]("document.body.innerText"))
		if err != nil {
			cancel()
			t.Fatalf("%s: %v", p.path, err)
		}
		png, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
		cancel()
		if err != nil {
			t.Fatalf("%s: screenshot: %v", p.path, err)
		}
		shot := filepath.Join(shots, fmt.Sprintf("console-%02d-%s.png", i+1, strings.TrimPrefix(p.path, "/")))
		if err := os.WriteFile(shot, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s", shot)
		for _, w := range p.wants {
			if !strings.Contains(text, w) {
				t.Errorf("%s lacks %q:\n%s", p.path, w, text)
			}
		}
	}
	// The download button's target: the report and its signature, which verify under the
	// reviewer's key.
	resp, err := http.Get(front.URL + "/privacy/report")
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
	if page, _ := os.ReadFile(got["privacy-report.html"]); !strings.Contains(string(page), fmt.Sprintf("%.4g", spent)) {
		t.Errorf("the report does not show the ledger's epsilon %.4g", spent)
	}
	if spent <= 0 {
		t.Errorf("the demo's ledger shows epsilon %g spent: no private round was charged", spent)
	}
}
