package release

import (
	"testing"
)

// BenchmarkVerifyManifest measures what a device spends on one manifest once it has the
// verified pointer: strict envelope decoding, one ML-DSA-65 verification over PAE, the payload
// hash against the pointer, and strict manifest decoding. Artifact hashing is not included.
func BenchmarkVerifyManifest(b *testing.B) {
	tr := newTrust(b, 1, 1)
	bu := tr.bundle(b, 1)
	v := tr.verifier(b, 0)
	l, err := v.VerifyLatest(bu.LatestEnvelope, t0)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(bu.ManifestEnvelope)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.VerifyManifest(bu.ManifestEnvelope, l, t0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyLatest measures pointer verification, which a device does on every poll.
func BenchmarkVerifyLatest(b *testing.B) {
	tr := newTrust(b, 1, 1)
	bu := tr.bundle(b, 1)
	v := tr.verifier(b, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.VerifyLatest(bu.LatestEnvelope, t0); err != nil {
			b.Fatal(err)
		}
	}
}
