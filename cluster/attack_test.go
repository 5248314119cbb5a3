package cluster

import (
	"context"
	"log/slog"
	"testing"

	"github.com/nats-io/nats.go"
)

// TestAttackTierWithoutToken is a local user of the coordinator's machine, who can reach the
// embedded JetStream's port, trying to write into the tier (an update, or a forged device
// record) without the token only the tier's processes hold: the server refuses the connection.
func TestAttackTierWithoutToken(t *testing.T) {
	ctx := context.Background()
	srv, err := StartEmbeddedConfig(ctx, EmbeddedConfig{Dir: t.TempDir(), Token: "the-tier-secret"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, tc := range []struct {
		name string
		opts []nats.Option
	}{
		{"no token", nil},
		{"wrong token", []nats.Option{nats.Token("guessed")}},
		{"user and password", []nats.Option{nats.UserInfo("vigil", "the-tier-secret")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := nats.Connect(srv.URL(), append(tc.opts, nats.MaxReconnects(0))...)
			if err == nil {
				defer nc.Close()
				if _, err := Open(ctx, nc, Config{Model: "keystroke-ae"}); err == nil {
					t.Fatal("a client without the token opened the tier")
				}
				return
			}
			t.Logf("refused: %v", err)
		})
	}
	nc, err := nats.Connect(srv.URL(), nats.Token("the-tier-secret"))
	if err != nil {
		t.Fatalf("the tier's own token: %v", err)
	}
	defer nc.Close()
	if _, err := Open(ctx, nc, Config{Model: "keystroke-ae"}); err != nil {
		t.Fatal(err)
	}
}
