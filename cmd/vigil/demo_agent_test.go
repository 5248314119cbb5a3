package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDemoAgent: vigil demo --agent runs the rounds, then a device agent that installs what
// they released (the autoencoder and the population, verified against the demo's root.json),
// serves the demo bank, and stops cleanly when the demo is interrupted.
func TestDemoAgent(t *testing.T) {
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--devices", "12", "--rounds", "3", "--insecure-no-dp", "--dir", t.TempDir(), "--agent", "127.0.0.1:0"}, &stdout, &stderr)
	}()
	app := regexp.MustCompile(`demo application: (http://\S+/demo/)`)
	installed := regexp.MustCompile(`global model installed: keystroke-ae v[1-9]\d*, keystroke-population v[1-9]`)
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		out := stdout.String()
		if app.MatchString(out) && installed.MatchString(out) {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the demo ended before its agent installed both releases: %v\n%s\n%s", err, out, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 3 minutes the agent has not installed both releases:\n%s", out)
		}
	}
	out := stdout.String()
	if strings.Contains(out, "release check of") {
		t.Errorf("a release stream with nothing published yet was reported as a failure:\n%s", out)
	}
	resp, err := http.Get(app.FindStringSubmatch(out)[1])
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "vigil.js") {
		t.Fatalf("the demo bank: %s\n%.300s", resp.Status, page)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the interrupted demo: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the demo's agent did not stop within 30 s of the interrupt")
	}
}

// A wrong --agent address is refused before the rounds run, naming the flag.
func TestDemoAgentRefusesBadAddress(t *testing.T) {
	for _, addr := range []string{"10.1.1.1:7412", "nonsense"} {
		t.Run(addr, func(t *testing.T) {
			var stdout, stderr syncBuffer
			err := run(context.Background(), []string{"demo", "--dir", t.TempDir(), "--agent", addr}, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), "--agent") {
				t.Fatalf("got %v, want an error naming --agent", err)
			}
			if strings.Contains(stdout.String()+stderr.String(), "round") {
				t.Fatalf("the rounds ran before the address was refused:\n%s", stdout.String())
			}
		})
	}
}
