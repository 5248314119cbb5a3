package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The edge cases of a Replica that a review of it found, each of which restored a file the
// leader did not have.

// purgeFailsOnce is a stream whose first purge does not get through (a timeout, or a leader
// paused between its batch and its purge).
type purgeFailsOnce struct {
	jetstream.Stream
	failed bool
}

func (s *purgeFailsOnce) Purge(ctx context.Context, opts ...jetstream.StreamPurgeOpt) error {
	if !s.failed {
		s.failed = true
		return context.DeadlineExceeded
	}
	return s.Stream.Purge(ctx, opts...)
}

// TestReplicaRemovalSurvivesALatePurge: the leader removes a file (an operator's resume
// removes the pause flag) and its purge is late; a standby takes over and has read the file's
// old content when the deposed leader's purge would land. The standby must still read the
// removal: before, the purge took the removal with it and the rounds came back paused.
func TestReplicaRemovalSurvivesALatePurge(t *testing.T) {
	tier := embeddedTier(t, "keystroke-ae")
	ctx := context.Background()
	leader, standby := newMachine(t), newMachine(t)
	leader.replace(t, "state/coordinator.state", []byte("round 1"))
	leader.replace(t, "state/paused", nil)
	for i := range 300 { // more than one consumer fetch between the file and its removal
		leader.replace(t, fmt.Sprintf("store/f%03d", i), []byte("x"))
	}
	lr := leader.replica(t, tier)
	if _, err := lr.TakeOver(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(leader.dir, "state/paused")); err != nil {
		t.Fatal(err)
	}
	lr.stream = &purgeFailsOnce{Stream: lr.stream}
	if err := lr.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	sr := standby.replica(t, tier)
	lateSync := errors.New("not called")
	sr.ProgressEvery = 1
	sr.Progress = func(seq, last uint64) {
		if seq == 10 { // the standby has read "paused"
			lateSync = lr.Sync(ctx)
		}
	}
	if _, err := sr.TakeOver(ctx); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(lateSync, ErrFenced) {
		t.Errorf("the deposed leader's Sync during the standby's restore: %v, want ErrFenced", lateSync)
	}
	if _, err := os.Stat(filepath.Join(standby.dir, "state/paused")); err == nil {
		t.Error("the standby restored state/paused, which the leader removed before the takeover")
	}
}

// TestReplicaReplacedTwiceIsNotAnAppend: a file replaced whole twice between two Syncs, so
// that the second temporary file gets the inode number the first rename freed (ext4 did, 100
// times in 100), larger, with the same first and last bytes where the old content ended. It
// was stored as an append. For a log (Root.Appended), the inode's birth time tells.
func TestReplicaReplacedTwiceIsNotAnAppend(t *testing.T) {
	for _, name := range []string{"store/index", "state/registry.log"} {
		t.Run(name, func(t *testing.T) {
			tier := embeddedTier(t, "keystroke-ae")
			ctx := context.Background()
			leader, standby := newMachine(t), newMachine(t)
			head, tail := bytes.Repeat([]byte("H"), 64), bytes.Repeat([]byte("T"), 64)
			leader.replace(t, name, slicesConcat(head, bytes.Repeat([]byte("a"), 200), tail))
			lr := leader.replica(t, tier)
			if _, err := lr.TakeOver(ctx); err != nil {
				t.Fatal(err)
			}
			want := slicesConcat(head, bytes.Repeat([]byte("b"), 200), tail, []byte("appended"))
			leader.replace(t, name, []byte("in between"))
			leader.replace(t, name, want)
			if err := lr.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := standby.replica(t, tier).TakeOver(ctx); err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(filepath.Join(standby.dir, name)); !bytes.Equal(got, want) {
				t.Errorf("restored %q, want %q", got, want)
			}
		})
	}
}

