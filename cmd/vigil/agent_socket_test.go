package main

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAttackSecondAgentTakesSockets starts a second `vigil agent` on the sockets of one that
// serves: on the same --dir (refused by the directory's lock) and on another (refused by the
// socket in use), and gives a third a --grpc path that is an ordinary file. None of them may
// remove what is at the paths: before, the second agent unlinked the first's sockets before
// it found the directory locked, and the third deleted the file.
func TestAttackSecondAgentTakesSockets(t *testing.T) {
	dir := t.TempDir()
	gsock, hsock := filepath.Join(dir, "g.sock"), filepath.Join(dir, "h.sock")
	args := []string{"--grpc", "unix:" + gsock, "--http", "unix:" + hsock}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"agent", "--dir", filepath.Join(dir, "a")}, args...), io.Discard, io.Discard)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the first agent: %v", err)
		}
	}()
	reachable := func() error {
		for _, p := range []string{gsock, hsock} {
			c, err := net.Dial("unix", p)
			if err != nil {
				return err
			}
			c.Close()
		}
		return nil
	}
	for deadline := time.Now().Add(10 * time.Second); reachable() != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the first agent's sockets: %v", reachable())
		}
	}

	err := run(context.Background(), append([]string{"agent", "--dir", filepath.Join(dir, "a")}, args...), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "is in use by another vigil agent") {
		t.Errorf("a second agent on the same --dir: %v, want the directory's lock to refuse it", err)
	}
	if err := reachable(); err != nil {
		t.Fatalf("after a second agent on the same --dir, the first's sockets: %v", err)
	}
	err = run(context.Background(), append([]string{"agent", "--dir", filepath.Join(dir, "b")}, args...), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--grpc") || !strings.Contains(err.Error(), "another process listens on") {
		t.Errorf("a second agent on another --dir: %v, want a refusal naming --grpc", err)
	}
	if err := reachable(); err != nil {
		t.Fatalf("after a second agent on another --dir, the first's sockets: %v", err)
	}

	notes := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notes, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = run(context.Background(), []string{"agent", "--dir", filepath.Join(dir, "c"), "--grpc", "unix:" + notes, "--http", ""}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--grpc") || !strings.Contains(err.Error(), "not a unix socket") {
		t.Errorf("--grpc naming an ordinary file: %v, want a refusal naming --grpc", err)
	}
	if data, err := os.ReadFile(notes); err != nil || string(data) != "precious\n" {
		t.Errorf("the file --grpc named: %q, %v", data, err)
	}
}
