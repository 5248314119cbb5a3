package e2e_test

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
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/vigilauth/vigil/store"
)

// minioServer is a MinIO process the test owns, so that it can stop and restart it.
type minioServer struct {
	bin, dir   string
	addr       string
	user, pass string
	mu         sync.Mutex
	cmd        *exec.Cmd
}

// startOwnMinIO starts a MinIO server from $VIGIL_MINIO_BIN on a free port with a fresh data
// directory, or skips.
func startOwnMinIO(t *testing.T) *minioServer {
	t.Helper()
	bin := os.Getenv("VIGIL_MINIO_BIN")
	if bin == "" {
		t.Skip("skipping: VIGIL_MINIO_BIN is not set (source .ci/minio.sh and run vigil_minio_start)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := &minioServer{bin: bin, dir: t.TempDir(), addr: addr, user: "vigiltest", pass: randomHex(t, 16)}
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// start runs the server and waits until it serves requests. It may be called from any
// goroutine.
func (s *minioServer) start() error {
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

// stop kills the server by PID, as a crash or a lost region would.
func (s *minioServer) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

func (s *minioServer) store(t *testing.T, bucket string) *store.MinIO {
	t.Helper()
	return newMinIOStore(t, store.MinIOConfig{Endpoint: s.addr, AccessKey: s.user, SecretKey: s.pass, Bucket: bucket, Retention: 24 * time.Hour})
}

// sharedMinIO returns a store on a fresh bucket of the server .ci/minio.sh started, or skips.
func sharedMinIO(t testing.TB, name string) *store.MinIO {
	t.Helper()
	endpoint, access, secret := os.Getenv("VIGIL_MINIO_ENDPOINT"), os.Getenv("VIGIL_MINIO_ACCESS_KEY"), os.Getenv("VIGIL_MINIO_SECRET_KEY")
	if endpoint == "" || access == "" || secret == "" {
		t.Skip("skipping: set VIGIL_MINIO_ENDPOINT, VIGIL_MINIO_ACCESS_KEY, VIGIL_MINIO_SECRET_KEY (see .ci/minio.sh)")
	}
	return newMinIOStore(t, store.MinIOConfig{Endpoint: endpoint, AccessKey: access, SecretKey: secret, Bucket: name + "-" + randomHex(t, 4), Retention: 24 * time.Hour})
}

func newMinIOStore(t testing.TB, cfg store.MinIOConfig) *store.MinIO {
	t.Helper()
	st, err := store.NewMinIO(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
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

// objectVersions counts the stored versions of every object under prefix.
func objectVersions(t *testing.T, st *store.MinIO, prefix string) map[string]int {
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

// afterWrites calls hook once, after the n-th successful write through it.
type afterWrites struct {
	store.Store
	mu     sync.Mutex
	n      int
	writes int
	hook   func()
}

func (a *afterWrites) after(err error) error {
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.writes++
	fire := a.writes == a.n
	a.mu.Unlock()
	if fire {
		a.hook()
	}
	return nil
}

func (a *afterWrites) Put(ctx context.Context, key string, data []byte) error {
	return a.after(a.Store.Put(ctx, key, data))
}

func (a *afterWrites) Create(ctx context.Context, key string, data []byte) error {
	return a.after(a.Store.Create(ctx, key, data))
}
