package main

import (
	"context"
	"flag"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
