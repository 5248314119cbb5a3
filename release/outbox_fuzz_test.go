package release

import (
	"bytes"
	"encoding/json"
	"maps"
	"reflect"
	"testing"
)

// FuzzDecodeQueued feeds the outbox's file decoder arbitrary bytes: it must never panic, and
// whatever it accepts must be a consistent release that survives a write/read round trip.
func FuzzDecodeQueued(f *testing.F) {
	tr := newTrust(f, 1, 1)
	good, err := encodeQueued(tr.bundle(f, 1))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(append(bytes.Clone(good), ' ', '{', '}'))
	f.Add(bytes.Replace(good, []byte(`"files"`), []byte(`"Files"`), 1))
	f.Add([]byte(`{"format":"vigil-outbox-bundle-v1","latest":"","manifest":"","files":{}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := decodeQueued(data)
		if err != nil {
			return
		}
		if _, err := bundleObjects(b); err != nil {
			t.Fatalf("accepted an inconsistent release: %v", err)
		}
		enc, err := encodeQueued(b)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeQueued(enc)
		if err != nil {
			t.Fatalf("round trip: %v", err)
		}
		if !bytes.Equal(again.ManifestEnvelope, b.ManifestEnvelope) || !bytes.Equal(again.LatestEnvelope, b.LatestEnvelope) ||
			!maps.EqualFunc(again.Files, b.Files, bytes.Equal) {
			t.Fatal("round trip changed the release")
		}
	})
}

// FuzzDecodeProgress: the region progress decoder never panics and round-trips what it accepts.
func FuzzDecodeProgress(f *testing.F) {
	good, _ := json.Marshal(progressDoc{Format: progressFormat, Published: map[string]uint64{"eu": 3, "us": 4}})
	f.Add(good)
	f.Add([]byte(`{"format":"vigil-outbox-regions-v1","published":null}`))
	f.Add([]byte(`{"format":"vigil-outbox-regions-v1","published":{"eu":-1}}`))
	f.Add([]byte(`{"format":"x","published":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := decodeProgress(data)
		if err != nil {
			return
		}
		enc, _ := json.Marshal(progressDoc{Format: progressFormat, Published: p})
		again, err := decodeProgress(enc)
		if err != nil || !reflect.DeepEqual(again, p) {
			t.Fatalf("round trip: %v, %v != %v", err, again, p)
		}
	})
}
