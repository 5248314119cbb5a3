package cluster

import (
	"bytes"
	"context"
	"fmt"
	"testing"
)

// BenchmarkReplicaSync is what a commit adds with --state-in-tier: the state file replaced and
// a record appended to the registry log, stored in the tier (embedded, one replica, over
// loopback TCP) as one batch.
func BenchmarkReplicaSync(b *testing.B) {
	for _, size := range []int{4 << 10, 64 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("state=%dKiB", size>>10), func(b *testing.B) {
			tier := embeddedTier(b, "keystroke-ae")
			m := machine{b.TempDir()}
			r, err := OpenReplica(context.Background(), tier, m.roots())
			if err != nil {
				b.Fatal(err)
			}
			if _, err := r.TakeOver(context.Background()); err != nil {
				b.Fatal(err)
			}
			state, record := bytes.Repeat([]byte{7}, size), bytes.Repeat([]byte{9}, 300)
			b.SetBytes(int64(size + len(record)))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				state[0] = byte(i)
				m.replace(b, "state/coordinator.state", state)
				m.append(b, "state/registry.log", record)
				if err := r.Sync(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReplicaTakeOver restores a copy of 1,000 appended records of 300 bytes (the
// registry log between two compactions), read from the stream's leader a message at a time.
func BenchmarkReplicaTakeOver(b *testing.B) {
	tier := embeddedTier(b, "keystroke-ae")
	ctx := context.Background()
	leader := machine{b.TempDir()}
	r, err := OpenReplica(ctx, tier, leader.roots())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := r.TakeOver(ctx); err != nil {
		b.Fatal(err)
	}
	record := bytes.Repeat([]byte{9}, 300)
	for range 1000 {
		leader.append(b, "state/registry.log", record)
		if err := r.Sync(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		standby := machine{b.TempDir()}
		s, err := OpenReplica(ctx, tier, standby.roots())
		if err != nil {
			b.Fatal(err)
		}
		if restored, err := s.TakeOver(ctx); err != nil || !restored {
			b.Fatalf("restored %v, %v", restored, err)
		}
	}
}
