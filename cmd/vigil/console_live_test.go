package main

import (
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
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// consoleServer is `vigil console` run in-process for a browser test, behind mutual TLS, and a
// loopback proxy in front of it that presents an operator's client certificate. Chromium does
// not hold the certificate (that needs an NSS database and a policy to pick it), so it reads
// the console through the proxy, and the console itself is served exactly as in production.
type consoleServer struct {
	base  string // the console's own https:// URL, ending in /
	front string // the proxy's URL, for the browser
	roots *x509.CertPool
}

// startConsole runs `vigil console` with args besides its TLS flags until the test ends.
func startConsole(t *testing.T, args ...string) *consoleServer {
	t.Helper()
	dir := t.TempDir()
	caFile, issue := testCA(t, dir, "operators")
	certFile, keyFile := writeKeyPair(t, dir, "console", issue("console", true))
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runConsole(ctx, append([]string{"--listen", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile, "--client-ca", caFile}, args...), &out, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("console: %v", err)
		}
	})
	s := &consoleServer{}
	for deadline := time.Now().Add(10 * time.Second); s.base == ""; time.Sleep(10 * time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("console stopped: %v", err)
		default:
		}
		s.base = regexp.MustCompile(`https://\S+/`).FindString(out.String())
		if s.base == "" && time.Now().After(deadline) {
			t.Fatal("console never said where it listens")
		}
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	s.roots = x509.NewCertPool()
	s.roots.AppendCertsFromPEM(caPEM)
	target, _ := url.Parse(s.base)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.roots, Certificates: []tls.Certificate{issue("operator-1", false)}}}
	front := httptest.NewServer(proxy)
	t.Cleanup(front.Close)
	s.front = front.URL
	return s
}

// page fetches a console page through the proxy, for polling without the browser.
func (s *consoleServer) page(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get(s.front + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v\n%s", path, resp.StatusCode, err, body)
	}
	return string(body)
}

// newBrowser starts headless chromium (consoleChromium) for the test and returns a tab.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	exe := consoleChromium(t)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1200, 900))
	tab, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	// The first run starts the browser and must not carry a timeout: it would stop the browser.
	if err := chromedp.Do(tab, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	return tab
}

// screenshotDir is where browser tests write their screenshots: $VIGIL_SCREENSHOTS, or the
// test's artefact directory.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("VIGIL_SCREENSHOTS"); d != "" {
		return d
	}
	return t.ArtifactDir()
}

// visit loads url in the tab, writes a screenshot of the whole page as name.png in the
// screenshot directory, and returns the text the page shows.
func visit(t *testing.T, tab context.Context, url, name string) string {
	t.Helper()
	tctx, cancel := context.WithTimeout(tab, time.Minute)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("main"))); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	text, err := chromedp.Run(tctx, chromedp.Evaluate[string]("document.body.innerText"))
	if err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	png, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("%s: screenshot: %v", url, err)
	}
	shot := filepath.Join(screenshotDir(t), name+".png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", shot)
	return text
}

