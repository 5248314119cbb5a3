package main

import (
	"context"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/vigilauth/vigil/cluster"
	"github.com/vigilauth/vigil/internal/natstest"
	"github.com/vigilauth/vigil/pki"
)

// orgTierTLS is the TLS of a nats-server cluster holding the organisation's tier as README
// configures one: the servers present the coordinator's certificate and admit only a client
// certificate of the organisation's CA naming the coordinator (verify_and_map).
func orgTierTLS(t *testing.T, orgDir string) natstest.TLS {
	t.Helper()
	dir := filepath.Join(orgDir, orgPKI, pki.CoordinatorDir)
	auth, creds, err := orgCoordinator(orgDir)
	if err != nil {
		t.Fatal(err)
	}
	id, err := creds.Identity()
	if err != nil {
		t.Fatal(err)
	}
	return natstest.TLS{CertFile: filepath.Join(dir, pki.CertFile), KeyFile: filepath.Join(dir, pki.KeyFile), CAFile: filepath.Join(dir, pki.RootsFile),
		Users: []string{id.String()}, Client: cluster.ClientTLS(creds.TLSCertificate(), auth.CA.Pool(), nil)}
}

// TestFrontendOnTLSCluster starts a frontend on a tier of three nats-server processes that speak
// only mutual TLS: it connects with the organisation's coordinator certificate and serves the
// leader's kind of metrics on --metrics-listen; told to trust another CA for the servers, it
// refuses them, naming the flag, and it refuses a cluster that does not speak TLS.
func TestFrontendOnTLSCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nats-server processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	orgDir := org(t)
	nodes := natstest.StartClusterTLS(t, 3, orgTierTLS(t, orgDir))
	urls := strings.Join(nodes.URLs(), ",")

	_, w, stderr := startProcess(t, ctx, "coordinator", "--frontend", "--org", orgDir, "--nats", urls, "--listen", "127.0.0.1:0",
		"--metrics-listen", "127.0.0.1:0", "--log-level", "warn")
	w.wait(t, "frontend listening on ")
	addr := strings.Fields(w.wait(t, "metrics on http://"))[0]
	resp, err := http.Get("http://" + addr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`vigil_updates_total{reason="",result="stored"} 0`, `vigil_updates_total{reason="DUPLICATE_UPDATE",result="rejected"} 0`,
		"# TYPE vigil_frontend_store_seconds histogram", "# TYPE go_goroutines gauge"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the frontend's /metrics lack %q", want)
		}
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"the servers' CA is another", []string{"--nats", urls, "--nats-ca", filepath.Join(orgDir, "enrol", "ca.pem")}, "--nats-ca"},
		{"no such CA file", []string{"--nats", urls, "--nats-ca", filepath.Join(orgDir, "missing.pem")}, "--nats-ca"},
		{"hand-overs of no updates", []string{"--nats", urls, "--hand-over-every", "0"}, "--hand-over-every"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"coordinator", "--frontend", "--org", orgDir, "--listen", "127.0.0.1:0"}, tc.args...)
			err := run(ctx, args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %s", err, tc.want)
			}
			t.Logf("refused: %v", err)
		})
	}
	t.Run("a plaintext cluster", func(t *testing.T) {
		plain := natstest.StartCluster(t, 3)
		err := run(ctx, []string{"coordinator", "--frontend", "--org", orgDir, "--listen", "127.0.0.1:0", "--nats", strings.Join(plain.URLs(), ",")}, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "only mutual TLS") {
			t.Fatalf("error %v, want one saying the tier speaks only mutual TLS", err)
		}
		t.Logf("refused: %v", err)
	})
	t.Run("--nats-ca with the embedded server", func(t *testing.T) {
		fs := flag.NewFlagSet("coordinator", flag.ContinueOnError)
		var tf tierFlags
		tf.register(fs)
		if err := fs.Parse([]string{"--nats", "embedded", "--nats-ca", filepath.Join(orgDir, "enrol", "ca.pem")}); err != nil {
			t.Fatal(err)
		}
		tr, err := tf.open(ctx, orgDir, t.TempDir(), "keystroke-ae", nil)
		if err == nil {
			tr.close()
			t.Fatal("started")
		}
		if !strings.Contains(err.Error(), "--nats-ca") {
			t.Fatalf("error %v does not name --nats-ca", err)
		}
	})
}

// TestStandbyWaitsOutTheTier starts a standby while two of the tier's three servers are frozen,
// so JetStream has no quorum and answers nothing: as when the leader's server fails and the
// others elect leaders, the standby must say so and keep trying, not exit, and take the lease
// once the servers are back.
func TestStandbyWaitsOutTheTier(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nats-server processes")
	}
	nodes := natstest.StartCluster(t, 3)
	var thaws []func() error
	for i := 1; i < 3; i++ {
		thaw, err := nodes.Freeze(i)
		if err != nil {
			t.Fatal(err)
		}
		defer thaw()
		thaws = append(thaws, thaw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tr := &tier{cfg: cluster.Config{Model: "keystroke-ae", Replicas: 3}, dial: func() (*nats.Conn, error) {
		return nats.Connect(nodes.URL(0), nats.Timeout(time.Second))
	}}
	var out syncBuffer
	led := make(chan error, 1)
	go func() {
		_, _, release, err := tr.lead(ctx, 3*time.Second, &out)
		if err == nil {
			release()
		}
		led <- err
	}()
	for !strings.Contains(out.String(), "standby: the tier does not answer") {
		select {
		case err := <-led:
			t.Fatalf("lead returned %v without the tier; output:\n%s", err, out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	for _, thaw := range thaws {
		if err := thaw(); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-led; err != nil {
		t.Fatalf("lead after the servers came back: %v; output:\n%s", err, out.String())
	}
}

// TestOpenTierBlobs: the leader makes the directory of --tier-blobs; a frontend given one that
// does not exist is refused, naming the flag, rather than acknowledging updates the leader will
// not find; other schemes are refused.
func TestOpenTierBlobs(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "tier-blobs")
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		loc     string
		create  bool
		wantErr string
	}{
		{"a frontend before its leader", dir, false, "give the leader's --tier-blobs"},
		{"the leader", dir, true, ""},
		{"a frontend after it", dir, false, ""},
		{"a frontend given a file", file, false, file + " is not a directory: give the leader's --tier-blobs"},
		{"another scheme", "ftp://x/y", true, "only directories and s3:// locations"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := openTierBlobs(ctx, tc.loc, tc.create, 1)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("openTierBlobs(%q, create %v) = %v, want %q", tc.loc, tc.create, err, tc.wantErr)
			}
		})
	}
}
