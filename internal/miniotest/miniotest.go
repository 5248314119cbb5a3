// Package miniotest gives tests real MinIO servers: the one .ci/minio.sh runs for the whole test
// run, or a server of the test's own that it can stop and restart, to show what happens while a
// region is down. Tests skip, saying why, when no MinIO is available.
package miniotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/vigilauth/vigil/internal/freeport"
	"github.com/vigilauth/vigil/store"
)

// Shared returns a store on a fresh bucket (name plus a random suffix) of the server
// .ci/minio.sh started, or skips the test.
func Shared(t testing.TB, name string) *store.MinIO {
	t.Helper()
	endpoint, access, secret := os.Getenv("VIGIL_MINIO_ENDPOINT"), os.Getenv("VIGIL_MINIO_ACCESS_KEY"), os.Getenv("VIGIL_MINIO_SECRET_KEY")
	if endpoint == "" || access == "" || secret == "" {
		t.Skip("skipping: set VIGIL_MINIO_ENDPOINT, VIGIL_MINIO_ACCESS_KEY, VIGIL_MINIO_SECRET_KEY (see .ci/minio.sh)")
	}
	return open(t, store.MinIOConfig{Endpoint: endpoint, AccessKey: access, SecretKey: secret, Bucket: name + "-" + randomHex(t, 4), Retention: 24 * time.Hour})
}

// Server is a MinIO process the test owns, so that it can stop and restart it.
type Server struct {
	bin, dir   string
	addr       string
	user, pass string
	mu         sync.Mutex
	cmd        *exec.Cmd
}

// Start starts a MinIO server from $VIGIL_MINIO_BIN (see .ci/minio.sh) on a free port with a
// fresh data directory, stopped when the test ends, or skips the test.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := os.Getenv("VIGIL_MINIO_BIN")
	if bin == "" {
		t.Skip("skipping: VIGIL_MINIO_BIN is not set (source .ci/minio.sh and run vigil_minio_start)")
	}
	ports, err := freeport.Ports(1)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	s := &Server{bin: bin, dir: t.TempDir(), addr: addr, user: "vigiltest", pass: randomHex(t, 16)}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Restart runs the server again on its address and data, and waits until it serves. It may be
// called from any goroutine.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := exec.Command(s.bin, "server", "--quiet", "--address", s.addr, filepath.Join(s.dir, "drive"))
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+s.user, "MINIO_ROOT_PASSWORD="+s.pass, "MINIO_BROWSER=off", "MINIO_UPDATE=off")
	log, err := os.OpenFile(filepath.Join(s.dir, "minio.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd = cmd
	// /minio/health/cluster, unlike /live, waits until the object layer, bucket metadata and IAM
	// are initialised.
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + s.addr + "/minio/health/cluster")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, _ := os.ReadFile(filepath.Join(s.dir, "minio.log"))
	return fmt.Errorf("MinIO did not become healthy at %s:\n%s", s.addr, out)
}

// Stop kills the server by PID, as a crash or a lost region would.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Endpoint returns the server's host:port.
func (s *Server) Endpoint() string { return s.addr }

// RootCredentials returns the server's root (admin) access and secret keys.
func (s *Server) RootCredentials() (access, secret string) { return s.user, s.pass }

// Store returns a store on bucket of this server, creating the bucket if needed.
func (s *Server) Store(t testing.TB, bucket string) *store.MinIO {
	t.Helper()
	return open(t, store.MinIOConfig{Endpoint: s.addr, AccessKey: s.user, SecretKey: s.pass, Bucket: bucket, Retention: 24 * time.Hour})
}

func open(t testing.TB, cfg store.MinIOConfig) *store.MinIO {
	t.Helper()
	st, err := store.NewMinIO(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A server just (re)started on a loaded machine may refuse the first requests.
	for {
		err = st.EnsureBucket(ctx)
		if err == nil {
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatal(err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Versions counts the stored versions of every object under prefix.
func Versions(t testing.TB, st *store.MinIO, prefix string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for obj := range st.Client().ListObjects(context.Background(), st.Bucket(), minio.ListObjectsOptions{Prefix: prefix, Recursive: true, WithVersions: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		out[obj.Key]++
	}
	return out
}

// AfterWrites is a store that calls Hook once, after the N-th successful write through it: a
// crash or an outage at an exact point of a publication.
type AfterWrites struct {
	store.Store
	N    int
	Hook func()

	mu     sync.Mutex
	writes int
}

func (a *AfterWrites) after(err error) error {
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.writes++
	fire := a.writes == a.N
	a.mu.Unlock()
	if fire {
		a.Hook()
	}
	return nil
}

// Put implements store.Store.
func (a *AfterWrites) Put(ctx context.Context, key string, data []byte) error {
	return a.after(a.Store.Put(ctx, key, data))
}

// Create implements store.Store.
func (a *AfterWrites) Create(ctx context.Context, key string, data []byte) error {
	return a.after(a.Store.Create(ctx, key, data))
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
