package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestFSDelete: Delete removes the object and the directories it leaves empty, never the
// store's root or a directory still in use; a missing key is not an error.
func TestFSDelete(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		have      []string // keys stored before
		del       string
		want      []string // keys listed after
		wantDirs  []string // directories that must still exist
		wantGone  []string // directories that must be gone
		wantError error
	}{
		{"last in its directory", []string{"m/v1/p", "m/v2/p"}, "m/v1/p", []string{"m/v2/p"}, []string{"m/v2"}, []string{"m/v1"}, nil},
		{"directory still in use", []string{"m/v1/p", "m/v1/meta"}, "m/v1/p", []string{"m/v1/meta"}, []string{"m/v1"}, nil, nil},
		{"only object", []string{"a/b/c"}, "a/b/c", nil, []string{"."}, []string{"a"}, nil},
		{"missing key", []string{"a/b"}, "a/x", []string{"a/b"}, []string{"a"}, nil, nil},
		{"bad key", []string{"a/b"}, "../a", []string{"a/b"}, nil, nil, ErrBadKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := NewFS(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range tc.have {
				if err := s.Put(ctx, k, []byte(k)); err != nil {
					t.Fatal(err)
				}
			}
			if err := Delete(ctx, s, tc.del); !errors.Is(err, tc.wantError) {
				t.Fatalf("Delete(%q) = %v, want %v", tc.del, err, tc.wantError)
			}
			keys, err := s.List(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != len(tc.want) || len(keys) > 0 && keys[0] != tc.want[0] {
				t.Errorf("after Delete: %q, want %q", keys, tc.want)
			}
			for _, d := range tc.wantDirs {
				if _, err := os.Stat(filepath.Join(dir, d)); err != nil {
					t.Errorf("directory %s: %v, want it kept", d, err)
				}
			}
			for _, d := range tc.wantGone {
				if _, err := os.Stat(filepath.Join(dir, d)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("directory %s: %v, want it removed", d, err)
				}
			}
		})
	}
}

// TestMinIODelete: Delete frees every version of an unlocked object; a version under object
// lock stays, readable, and the refusal is ErrRetained, also when an unlocked version was
// written over it; a region's publisher, whose policy denies deletes, gets ErrRetained too.
func TestMinIODelete(t *testing.T) {
	cfg, users := lockedRegion(t)
	admin := newTestMinIO(t, cfg)
	pub := as(t, cfg, users.PublisherAccessKey, users.PublisherSecretKey)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	for _, tc := range []struct {
		name     string
		st       *MinIO
		write    func(key string) error
		want     error
		wantData string // what Get returns after Delete ("" : ErrNotFound)
	}{
		{"unlocked, two versions", admin, func(k string) error {
			if err := admin.Put(ctx, k, []byte("one")); err != nil {
				return err
			}
			return admin.Put(ctx, k, []byte("two"))
		}, nil, ""},
		{"locked", admin, func(k string) error { return admin.Create(ctx, k, []byte("locked")) }, ErrRetained, "locked"},
		{"locked under an unlocked version", admin, func(k string) error {
			if err := admin.Create(ctx, k, []byte("locked")); err != nil {
				return err
			}
			return admin.Put(ctx, k, []byte("junk"))
		}, ErrRetained, "locked"},
		{"publisher may not delete", pub, func(k string) error { return admin.Put(ctx, k, []byte("plain")) }, ErrRetained, "plain"},
		{"missing", admin, func(string) error { return nil }, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "del/" + randomSecret(t, 4)
			if err := tc.write(key); err != nil {
				t.Fatal(err)
			}
			err := Delete(ctx, tc.st, key)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Delete = %v, want %v", err, tc.want)
			}
			got, err := admin.Get(ctx, key)
			switch {
			case tc.wantData == "" && !errors.Is(err, ErrNotFound):
				t.Errorf("after Delete: Get = %q, %v; want ErrNotFound", got, err)
			case tc.wantData != "" && (err != nil || string(got) != tc.wantData):
				t.Errorf("after Delete: Get = %q, %v; want %q", got, err, tc.wantData)
			}
			if tc.wantData == "" {
				if _, err := admin.GetVersions(ctx, key, 1<<20, 10); !errors.Is(err, ErrNotFound) {
					t.Errorf("after Delete: versions remain (%v); want every version freed", err)
				}
			}
		})
	}
}
