package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestFS(t *testing.T) {
	ctx := context.Background()
	s, err := NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "a/b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get missing: %v, want ErrNotFound", err)
	}
	if err := s.Put(ctx, "a/b", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "a/b", []byte("two")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, "a/b"); !bytes.Equal(got, []byte("two")) {
		t.Fatalf("Get = %q, want two", got)
	}
	if err := s.Create(ctx, "a/c", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, "a/c", []byte("y")); !errors.Is(err, ErrExist) {
		t.Fatalf("second Create: %v, want ErrExist", err)
	}
	if got, _ := s.Get(ctx, "a/c"); !bytes.Equal(got, []byte("x")) {
		t.Fatalf("Create overwrote: %q", got)
	}
	if err := s.Put(ctx, "b", nil); err != nil {
		t.Fatal(err)
	}
	keys, err := s.List(ctx, "a/")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0] != "a/b" || keys[1] != "a/c" {
		t.Fatalf("List = %v", keys)
	}
	entries, _ := os.ReadDir(filepath.Join(s.Dir(), "a"))
	if len(entries) != 2 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

func TestValidKey(t *testing.T) {
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"models/v1/params.bin", true},
		{"a", true},
		{"", false},
		{"/abs", false},
		{"a//b", false},
		{"../escape", false},
		{"a/./b", false},
		{"sp ace", false},
		{"a\\b", false},
		{"trailing/", false},
	} {
		err := ValidKey(tc.key)
		if (err == nil) != tc.ok {
			t.Errorf("ValidKey(%q) = %v, want ok=%v", tc.key, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadKey) {
			t.Errorf("ValidKey(%q) error does not wrap ErrBadKey", tc.key)
		}
	}
}
