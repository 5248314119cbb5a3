package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// minioConfig returns the test server's configuration with a fresh bucket, or skips.
func minioConfig(t *testing.T) MinIOConfig {
	t.Helper()
	endpoint := os.Getenv("VIGIL_MINIO_ENDPOINT")
	access := os.Getenv("VIGIL_MINIO_ACCESS_KEY")
	secret := os.Getenv("VIGIL_MINIO_SECRET_KEY")
	if endpoint == "" || access == "" || secret == "" {
		t.Skip("skipping: no MinIO server; set VIGIL_MINIO_ENDPOINT, VIGIL_MINIO_ACCESS_KEY and VIGIL_MINIO_SECRET_KEY (eval \"$(bash .ci/minio.sh start)\")")
	}
	var b [6]byte
	rand.Read(b[:])
	return MinIOConfig{
		Endpoint:  endpoint,
		AccessKey: access,
		SecretKey: secret,
		Bucket:    "vigil-test-" + hex.EncodeToString(b[:]),
		Retention: 24 * time.Hour,
	}
}

func newTestMinIO(t *testing.T, cfg MinIOConfig) *MinIO {
	t.Helper()
	s, err := NewMinIO(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// testStoreContract checks the Store contract; it runs on every implementation.
func testStoreContract(t *testing.T, s Store) {
	ctx := context.Background()
	if _, err := s.Get(ctx, "a/missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get missing: %v, want ErrNotFound", err)
	}
	if err := s.Create(ctx, "a/one", []byte("first")); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := s.Create(ctx, "a/one", []byte("second")); !errors.Is(err, ErrExist) {
		t.Fatalf("Create over existing: %v, want ErrExist", err)
	}
	if got, err := s.Get(ctx, "a/one"); err != nil || string(got) != "first" {
		t.Fatalf("after refused Create: %q, %v", got, err)
	}
	if err := s.Put(ctx, "a/ptr", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "a/ptr", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, "a/ptr"); err != nil || string(got) != "v2" {
		t.Fatalf("Put replace: %q, %v", got, err)
	}
	empty := []byte{}
	if err := s.Create(ctx, "b/empty", empty); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, "b/empty"); err != nil || len(got) != 0 {
		t.Fatalf("empty object: %q, %v", got, err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	if err := s.Create(ctx, "b/big.bin", big); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, "b/big.bin"); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("1 MiB object does not round-trip: %v", err)
	}
	keys, err := s.List(ctx, "a/")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a/one", "a/ptr"}; !reflect.DeepEqual(keys, want) {
		t.Fatalf("List a/ = %v, want %v", keys, want)
	}
	all, err := s.List(ctx, "")
	if err != nil || len(all) != 4 {
		t.Fatalf("List all = %v, %v", all, err)
	}
	for _, bad := range []string{"", "../x", "a//b", "a/./b", "a b"} {
		if err := s.Put(ctx, bad, nil); !errors.Is(err, ErrBadKey) {
			t.Errorf("Put %q: %v, want ErrBadKey", bad, err)
		}
		if _, err := s.Get(ctx, bad); !errors.Is(err, ErrBadKey) {
			t.Errorf("Get %q: %v, want ErrBadKey", bad, err)
		}
	}
}

func TestStoreContractFS(t *testing.T) {
	s, err := NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	testStoreContract(t, s)
}

func TestStoreContractMinIO(t *testing.T) {
	cfg := minioConfig(t)
	testStoreContract(t, newTestMinIO(t, cfg))
}

func TestMinIOPrefixesAreSeparate(t *testing.T) {
	cfg := minioConfig(t)
	cfg.Prefix = "eu"
	eu := newTestMinIO(t, cfg)
	cfg.Prefix = "us/west"
	us := newTestMinIO(t, cfg)
	ctx := context.Background()
	if err := eu.Create(ctx, "k", []byte("eu")); err != nil {
		t.Fatal(err)
	}
	if err := us.Create(ctx, "k", []byte("us")); err != nil {
		t.Fatalf("same key under another prefix: %v", err)
	}
	if got, _ := eu.Get(ctx, "k"); string(got) != "eu" {
		t.Fatalf("eu/k = %q", got)
	}
	if keys, _ := us.List(ctx, ""); !reflect.DeepEqual(keys, []string{"k"}) {
		t.Fatalf("us keys %v", keys)
	}
}

