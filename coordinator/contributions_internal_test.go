package coordinator

import (
	"bytes"
	"encoding/binary"
	"os"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/trustee"
)

// A record written in pieces, the polynomials uncopied, is byte for byte the record of the
// whole message marshalled at once, and reads back as the contribution.
func TestContributionRecordIsTheMessage(t *testing.T) {
	c := &vigilv1.Contribution{
		DeviceRecord: []byte("record"), DeviceId: "phone-1", Nonce: []byte{1, 2, 3}, BaseVersion: 7,
		Signature: bytes.Repeat([]byte{9}, 3309), HeadDigests: [][]byte{bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)},
		C1: [][]byte{bytes.Repeat([]byte{3}, 131072), {}, bytes.Repeat([]byte{4}, 200)},
	}
	want, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	want = append(binary.LittleEndian.AppendUint32(nil, uint32(len(want))), want...)
	l := newContributionLog(t.TempDir())
	rec, err := l.encode(c)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Concat(rec.parts...); !bytes.Equal(got, want) || rec.size != int64(len(want)) {
		t.Fatalf("record of %d bytes (size %d), the message's %d", len(got), rec.size, len(want))
	}
	if len(c.C1) != 3 {
		t.Fatal("encoding changed the contribution")
	}
	if _, err := l.appendFor(1, c, rec); err != nil {
		t.Fatal(err)
	}
	all, err := l.of(1, 1)
	if err != nil {
		t.Fatal(err)
	}
	for got, err := range all.All() {
		if err != nil || !proto.Equal(got, c) {
			t.Fatalf("read back %v, %v", got, err)
		}
	}
}

// TestEncodedContributionsRefuseDamage: the log's records go to the trustees as they are,
// undecoded; a record damaged on disk is refused reading it, naming the log, not sent.
func TestEncodedContributionsRefuseDamage(t *testing.T) {
	c := &vigilv1.Contribution{DeviceId: "phone-1", Nonce: []byte{1}, C1: [][]byte{bytes.Repeat([]byte{3}, 4096)}}
	want, err := proto.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	l := newContributionLog(t.TempDir())
	if _, err := l.appendFor(1, c, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.sync(); err != nil {
		t.Fatal(err)
	}
	all, err := l.of(1, 1)
	if err != nil {
		t.Fatal(err)
	}
	enc := all.(trustee.EncodedContributions)
	for raw, err := range enc.Encoded() {
		if err != nil || !bytes.Equal(raw, want) {
			t.Fatalf("read back %x, %v; want the contribution's encoding", raw, err)
		}
	}
	// The c1 polynomial's length says more bytes than the record holds.
	path := l.path(1)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(data, []byte{0x80, 0x20}) // 4096 as a varint
	if at < 0 {
		t.Fatal("no c1 length in the record")
	}
	data[at+1] = 0x21
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, err := range enc.Encoded() {
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Fatalf("a damaged record read as %v, want an error naming %s", err, path)
		}
	}
}
