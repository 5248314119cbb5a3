package release

import (
	"bytes"
	"testing"
)

// fuzzSeeds returns genuine envelopes of every document type.
func fuzzSeeds(f *testing.F) (*trust, [][]byte) {
	tr := newTrust(f, 2, 1)
	b := tr.bundle(f, 1)
	ke, err := Sign(NewKeyEpoch(1, "ckks", []byte("pk"), t0, t0.Add(24*60*60*1e9)), tr.release)
	if err != nil {
		f.Fatal(err)
	}
	return tr, [][]byte{tr.rootEnv, b.ManifestEnvelope, b.LatestEnvelope, ke, []byte("{}"), []byte(`{"payload":"","payloadType":"","signatures":null}`)}
}

func FuzzParseEnvelope(f *testing.F) {
	_, seeds := fuzzSeeds(f)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := ParseEnvelope(data)
		if err != nil {
			return
		}
		again, err := env.Marshal()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted envelope does not re-encode to the same bytes")
		}
	})
}

// FuzzDecodeDocuments feeds payloads to every document decoder.
func FuzzDecodeDocuments(f *testing.F) {
	_, seeds := fuzzSeeds(f)
	for _, s := range seeds {
		if env, err := ParseEnvelope(s); err == nil {
			f.Add(env.Payload)
		}
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		for _, decode := range []func([]byte) (Document, error){
			func(b []byte) (Document, error) { return decodeRoot(b) },
			func(b []byte) (Document, error) { return decodeManifest(b) },
			func(b []byte) (Document, error) { return decodeLatest(b) },
			func(b []byte) (Document, error) { return decodeKeyEpoch(b) },
		} {
			doc, err := decode(payload)
			if err != nil {
				continue
			}
			again, err := marshalCanonical(doc)
			if err != nil || !bytes.Equal(again, payload) {
				t.Fatalf("accepted %T does not re-encode to the same bytes", doc)
			}
		}
	})
}

// FuzzVerifier feeds arbitrary bytes to every verification entry point of a device.
func FuzzVerifier(f *testing.F) {
	tr, seeds := fuzzSeeds(f)
	for _, s := range seeds {
		f.Add(s)
	}
	b := tr.bundle(f, 1)
	v := tr.verifier(f, 0)
	l, err := v.VerifyLatest(b.LatestEnvelope, t0)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v := tr.verifier(t, 0)
		_ = v.UpdateRoot(data)
		_, _ = v.VerifyLatest(data, t0)
		_, _ = v.VerifyManifest(data, l, t0)
		_, _ = v.VerifyKeyEpoch(data, data, t0)
		_, _ = ParseTrustedRoot(data)
		_, _, _ = DecodeUnverified(data)
	})
}

// FuzzMergeSignatures merges arbitrary envelopes with genuine ones: never a panic, and what it
// accepts is one strict envelope carrying every distinct signer, whose signatures still verify.
func FuzzMergeSignatures(f *testing.F) {
	tr, seeds := fuzzSeeds(f)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, genuine := range [][]byte{tr.rootEnv, data} {
			merged, err := MergeSignatures(genuine, data)
			if err != nil {
				continue
			}
			env, err := ParseEnvelope(merged)
			if err != nil {
				t.Fatalf("merged envelope does not parse: %v", err)
			}
			if bytes.Equal(genuine, tr.rootEnv) {
				if _, err := ParseTrustedRoot(merged); err != nil {
					t.Fatalf("merging %d signature(s) into the genuine root broke it: %v", len(env.Signatures), err)
				}
			}
		}
	})
}
