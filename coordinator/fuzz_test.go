package coordinator

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/vigilauth/vigil/models"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/store"
)

func FuzzDecodeState(f *testing.F) {
	c := fuzzCoordinator(f)
	c.mu.Lock()
	st, err := c.snapshotLocked()
	c.mu.Unlock()
	if err != nil {
		f.Fatal(err)
	}
	good, _ := proto.Marshal(st)
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte("\x08\x01\x12\x0ckeystroke-ae\x2a\x02\x08\x05"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeState(b)
		if err != nil {
			return
		}
		// Whatever decodes must either restore cleanly or be refused, never panic.
		c := fuzzCoordinator(t)
		_ = c.restore(st)
	})
}

func FuzzDecodeParams(f *testing.F) {
	f.Add(models.EncodeParams([]float64{1, -2, 3.5}))
	f.Add([]byte{1, 2, 3})
	f.Add(models.EncodeParams([]float64{0}))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := models.DecodeParams(b)
		if err != nil {
			return
		}
		if got := models.EncodeParams(p); string(got) != string(b) {
			t.Fatalf("parameters do not round-trip")
		}
	})
}

// FuzzSubmitUpdate feeds arbitrary SubmitUpdate messages, as they could arrive on the wire, to a
// coordinator with an open round: each is accepted or rejected with a status, and a rejected one
// leaves the sum as it was.
func FuzzSubmitUpdate(f *testing.F) {
	c := fuzzCoordinator(f)
	task, _ := c.engine.Task("dev")
	vals := make([]float64, c.cfg.Spec.NumParams())
	good := &vigilv1.SubmitUpdateRequest{DeviceId: "dev", Round: task.Round, Nonce: task.Nonce, BaseVersion: task.BaseVersion,
		Update: &vigilv1.Update{Encoding: vigilv1.UpdateEncoding_UPDATE_ENCODING_PLAINTEXT, Dimension: uint64(len(vals)), Values: vals}}
	b, _ := proto.Marshal(good)
	f.Add(b)
	bad := proto.Clone(good).(*vigilv1.SubmitUpdateRequest)
	bad.Update.Values = vals[:3]
	b, _ = proto.Marshal(bad)
	f.Add(b)
	f.Add([]byte("\x0a\x03dev\x10\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var req vigilv1.SubmitUpdateRequest
		if proto.Unmarshal(b, &req) != nil {
			return
		}
		c := fuzzCoordinator(t)
		before := c.engine.Sum().Count()
		_, _, err := c.submit(&req)
		if after := c.engine.Sum().Count(); err != nil && after != before || err == nil && after != before+1 {
			t.Fatalf("submit err=%v moved the count from %d to %d", err, before, after)
		}
	})
}

// fuzzCoordinator returns a coordinator with device "dev" enrolled and a round open.
func fuzzCoordinator(tb testing.TB) *Coordinator {
	tb.Helper()
	st, err := store.NewFS(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	c, err := New(context.Background(), Config{
		Store: st, Spec: models.Spec{Layers: []int{3, 2, 3}, Activation: models.Tanh},
		DevicesPerRound: 1, MinUpdates: 1, Now: func() time.Time { return now }, Privacy: Privacy{InsecureNoDP: true},
	}, Insecure{})
	if err != nil {
		tb.Fatal(err)
	}
	c.devices["dev"] = device{}
	if _, err := c.start(context.Background(), now); err != nil {
		tb.Fatal(err)
	}
	return c
}
