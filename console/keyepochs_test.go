package console

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilauth/vigil/crypto/sig"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
)

// TestConsoleKeyEpochs checks the key epochs page: a document signed by two of three trustees
// verifies, with each signature, the trustee who made it and the trustee's health; one whose
// signature was altered, with a signature by a key outside the trustees role, falls below the
// threshold and says so; an expired one is flagged; without a root nothing is claimed.
func TestConsoleKeyEpochs(t *testing.T) {
	logPath, v := testLog(t)
	var trustees []*sig.PrivateKey
	for range 3 {
		k, err := sig.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		trustees = append(trustees, k)
	}
	now := time.Now()
	keys, err := release.NewKeySetWithTrustees(rand.Reader, now.Add(24*time.Hour), trustees, 2)
	if err != nil {
		t.Fatal(err)
	}
	root, err := release.ParseTrustedRoot(keys.RootEnvelope)
	if err != nil {
		t.Fatal(err)
	}
	names := map[sig.KeyID]string{trustees[0].ID(): "audit", trustees[1].ID(): "privacy-office", trustees[2].ID(): "security"}
	pk := []byte("the collective public key")
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, err := release.Sign(release.NewKeyEpoch(1, "ckks-test", pk, now, now.Add(time.Hour)), trustees[0], trustees[1])
	if err != nil {
		t.Fatal(err)
	}
	// Epoch 2: audit's signature altered, and the release key's signature, which does not count.
	bad, err := release.Sign(release.NewKeyEpoch(2, "ckks-test", pk, now, now.Add(time.Hour)), trustees[0], keys.Release)
	if err != nil {
		t.Fatal(err)
	}
	env, err := release.ParseEnvelope(bad)
	if err != nil {
		t.Fatal(err)
	}
	for i := range env.Signatures {
		if env.Signatures[i].KeyID == trustees[0].ID() {
			env.Signatures[i].Sig[7] ^= 1
		}
	}
	if bad, err = env.Marshal(); err != nil {
		t.Fatal(err)
	}
	expired, err := release.Sign(release.NewKeyEpoch(3, "ckks-test", pk, now.Add(-2*time.Hour), now.Add(-time.Hour)), trustees[1], trustees[2])
	if err != nil {
		t.Fatal(err)
	}
	docs := []string{write("1.json", good), write("2.json", bad), write("3.json", expired)}
	status := func(context.Context) (*vigilv1.StatusResponse, error) {
		return &vigilv1.StatusResponse{Model: "keystroke-ae", Trustees: []*vigilv1.TrusteeStatus{
			{Id: "audit", Reachable: true}, {Id: "privacy-office", Reachable: true}, {Id: "security", Problem: "connection refused"}}}, nil
	}

	h, err := New(Config{LogPath: logPath, Verifier: v, Status: status, StatusSource: "test", KeyEpochs: docs, TrustRoot: root, Signers: names})
	if err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, h, "GET", "/keyepochs")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d\n%s", resp.StatusCode, body)
	}
	epochs := strings.Split(body, "<h2>")
	if len(epochs) != 4 {
		t.Fatalf("want three key epochs:\n%s", body)
	}
	for i, wants := range [][]string{
		{"Key epoch 1", "Verifies: 2 valid signatures by trustees keys; the trustees role needs 2", "ckks-test", "25 bytes",
			"<td>audit</td><td><code>" + trustees[0].ID().Short() + "</code></td>\n<td class=\"good\">verifies</td><td>up</td>",
			"<td>privacy-office</td>", "<td class=\"good\">verifies</td><td>up</td>",
			"<td>security</td><td><code>" + trustees[2].ID().Short() + "</code></td>\n<td>none</td><td>down: connection refused</td>"},
		{"Key epoch 2", "Does not verify", "does not verify: sig: signature does not verify", "not a trustees key: does not count", keys.Release.ID().Short()},
		{"Key epoch 3", "Expired at", "Verifies: 2 valid signatures"},
	} {
		for _, w := range wants {
			if !strings.Contains(epochs[i+1], w) {
				t.Errorf("key epoch %d lacks %q:\n%s", i+1, w, epochs[i+1])
			}
		}
	}
	if strings.Contains(epochs[1], "Expired") || strings.Contains(epochs[2], "Verifies:") {
		t.Errorf("epoch 1 expired or epoch 2 verifies:\n%s", body)
	}

	// Without a root or a roster the page claims nothing it cannot check.
	h, err = New(Config{LogPath: logPath, Verifier: v, Status: status, KeyEpochs: docs})
	if err != nil {
		t.Fatal(err)
	}
	_, body = get(t, h, "GET", "/keyepochs")
	for _, w := range []string{"no root of trust given", "Key epoch 1", "ckks-test", "Trustees now", "security: down: connection refused"} {
		if !strings.Contains(body, w) {
			t.Errorf("page without a root lacks %q:\n%s", w, body)
		}
	}
	if strings.Contains(body, "Verifies") || strings.Contains(body, "verifies") {
		t.Errorf("page without a root claims a verification:\n%s", body)
	}
}