// TestConsoleBrowserLiveTrustees: the console against a running organisation, every part its
// own process as in TestOperatorWalkthrough (enrolment authority, three trustees, a paced
// coordinator with its Admin API, three devices). Headless chromium reads the trustees page
// through `vigil console --operator`: all three trustees up; the key epochs page: the
// organisation's key epoch, each trustee's signature verified under root.json's trustees role
// and named from the ceremony's roster; the rounds page: the time of each stage of the rounds.
// Then one trustee is stopped, and the trustees and key epochs pages say it is down while
// rounds go on with the other two. Before that, the releases and devices pages show which release
// the devices reported installing. Screenshots of each are artefacts.
func TestConsoleBrowserLiveTrustees(t *testing.T) {
	if testing.Short() && os.Getenv("VIGIL_CHROMIUM") == "" {
		t.Skip("starts several processes")
	}
	tab := newBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	orgDir, dir, region := org(t), t.TempDir(), t.TempDir()
	enrolAddr := startAuthority(t, ctx, orgDir)
	trustees := map[string]*exec.Cmd{}
	var trusteeFlags []string
	for _, id := range []string{"privacy-office", "security", "audit"} {
		tdir := filepath.Join(orgDir, "trustees", id)
		cmd, lines, _ := startProcess(t, ctx, "trustee", "serve", "--dir", tdir, "--pki-dir", filepath.Join(tdir, "tls"),
			"--root", filepath.Join(orgDir, "root.json"), "--min-contributors", "3", "--listen", "127.0.0.1:0", "--log-level", "warn")
		line := lines.wait(t, "trustee "+id)
		trustees[id] = cmd
		trusteeFlags = append(trusteeFlags, "--trustee", id+"="+line[strings.LastIndex(line, " ")+1:])
		go func() {
			for range lines.lines {
			}
		}()
	}
	// The coordinator must outlive the test: at the default budget (epsilon 10) three rounds,
	// about 4 s, spend it and the coordinator exits, and a loaded machine took longer than that
	// to reach the releases page, which then could not read the coordinator's status. A budget
	// the rounds of a few minutes cannot spend, on the coordinator and on the devices (whose own
	// ledgers would stop them contributing), keeps it running until the test ends.
	// No --metrics-listen: its default is the fixed port 9464, which may be taken on a test host.
	args := []string{"coordinator", "--org", orgDir, "--dir", dir, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--metrics-listen", "",
		"--region", "eu=" + region, "--devices-per-round", "3", "--min-updates", "3", "--round-interval", "1s", "--epsilon", "1000", "--log-level", "warn"}
	_, lines, _ := startProcess(t, ctx, append(args, trusteeFlags...)...)
	addr := lines.wait(t, "coordinator listening on ")
	admin := strings.Fields(lines.wait(t, "operators' API on "))[0]
	go func() {
		for range lines.lines {
		}
	}()
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("d%d", i)
		_, out, _ := startProcess(t, ctx, append([]string{"client", "--coordinator", addr, "--device-id", id, "--dir", filepath.Join(t.TempDir(), id),
			"--root", filepath.Join(orgDir, "root.json"), "--region-store", region, "--poll", "200ms", "--synthetic-seed", fmt.Sprint(i),
			"--epsilon", "1000", "--log-level", "error"}, enrolFlags(t, orgDir, enrolAddr, id)...)...)
		go func() {
			for range out.lines {
			}
		}()
	}
	if err := run(ctx, []string{"pki", "operator", "--dir", filepath.Join(orgDir, "pki"), "--id", "alice"}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}

	logDir := t.TempDir()
	priv, pub := keygen(t, logDir, "audit")
	c := startConsole(t, "--log", writeTestLog(t, logDir, priv, 3, false), "--key", pub,
		"--operator", filepath.Join(orgDir, "operators", "alice"), "--coordinator", admin,
		"--root", filepath.Join(orgDir, "root.json"), "--key-epoch", filepath.Join(orgDir, "key-epoch.json"), "--roster", filepath.Join(orgDir, "roster.bin"))

	health := func(page, id string) string {
		m := regexp.MustCompile(`<td>` + id + `</td>\n<td>(up|down: [^<]*|unfit: [^<]*)</td>`).FindStringSubmatch(page)
		if m == nil {
			return ""
		}
		return m[1]
	}
	// Wait until the trustees have served a round that was published, so every stage is timed.
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
		tr, rounds := c.page(t, "/trustees"), c.page(t, "/rounds")
		if health(tr, "privacy-office") == "up" && health(tr, "security") == "up" && health(tr, "audit") == "up" &&
			strings.Contains(rounds, "<th>publishing</th>") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no published round with three trustees up in 3 minutes:\n%s\n%s", tr, rounds)
		}
	}
	up := regexp.MustCompile(`(?m)^(privacy-office|security|audit)\tup\t`)
	if text := visit(t, tab, c.front+"/trustees", "console-live-01-trustees-up"); len(up.FindAllString(text, -1)) != 3 {
		t.Errorf("trustees page does not show three trustees up:\n%s", text)
	}
	signed := regexp.MustCompile(`(?m)^(privacy-office|security|audit)\t[0-9a-f]{12}\tverifies\tup$`)
	text := visit(t, tab, c.front+"/keyepochs", "console-live-02-keyepochs")
	for _, w := range []string{"Key epoch 1", "Verifies: 3 valid signatures by trustees keys; the trustees role needs 2", "Root of trust version 1: its trustees role has 3 keys, 2 of which must sign"} {
		if !strings.Contains(text, w) {
			t.Errorf("key epochs page lacks %q:\n%s", w, text)
		}
	}
	if n := len(signed.FindAllString(text, -1)); n != 3 {
		t.Errorf("key epochs page: %d trustees signed, verified and up, want 3:\n%s", n, text)
	}
	text = visit(t, tab, c.front+"/rounds", "console-live-03-rounds")
	stages := regexp.MustCompile(`(?m)^\d+\tcompleted\t3 of 3\t[^\t]+\t[^\t]+(\t\d[^\t]*s){5}(\t-)*$`)
	if !strings.Contains(text, "collecting updates\ttrustees committing\tdecryption\tcharging and storing\tpublishing") || !stages.MatchString(text) {
		t.Errorf("rounds page does not time the five stages of a completed round:\n%s", text)
	}

	// The devices say which release they installed: the releases page counts them per version
	// beside what the region publishes, and says why shadow-scoring results stay on the devices;
	// the devices page gives each device's.
	running := regexp.MustCompile(`(?m)^keystroke-ae\tdevices running v(\d+): (\d+)\t`)
	for deadline := time.Now().Add(2 * time.Minute); !strings.Contains(c.page(t, "/releases"), "devices running v"); time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no device reported its installed release in 2 minutes:\n%s", c.page(t, "/releases"))
		}
	}
	text = visit(t, tab, c.front+"/releases", "console-live-04-releases")
	devices := 0
	for _, m := range running.FindAllStringSubmatch(text, -1) {
		n, _ := strconv.Atoi(m[2])
		devices += n
	}
	if devices < 1 || devices > 3 || !strings.Contains(text, "Shadow-scoring results stay on the devices") {
		t.Errorf("releases page: %d devices counted running keystroke-ae, want 1 to 3, and the note on shadow scoring:\n%s", devices, text)
	}
	if text = visit(t, tab, c.front+"/devices", "console-live-05-devices"); !regexp.MustCompile(`(?m)^d\d\t.*\tkeystroke-ae v\d+$`).MatchString(text) {
		t.Errorf("devices page shows no device's installed release:\n%s", text)
	}

	// audit stops; the coordinator finds it down at its next check, before the next round.
	trustees["audit"].Process.Kill()
	trustees["audit"].Wait()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(500 * time.Millisecond) {
		tr := c.page(t, "/trustees")
		if strings.HasPrefix(health(tr, "audit"), "down: ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit not down on the trustees page a minute after it stopped:\n%s", tr)
		}
	}
	text = visit(t, tab, c.front+"/trustees", "console-live-06-trustees-audit-down")
	if !regexp.MustCompile(`(?m)^audit\tdown: `).MatchString(text) || len(up.FindAllString(text, -1)) != 2 {
		t.Errorf("trustees page does not show audit down and the other two up:\n%s", text)
	}
	text = visit(t, tab, c.front+"/keyepochs", "console-live-07-keyepochs-audit-down")
	if !regexp.MustCompile(`(?m)^audit\t[0-9a-f]{12}\tverifies\tdown: `).MatchString(text) || len(signed.FindAllString(text, -1)) != 2 {
		t.Errorf("key epochs page does not show audit's signature verified and audit down:\n%s", text)
	}
}
