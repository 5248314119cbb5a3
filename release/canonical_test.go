package release

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestStrictDecoding(t *testing.T) {
	tr := newTrust(t, 1, 1)
	b := tr.bundle(t, 1)
	env, err := ParseEnvelope(b.ManifestEnvelope)
	if err != nil {
		t.Fatal(err)
	}
	good := string(env.Payload)
	if _, err := decodeManifest([]byte(good)); err != nil {
		t.Fatalf("canonical manifest refused: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(string) string
	}{
		{"leading space", func(s string) string { return " " + s }},
		{"trailing newline", func(s string) string { return s + "\n" }},
		{"unknown field", func(s string) string { return strings.Replace(s, `{"artifacts"`, `{"admin":true,"artifacts"`, 1) }},
		{"duplicate field", func(s string) string {
			return strings.Replace(s, `"model":"vigil-ae"`, `"model":"vigil-ae","model":"vigil-ae"`, 1)
		}},
		{"field in other case", func(s string) string { return strings.Replace(s, `"model"`, `"Model"`, 1) }},
		{"fractional seconds", func(s string) string { return strings.Replace(s, `12:00:00Z`, `12:00:00.0Z`, 1) }},
		{"time offset", func(s string) string { return strings.Replace(s, `12:00:00Z`, `12:00:00+00:00`, 1) }},
		{"number spelling", func(s string) string { return strings.Replace(s, `"version":1`, `"version":1.0`, 1) }},
		{"escaped letter", func(s string) string { return strings.Replace(s, `"vigil-ae"`, `"vigil\u002dae"`, 1) }},
		{"two documents", func(s string) string { return s + s }},
		{"bad name", func(s string) string { return strings.Replace(s, `"model.bin"`, `"../x"`, 1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			edited := tc.edit(good)
			if edited == good {
				t.Fatal("edit did not apply")
			}
			if _, err := decodeManifest([]byte(edited)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
}

func TestSignRefusesInvalidDocuments(t *testing.T) {
	tr := newTrust(t, 1, 1)
	base := tr.spec(2, map[string][]byte{"m": []byte("x")})
	for _, tc := range []struct {
		name string
		edit func(*Spec)
	}{
		{"version zero", func(s *Spec) { s.Version, s.Parent = 0, 0 }},
		{"parent not older", func(s *Spec) { s.Parent = 2 }},
		{"no artifacts", func(s *Spec) { s.Files = nil }},
		{"artifact name with slash", func(s *Spec) { s.Files = map[string][]byte{"a/b": nil} }},
		{"bad model name", func(s *Spec) { s.Model = "" }},
		{"negative epsilon", func(s *Spec) { s.Training.Epsilon = -1 }},
		{"delta one", func(s *Spec) { s.Training.Delta = 1 }},
		{"expires before created", func(s *Spec) { s.Expires = s.Created }},
		{"no pointer expiry", func(s *Spec) { s.LatestExpires = time.Time{} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := base
			s.Training.Eval = map[string]float64{"eer": 0.1}
			tc.edit(&s)
			if _, err := Build(s, tr.release, tr.timestamp); !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	tr := newTrust(t, 3, 2)
	data := tr.rootEnv
	env, err := ParseEnvelope(data)
	if err != nil {
		t.Fatal(err)
	}
	again, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, data) {
		t.Fatal("envelope does not round-trip byte for byte")
	}
	r, err := ParseTrustedRoot(data)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Equal(tr.root) {
		t.Fatal("root does not round-trip")
	}
}
