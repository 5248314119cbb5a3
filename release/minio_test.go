package release

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/vigilauth/vigil/store"
)

// minioServer is a MinIO process this test owns, so that it can stop and restart it.
type minioServer struct {
	t          *testing.T
	bin, dir   string
	addr       string
	user, pass string
	cmd        *exec.Cmd
}

// startOwnMinIO starts a MinIO server from $VIGIL_MINIO_BIN (see .ci/minio.sh) on a free port
// with a fresh data directory, or skips.
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
	s := &minioServer{t: t, bin: bin, dir: t.TempDir(), addr: addr, user: "vigiltest", pass: randomHex(t, 16)}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func (s *minioServer) start() {
	s.t.Helper()
	cmd := exec.Command(s.bin, "server", "--quiet", "--address", s.addr, filepath.Join(s.dir, "drive"))
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+s.user, "MINIO_ROOT_PASSWORD="+s.pass, "MINIO_BROWSER=off", "MINIO_UPDATE=off")
	log, err := os.OpenFile(filepath.Join(s.dir, "minio.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
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
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, _ := os.ReadFile(filepath.Join(s.dir, "minio.log"))
	s.t.Fatalf("MinIO did not become healthy at %s:\n%s", s.addr, out)
}

// stop kills the server by PID, as a crash or a lost region would.
func (s *minioServer) stop() {
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

func newMinIOStore(t *testing.T, cfg store.MinIOConfig) *store.MinIO {
	t.Helper()
	st, err := store.NewMinIO(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A server that was just (re)started on a loaded machine may still refuse the first
	// requests; give it a few seconds.
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

// sharedMinIO returns a store on the server .ci/minio.sh started, or skips.
func sharedMinIO(t *testing.T) *store.MinIO {
	t.Helper()
	endpoint, access, secret := os.Getenv("VIGIL_MINIO_ENDPOINT"), os.Getenv("VIGIL_MINIO_ACCESS_KEY"), os.Getenv("VIGIL_MINIO_SECRET_KEY")
	if endpoint == "" || access == "" || secret == "" {
		t.Skip("skipping: set VIGIL_MINIO_ENDPOINT, VIGIL_MINIO_ACCESS_KEY, VIGIL_MINIO_SECRET_KEY (see .ci/minio.sh)")
	}
	return newMinIOStore(t, store.MinIOConfig{Endpoint: endpoint, AccessKey: access, SecretKey: secret, Bucket: "vigil-us-" + randomHex(t, 4), Retention: 24 * time.Hour})
}

// onWrite calls hook after the n-th successful write through it.
type onWrite struct {
	store.Store
	mu     sync.Mutex
	n      int
	writes int
	hook   func()
}

func (o *onWrite) after(err error) error {
	if err != nil {
		return err
	}
	o.mu.Lock()
	o.writes++
	fire := o.writes == o.n
	o.mu.Unlock()
	if fire {
		o.hook()
	}
	return nil
}

func (o *onWrite) Put(ctx context.Context, key string, data []byte) error {
	return o.after(o.Store.Put(ctx, key, data))
}

func (o *onWrite) Create(ctx context.Context, key string, data []byte) error {
	return o.after(o.Store.Create(ctx, key, data))
}

// versions counts the stored versions of every object under prefix.
func versions(t *testing.T, st *store.MinIO, prefix string) map[string]int {
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

// TestMinIOPublishSurvivesServerCrash stops the eu MinIO process in the middle of publishing a
// release (after the first artifact is written) and restarts it during the publisher's backoff.
// The release must appear in eu once and complete, the us region must not wait for eu, and a
// device reading eu must never accept anything while eu is half-written or down.
func TestMinIOPublishSurvivesServerCrash(t *testing.T) {
	ctx := context.Background()
	now := t0.Add(time.Hour)
	srv := startOwnMinIO(t)
	eu := srv.store(t, "vigil-eu")
	us := sharedMinIO(t)
	tr := newTrust(t, 1, 1)
	tr.publishAll(t, eu, tr.bundle(t, 1))
	tr.publishAll(t, us, tr.bundle(t, 1))

	var (
		mu          sync.Mutex
		delays      []time.Duration
		whileDown   error
		restarts    int
		usDoneFirst bool
	)
	usDone := make(chan struct{})
	crashing := &onWrite{Store: eu, n: 1, hook: func() {
		srv.stop()
		// While eu is down a device there gets an error, never a release.
		_, err := tr.verifier(t, 1).Fetch(ctx, eu, now)
		mu.Lock()
		whileDown = err
		mu.Unlock()
	}}
	p, err := NewPublisher(PublisherConfig{
		Attempts:       10,
		InitialBackoff: 50 * time.Millisecond,
		MaxBackoff:     time.Second,
		Sleep: func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			delays = append(delays, d)
			n := len(delays)
			mu.Unlock()
			if n == 2 { // eu has failed twice: bring it back
				select {
				case <-usDone:
					usDoneFirst = true
				case <-time.After(30 * time.Second):
				}
				srv.start()
				restarts++
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	b2 := tr.bundle(t, 2)
	errc := make(chan error, 2)
	go func() { errc <- p.Publish(ctx, []Region{{"eu", crashing}}, b2) }()
	go func() { errc <- p.Publish(ctx, []Region{{"us", us}}, b2); close(usDone) }()
	for i := 0; i < 2; i++ {
		if err := <-errc; err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	if whileDown == nil || errors.Is(whileDown, ErrUpToDate) {
		t.Fatalf("device fetch while eu was down returned %v, want a store error", whileDown)
	}
	if restarts != 1 || !usDoneFirst {
		t.Fatalf("restarts %d, us finished before eu came back: %v", restarts, usDoneFirst)
	}
	t.Logf("eu backoffs %v; fetch while down: %v", delays, whileDown)

	for name, st := range map[string]*store.MinIO{"eu": eu, "us": us} {
		b, err := tr.verifier(t, 1).Fetch(ctx, st, now)
		if err != nil || b.Manifest.Version != 2 {
			t.Fatalf("%s: device fetch after publication: %v", name, err)
		}
		vs := versions(t, st, ReleasePrefix("vigil-ae")+"2/")
		if len(vs) != 3 {
			t.Fatalf("%s: v2 objects %v, want 2 artifacts and a manifest", name, vs)
		}
		for k, n := range vs {
			if n != 1 {
				t.Errorf("%s: %s stored %d times, want once", name, k, n)
			}
		}
		if n := versions(t, st, LatestKey("vigil-ae"))[LatestKey("vigil-ae")]; n != 2 {
			t.Errorf("%s: pointer has %d versions, want 2 (v1, v2)", name, n)
		}
	}
}

// TestMinIORegionDownThenRestarted publishes while one region's server is stopped: the other
// region completes, the down region is reported, and publishing again after a restart completes
// it once.
func TestMinIORegionDownThenRestarted(t *testing.T) {
	ctx := context.Background()
	now := t0.Add(time.Hour)
	srv := startOwnMinIO(t)
	eu := srv.store(t, "vigil-eu")
	us := sharedMinIO(t)
	tr := newTrust(t, 1, 1)
	tr.publishAll(t, eu)
	tr.publishAll(t, us)
	srv.stop()

	b := tr.bundle(t, 1)
	p, ns := publisher(t, 3)
	err := p.Publish(ctx, []Region{{"eu", eu}, {"us", us}}, b)
	var re *RegionError
	if !errors.As(err, &re) || re.Region != "eu" || re.Attempts != 3 || strings.Contains(err.Error(), "region us") {
		t.Fatalf("publish with eu down: %v", err)
	}
	t.Logf("eu down: %v (backoffs %v)", err, ns.delays)
	if got, err := tr.verifier(t, 0).Fetch(ctx, us, now); err != nil || got.Manifest.Version != 1 {
		t.Fatalf("us: %v", err)
	}

	srv.start()
	if _, err := tr.verifier(t, 0).Fetch(ctx, eu, now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("eu before the retry: %v, want no release yet", err)
	}
	if err := p.Publish(ctx, []Region{{"eu", eu}, {"us", us}}, b); err != nil {
		t.Fatalf("publish after restart: %v", err)
	}
	got, err := tr.verifier(t, 0).Fetch(ctx, eu, now)
	if err != nil || got.Manifest.Version != 1 {
		t.Fatalf("eu after restart: %v", err)
	}
	for k, n := range versions(t, eu, "releases/") {
		if n != 1 {
			t.Errorf("eu: %s stored %d times", k, n)
		}
	}
}

// TestMinIOTamperedArtifactRefused overwrites an artifact on a real bucket. Object lock keeps
// the signed version, but S3 lets anyone with write access add a newer version under the same
// key, so the device must (and does) catch it by hash.
func TestMinIOTamperedArtifactRefused(t *testing.T) {
	ctx := context.Background()
	st := sharedMinIO(t)
	tr := newTrust(t, 1, 1)
	tr.publishAll(t, st, tr.bundle(t, 1))
	key := ArtifactKey("vigil-ae", 1, "model.bin")
	if err := st.Put(ctx, key, []byte("weights of version 1, backdoored")); err != nil {
		t.Fatal(err)
	}
	_, err := tr.verifier(t, 0).Fetch(ctx, st, t0)
	if !errors.Is(err, ErrHashMismatch) || !strings.Contains(err.Error(), key) {
		t.Fatalf("got %v, want ErrHashMismatch naming %s", err, key)
	}
	if n := versions(t, st, key)[key]; n != 2 {
		t.Fatalf("%s has %d versions, want the locked original and the forgery", key, n)
	}
}
