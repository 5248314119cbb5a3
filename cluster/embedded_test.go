package cluster

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestEmbeddedRestartKeepsStreams is what the one-machine install relies on: a coordinator that
// restarts on its state directory finds the tier's streams as it left them, including messages
// as large as an update.
func TestEmbeddedRestartKeepsStreams(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	// 3.4 MB: an update of 100,000 parameters, over NATS' default 1 MiB payload limit.
	big := bytes.Repeat([]byte{0xa5}, 3_400_000)
	msgs := [][]byte{[]byte("first"), big, []byte("last")}

	e, err := StartEmbedded(ctx, dir, log)
	if err != nil {
		t.Fatal(err)
	}
	js := embeddedJS(t, e.URL())
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ROUNDS", Subjects: []string{"rounds.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if _, err := js.Publish(ctx, "rounds.1", m); err != nil {
			t.Fatalf("publish %d bytes: %v", len(m), err)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if !strings.Contains(logs.String(), "level=DEBUG") || !strings.Contains(logs.String(), "component=nats-server") {
		t.Errorf("server notices not routed to slog at debug:\n%.2000s", logs.String())
	}

	e, err = StartEmbedded(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	js = embeddedJS(t, e.URL())
	s, err := js.Stream(ctx, "ROUNDS")
	if err != nil {
		t.Fatalf("stream after restart: %v", err)
	}
	for i, want := range msgs {
		got, err := s.GetMsg(ctx, uint64(i+1))
		if err != nil {
			t.Fatalf("message %d after restart: %v", i+1, err)
		}
		if !bytes.Equal(got.Data, want) {
			t.Errorf("message %d after restart: %d bytes, want %d", i+1, len(got.Data), len(want))
		}
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(len(msgs)) {
		t.Errorf("after restart: %d messages, want %d", info.State.Msgs, len(msgs))
	}
}

func TestEmbeddedStartErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()

	tests := []struct {
		name string
		cfg  EmbeddedConfig
		want string
	}{
		{"no dir", EmbeddedConfig{}, "no store directory"},
		{"bad address", EmbeddedConfig{Dir: t.TempDir(), Addr: "127.0.0.1"}, "missing port"},
		{"bad port", EmbeddedConfig{Dir: t.TempDir(), Addr: "127.0.0.1:http"}, "bad port"},
		{"address in use", EmbeddedConfig{Dir: t.TempDir(), Addr: taken.Addr().String()}, "address already in use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			e, err := StartEmbeddedConfig(ctx, tt.cfg, nil)
			if err == nil {
				e.Close()
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			// A fatal server error ends the wait at once, not at the ready timeout.
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %s to fail", d)
			}
		})
	}
}

func TestEmbeddedFixedAddress(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	e, err := StartEmbeddedConfig(ctx, EmbeddedConfig{Dir: t.TempDir(), Addr: addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if want := "nats://" + addr; e.URL() != want {
		t.Errorf("URL %q, want %q", e.URL(), want)
	}
	embeddedJS(t, e.URL())
}

func embeddedJS(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}