func slicesConcat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// TestReplicaCutLogSyncedBeforeItGrows: a log cut short (a coordinator opening its registry
// cuts a torn last entry) and grown again past its old size, with the bytes around the old
// end unchanged, would pass for an append: a coordinator syncs once it opened its state,
// before it appends (coordinator.Run), and the copy follows.
func TestReplicaCutLogSyncedBeforeItGrows(t *testing.T) {
	tier := embeddedTier(t, "keystroke-ae")
	ctx := context.Background()
	leader, standby := newMachine(t), newMachine(t)
	head, tail := bytes.Repeat([]byte("H"), 100), bytes.Repeat([]byte("T"), 64)
	leader.append(t, "state/registry.log", slicesConcat(head, bytes.Repeat([]byte("x"), 136), tail))
	lr := leader.replica(t, tier)
	if _, err := lr.TakeOver(ctx); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(leader.dir, "state/registry.log")
	if err := os.Truncate(p, int64(len(head))); err != nil {
		t.Fatal(err)
	}
	if err := lr.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	leader.append(t, "state/registry.log", slicesConcat(bytes.Repeat([]byte("y"), 136), tail, []byte("more")))
	if err := lr.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := standby.replica(t, tier).TakeOver(ctx); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(p)
	if got, _ := os.ReadFile(filepath.Join(standby.dir, "state/registry.log")); !bytes.Equal(got, want) {
		t.Errorf("restored %q, want %q", got, want)
	}
}

// TestReplicaRetriedMessageIsNotAnother: a Sync's first message is stored but its answer is
// lost and the Sync fails; the next Sync's message, with other content, must not be taken for
// it. Message IDs were the sequence a message was meant for, so the server's duplicate check
// answered the new message with the old one's sequence, and the commit was lost. Now the next
// Sync fails, as the first did, and the coordinator stops.
func TestReplicaRetriedMessageIsNotAnother(t *testing.T) {
	tier := embeddedTier(t, "keystroke-ae")
	ctx := context.Background()
	leader, standby := newMachine(t), newMachine(t)
	leader.replace(t, "state/coordinator.state", []byte("round 1"))
	lr := leader.replica(t, tier)
	if _, err := lr.TakeOver(ctx); err != nil {
		t.Fatal(err)
	}
	// What the failed Sync stored, under the ID its first attempt used.
	want := lr.last + 1
	hdr := nats.Header{hdrOp: {"replace"}, hdrBatch: {formatBatch(want, want)}}
	if _, err := lr.js.PublishMsg(ctx, &nats.Msg{Subject: lr.fileSubject("state/coordinator.state"), Header: hdr, Data: []byte("round 2")},
		jetstream.WithExpectLastSequence(lr.last), jetstream.WithMsgID(lr.id+"-"+strconv.FormatUint(lr.sent+1, 10))); err != nil {
		t.Fatal(err)
	}
	lr.sent++
	leader.replace(t, "state/coordinator.state", []byte("round 3"))
	err := lr.Sync(ctx)
	if !errors.Is(err, errStoredAfterAll) {
		t.Fatalf("the Sync after the lost answer: %v, want errStoredAfterAll", err)
	}
	if err := lr.Sync(ctx); err == nil {
		t.Fatal("a Sync after a batch cut short succeeded")
	}
	if _, err := standby.replica(t, tier).TakeOver(ctx); err != nil {
		t.Fatal(err)
	}
	// The failed Sync's round 2 is what the stream holds whole; round 3 was never stored.
	if got, _ := os.ReadFile(filepath.Join(standby.dir, "state/coordinator.state")); string(got) != "round 2" {
		t.Errorf("restored %q, want round 2", got)
	}
}

// TestReplicaOddNames: file names whose bytes a NATS header does not carry as they are
// (spaces at either end, control characters, bytes that are not UTF-8) come back as they were.
func TestReplicaOddNames(t *testing.T) {
	tier := embeddedTier(t, "keystroke-ae")
	ctx := context.Background()
	leader, standby := newMachine(t), newMachine(t)
	for _, name := range []string{"store/trailing ", "store/ leading", "store/a\tb", "store/\xff\xfe", "store/a\nb"} {
		leader.replace(t, name, []byte(name))
	}
	if _, err := leader.replica(t, tier).TakeOver(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := standby.replica(t, tier).TakeOver(ctx); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, standby.files(t), leader.files(t))
}

// TestReplicaFileWhereADirectoryWas: the standby's stale files stand where the copy has a
// directory, and its stale directory where the copy has a file.
func TestReplicaFileWhereADirectoryWas(t *testing.T) {
	tier := embeddedTier(t, "keystroke-ae")
	ctx := context.Background()
	leader, standby := newMachine(t), newMachine(t)
	leader.replace(t, "store/x/y", []byte("a file in x"))
	leader.replace(t, "store/a", []byte("a file"))
	standby.replace(t, "store/x", []byte("stale: a file where the copy has a directory"))
	standby.replace(t, "store/a/b", []byte("stale: a directory where the copy has a file"))
	if _, err := leader.replica(t, tier).TakeOver(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := standby.replica(t, tier).TakeOver(ctx); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, standby.files(t), leader.files(t))
}
