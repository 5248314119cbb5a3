package sig

import (
	"bytes"
	"compress/gzip"
	"crypto/sha3"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestIETFExampleKeys checks key derivation and both file encodings against the example keys
// of RFC 9881 (see testdata/README.md).
func TestIETFExampleKeys(t *testing.T) {
	wantPriv, err := os.ReadFile("testdata/ietf-mldsa65.key.pem")
	if err != nil {
		t.Fatal(err)
	}
	wantPub, err := os.ReadFile("testdata/ietf-mldsa65.pub.pem")
	if err != nil {
		t.Fatal(err)
	}
	seed := make([]byte, SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	k, err := NewKeyFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	if got := MarshalPrivateKey(k); !bytes.Equal(got, wantPriv) {
		t.Errorf("private key PEM differs from RFC 9881:\n%s\nwant\n%s", got, wantPriv)
	}
	if got := MarshalPublicKey(k.Public()); !bytes.Equal(got, wantPub) {
		t.Errorf("public key PEM differs from RFC 9881 (derivation or SPKI encoding is wrong)")
	}
	parsed, err := ParsePublicKeyPEM(wantPub)
	if err != nil {
		t.Fatal(err)
	}
	if !parsed.Equal(k.Public()) {
		t.Error("parsed RFC 9881 public key differs from the key derived from its seed")
	}
	pk2, err := ParsePrivateKeyPEM(wantPriv)
	if err != nil {
		t.Fatal(err)
	}
	if pk2.ID() != k.ID() || !bytes.Equal(pk2.Seed(), seed) {
		t.Error("parsed RFC 9881 private key differs")
	}
}

// TestAccumulated reproduces the ML-DSA-65 "accumulated" vector of C2SP CCTV that Go's own
// FIPS 140 module tests against (crypto/internal/fips140test/mldsa_test.go): 100 seeds are read
// from a SHAKE128 stream; the SHAKE128 of every public key followed by the deterministic
// signature of the empty message under the empty context must have the published hash. It
// exercises key derivation and the external (pure ML-DSA) signing interface this package uses.
func TestAccumulated(t *testing.T) {
	const want = "8358a1843220194417cadbc2651295cd8fc65125b5a5c1a239a16dc8b57ca199"
	s := sha3.NewSHAKE128()
	o := sha3.NewSHAKE128()
	seed := make([]byte, SeedSize)
	for i := 0; i < 100; i++ {
		s.Read(seed)
		k, err := NewKeyFromSeed(seed)
		if err != nil {
			t.Fatal(err)
		}
		o.Write(k.Public().Bytes())
		sgn, err := k.sign(nil, "", false)
		if err != nil {
			t.Fatal(err)
		}
		o.Write(sgn)
		if err := k.Public().Verify(nil, sgn, ""); err != nil {
			t.Fatalf("vector %d: %v", i, err)
		}
	}
	got := make([]byte, 32)
	o.Read(got)
	if hex.EncodeToString(got) != want {
		t.Fatalf("accumulated hash %x, want %s", got, want)
	}
}

// TestACVPKeyGen checks key derivation against the NIST ACVP ML-DSA keyGen vectors (FIPS 204)
// that the CIRCL module ships in its source tree. The vectors live in the module cache, not in
// a Go package, so the test finds them through `go list -m` and skips when they are absent.
// (CIRCL's sigGen/sigVer vectors use the internal interface, which CIRCL does not export.)
func TestACVPKeyGen(t *testing.T) {
	dir := circlDir(t)
	prompt := readGzipJSON(t, filepath.Join(dir, "sign/mldsa/testdata/ML-DSA-keyGen-FIPS204/prompt.json.gz"))
	results := readGzipJSON(t, filepath.Join(dir, "sign/mldsa/testdata/ML-DSA-keyGen-FIPS204/expectedResults.json.gz"))
	type tcase struct {
		TcID int    `json:"tcId"`
		Seed string `json:"seed"`
		Pk   string `json:"pk"`
	}
	type group struct {
		ParameterSet string  `json:"parameterSet"`
		Tests        []tcase `json:"tests"`
	}
	var p, r struct {
		TestGroups []group `json:"testGroups"`
	}
	if err := json.Unmarshal(prompt, &p); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(results, &r); err != nil {
		t.Fatal(err)
	}
	wantPK := map[int]string{}
	for _, g := range r.TestGroups {
		for _, tc := range g.Tests {
			wantPK[tc.TcID] = strings.ToLower(tc.Pk)
		}
	}
	n := 0
	for _, g := range p.TestGroups {
		if g.ParameterSet != Algorithm {
			continue
		}
		for _, tc := range g.Tests {
			seed, err := hex.DecodeString(tc.Seed)
			if err != nil {
				t.Fatal(err)
			}
			k, err := NewKeyFromSeed(seed)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(k.Public().Bytes()); got != wantPK[tc.TcID] {
				t.Errorf("tcId %d: public key differs", tc.TcID)
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal("no ML-DSA-65 keyGen vectors found")
	}
	t.Logf("%d ACVP ML-DSA-65 keyGen vectors passed", n)
}

func circlDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/cloudflare/circl").Output()
	if err != nil {
		t.Skipf("skipping: cannot locate the CIRCL module (go list -m): %v", err)
	}
	dir := strings.TrimSpace(string(out))
	if _, err := os.Stat(filepath.Join(dir, "sign/mldsa/testdata")); err != nil {
		t.Skipf("skipping: CIRCL ACVP vectors not in the module cache: %v", err)
	}
	return dir
}

func readGzipJSON(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(zr); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