// TestMinIOWriteOnceIsWORM checks what the bucket promises beyond the Store contract: versioning
// and object lock are on, Create locks the version it writes in compliance mode, and that
// version cannot be deleted, even by the root user the tests run as.
func TestMinIOWriteOnceIsWORM(t *testing.T) {
	cfg := minioConfig(t)
	s := newTestMinIO(t, cfg)
	ctx := context.Background()
	if err := s.Create(ctx, "releases/m/1/manifest.json", []byte("signed")); err != nil {
		t.Fatal(err)
	}
	c := s.Client()
	info, err := c.StatObject(ctx, cfg.Bucket, "releases/m/1/manifest.json", minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.VersionID == "" {
		t.Fatal("object has no version ID: versioning is off")
	}
	mode, until, err := c.GetObjectRetention(ctx, cfg.Bucket, "releases/m/1/manifest.json", info.VersionID)
	if err != nil {
		t.Fatal(err)
	}
	if mode == nil || *mode != minio.Compliance || until == nil || until.Before(time.Now().Add(23*time.Hour)) {
		t.Fatalf("retention %v until %v, want COMPLIANCE for a day", mode, until)
	}
	err = c.RemoveObject(ctx, cfg.Bucket, "releases/m/1/manifest.json", minio.RemoveObjectOptions{VersionID: info.VersionID, GovernanceBypass: true})
	if err == nil {
		t.Fatal("deleted a locked object version")
	}
	t.Logf("delete of locked version refused: %v", err)
	if got, err := s.Get(ctx, "releases/m/1/manifest.json"); err != nil || string(got) != "signed" {
		t.Fatalf("after refused delete: %q, %v", got, err)
	}
	// Put keeps history: the replaced version of a pointer remains readable by version ID.
	if err := s.Put(ctx, "releases/m/latest.json", []byte("1")); err != nil {
		t.Fatal(err)
	}
	first, err := c.StatObject(ctx, cfg.Bucket, "releases/m/latest.json", minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "releases/m/latest.json", []byte("2")); err != nil {
		t.Fatal(err)
	}
	obj, err := c.GetObject(ctx, cfg.Bucket, "releases/m/latest.json", minio.GetObjectOptions{VersionID: first.VersionID})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(obj); err != nil || buf.String() != "1" {
		t.Fatalf("old pointer version: %q, %v", buf.String(), err)
	}
}

func TestMinIOEnsureBucketRefusesUnlockedBucket(t *testing.T) {
	cfg := minioConfig(t)
	s, err := NewMinIO(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Client().MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureBucket(ctx); err == nil || !strings.Contains(err.Error(), "object lock") {
		t.Fatalf("bucket without object lock accepted: %v", err)
	}
}

func TestMinIOConfigValidate(t *testing.T) {
	good := MinIOConfig{Endpoint: "127.0.0.1:9000", AccessKey: "a", SecretKey: "b", Bucket: "vigil"}
	for _, tc := range []struct {
		name string
		edit func(*MinIOConfig)
	}{
		{"scheme in endpoint", func(c *MinIOConfig) { c.Endpoint = "http://127.0.0.1:9000" }},
		{"no endpoint", func(c *MinIOConfig) { c.Endpoint = "" }},
		{"no secret", func(c *MinIOConfig) { c.SecretKey = "" }},
		{"upper-case bucket", func(c *MinIOConfig) { c.Bucket = "Vigil" }},
		{"short bucket", func(c *MinIOConfig) { c.Bucket = "v" }},
		{"bad prefix", func(c *MinIOConfig) { c.Prefix = "eu/" }},
		{"retention under a day", func(c *MinIOConfig) { c.Retention = time.Hour }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.edit(&c)
			if _, err := NewMinIO(c); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if _, err := NewMinIO(good); err != nil {
		t.Fatalf("good config refused: %v", err)
	}
}

func TestMinIOServerDown(t *testing.T) {
	// A closed port: every call fails fast with an error that is neither ErrNotFound nor ErrExist,
	// so callers retry instead of concluding anything.
	s, err := NewMinIO(MinIOConfig{Endpoint: "127.0.0.1:1", AccessKey: "a", SecretKey: "b", Bucket: "vigil"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = s.Get(ctx, "k")
	if err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("Get on a down server: %v", err)
	}
	if err := s.Create(ctx, "k", []byte("x")); err == nil || errors.Is(err, ErrExist) {
		t.Fatalf("Create on a down server: %v", err)
	}
}

// TestMinIOGetWhilePut reads a key while another writer keeps replacing it, as a device polls
// latest.json while the coordinator publishes: every read returns one whole version, never an
// error (minio-go answers such a race with "precondition failed", which once surfaced as
// "object already exists" and failed a release poll).
func TestMinIOGetWhilePut(t *testing.T) {
	s := newTestMinIO(t, minioConfig(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	version := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i%26)}, 4096+i) }
	if err := s.Put(ctx, "releases/m/latest.json", version(0)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		for i := 1; i < 150; i++ {
			if err := s.Put(ctx, "releases/m/latest.json", version(i)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for reads := 0; ; reads++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			t.Logf("%d reads during 150 writes", reads)
			return
		default:
		}
		got, err := s.Get(ctx, "releases/m/latest.json")
		if err != nil {
			t.Fatalf("Get while the key is replaced: %v", err)
		}
		i := len(got) - 4096
		if i < 0 || !bytes.Equal(got, version(i)) {
			t.Fatalf("Get returned %d bytes that are no whole version", len(got))
		}
	}
}
