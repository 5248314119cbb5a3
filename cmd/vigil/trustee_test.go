package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/release"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vigilauth/vigil/crypto/he"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/trustee"
)

func runTrusteeCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := runTrustee(context.Background(), args, &out, &errb)
	return out.String() + errb.String(), err
}

func mustTrusteeCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runTrusteeCLI(t, args...)
	if err != nil {
		t.Fatalf("vigil trustee %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func requireMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Fatalf("%s has mode %04o, want %04o", path, got, want)
	}
}

// addrWriter collects serve's stdout and hands over the listening address.
type addrWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	addr chan string
}

func (w *addrWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if i := strings.Index(w.buf.String(), "listening on "); i >= 0 {
		rest := w.buf.String()[i+len("listening on "):]
		if j := strings.IndexByte(rest, '\n'); j >= 0 {
			select {
			case w.addr <- rest[:j]:
			default:
			}
		}
	}
	return len(p), nil
}

// TestTrusteeCeremonyAndServeCLI runs the distributed ceremony through the CLI, serves two of
// the trustees with `vigil trustee serve --root` over loopback gRPC, and decrypts a sum of
// device-signed updates through them: not with one trustee offline (the commit quorum is 3
// of 3), then with all three.
func TestTrusteeCeremonyAndServeCLI(t *testing.T) {
	root := t.TempDir()
	ids := []string{"privacy", "security", "audit"}
	var pubs []string
	for _, id := range ids {
		dir := filepath.Join(root, id)
		mustTrusteeCLI(t, "init", "--dir", dir, "--id", id)
		requireMode(t, filepath.Join(dir, trustee.IdentityFile), 0o600)
		pubs = append(pubs, filepath.Join(dir, identityPubFile))
	}
	roster := filepath.Join(root, "roster.bin")
	out := mustTrusteeCLI(t, append([]string{"roster", "--out", roster, "--threshold", "2", "--epoch", "4"}, pubs...)...)
	if !strings.Contains(out, "roster digest") {
		t.Fatalf("roster output has no digest:\n%s", out)
	}
	keys := runCeremonyCLI(t, root, roster, ids)
	if _, err := runTrusteeCLI(t, "finish", "--dir", filepath.Join(root, "audit"), "--roster", roster,
		"--commitments", ceremonyFileList(root, ids, ".commit"), "--dealings", ceremonyFileList(root, ids, ".dealing")); err == nil {
		t.Fatal("finish overwrote an existing share")
	}

	p := he.DefaultParams()
	key, err := he.ParseKeyEpoch(p, keys[0])
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var clients []vigilv1.TrusteeClient
	var wg sync.WaitGroup
	var dirs []string
	for _, id := range ids {
		dirs = append(dirs, filepath.Join(root, id))
	}
	rootPath, ks := trusteeRoot(t, t.TempDir(), 2, dirs...)
	serve := func(id string) vigilv1.TrusteeClient {
		w := &addrWriter{addr: make(chan string, 1)}
		wg.Go(func() {
			if err := runTrustee(ctx, []string{"serve", "--insecure-plaintext", "--dir", filepath.Join(root, id), "--root", rootPath, "--listen", "127.0.0.1:0", "--min-contributors", "2"}, w, io.Discard); err != nil {
				t.Errorf("serve %s: %v", id, err)
			}
		})
		select {
		case addr := <-w.addr:
			return dialTrustee(t, addr)
		case <-time.After(10 * time.Second):
			t.Fatalf("serve %s did not start", id)
			return nil
		}
	}
	for _, id := range ids[1:] {
		clients = append(clients, serve(id))
	}
	// The first trustee is offline: its address refuses connections.
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	offline := lis.Addr().String()
	lis.Close()

	enc, _ := he.NewEncryptor(key)
	acc, _ := he.NewAccumulator(p, key.Epoch, 3000)
	want := make([]float64, 3000)
	var contribs trustee.SliceContributions
	for d := range 3 {
		u := make([]float64, 3000)
		for i := range u {
			u[i] = math.Sin(float64(i*(d+1))) / 100
			want[i] += u[i]
		}
		dev, nonce := fmt.Sprint("dev-", d), make([]byte, vigilv1.NonceSize)
		b := he.UpdateBinding(key.Epoch, 1, dev, nonce)
		cts, err := enc.Encrypt(u, 1, b)
		if err != nil {
			t.Fatal(err)
		}
		if err := acc.Add(cts, b); err != nil {
			t.Fatal(err)
		}
		// The device: enrolled by the root's enrolment key, signing its update.
		dk, _ := sig.GenerateKey(rand.Reader)
		rec, err := ks.SignDeviceRecord(release.NewDeviceRecord(dev, "eu", dk.Public(), time.Now().Add(-time.Minute), time.Now().Add(30*24*time.Hour)))
		if err != nil {
			t.Fatal(err)
		}
		heads, c1, err := he.UpdateParts(p, cts)
		if err != nil {
			t.Fatal(err)
		}
		stmt, err := he.UpdateStatement(p, b, 0, 2, heads, c1)
		if err != nil {
			t.Fatal(err)
		}
		signature, err := dk.Sign(stmt[:], he.UpdateContext)
		if err != nil {
			t.Fatal(err)
		}
		c, err := trustee.NewContribution(p, rec, dev, nonce, 0, cts, signature)
		if err != nil {
			t.Fatal(err)
		}
		contribs = append(contribs, c)
	}
	sum, _ := acc.Seal(1)
	// With n = 3 and t = 2 the commit quorum is 3: one trustee offline stops the round before
	// anyone decrypts.
	client, err := trustee.NewClient(trustee.ClientConfig{Key: key, Trustees: append([]vigilv1.TrusteeClient{dialTrustee(t, offline)}, clients...), ProbeTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.DecryptSum(ctx, sum, contribs, trustee.RoundPrivacy{ClipNorm: 1, MinParticipants: 2}); !errors.Is(err, trustee.ErrNotEnoughTrustees) {
		t.Fatalf("2 of 3 trustees up: %v, want ErrNotEnoughTrustees", err)
	}
	clients = append([]vigilv1.TrusteeClient{serve(ids[0])}, clients...)
	client, err = trustee.NewClient(trustee.ClientConfig{Key: key, Trustees: clients, ProbeTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	res, err := client.DecryptSum(ctx, sum, contribs, trustee.RoundPrivacy{ClipNorm: 1, MinParticipants: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Abs(res.Sum[i]-want[i]) > 1e-6 {
			t.Fatalf("value %d: %v, want %v", i, res.Sum[i], want[i])
		}
	}
	if len(res.Committed) != 3 || len(res.Trustees) != 2 {
		t.Fatalf("committed %v, decrypted by %v; want 3 and 2", res.Committed, res.Trustees)
	}
	cancel()
	wg.Wait()
}

// trusteeRoot writes, in dir, a root of trust whose trustees role is the ceremony identities
// of the trustees in dirs (threshold of them) and returns its path and key set, whose
// enrolment key signs device records.
func trusteeRoot(t *testing.T, dir string, threshold int, dirs ...string) (string, *release.KeySet) {
	t.Helper()
	var signers []*sig.PrivateKey
	for _, d := range dirs {
		k, err := trusteeSigningKey(d)
		if err != nil {
			t.Fatal(err)
		}
		signers = append(signers, k)
	}
	ks, err := release.NewKeySetWithTrustees(rand.Reader, time.Now().Add(time.Hour), signers, threshold)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "root.json")
	if err := os.WriteFile(path, ks.RootEnvelope, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, ks
}

// ceremonyFileList is the comma-separated list of root/ID+suffix for ids.
func ceremonyFileList(root string, ids []string, suffix string) string {
	var out []string
	for _, id := range ids {
		out = append(out, filepath.Join(root, id+suffix))
	}
	return strings.Join(out, ",")
}

// runCeremonyCLI runs the distributed ceremony's rounds after the roster for trustees ids
// whose directories are root/ID: deal (commit), reveal, finish, then every trustee's test
// decryption (challenge, respond, approve). It returns the key epochs the trustees wrote.
func runCeremonyCLI(t *testing.T, root, roster string, ids []string) [][]byte {
	t.Helper()
	dir := func(id string) string { return filepath.Join(root, id) }
	for _, id := range ids {
		out := mustTrusteeCLI(t, "deal", "--dir", dir(id), "--roster", roster, "--out", filepath.Join(root, id+".commit"))
		if !strings.Contains(out, "commitment of "+id) {
			t.Fatalf("deal output:\n%s", out)
		}
		if _, err := os.Stat(filepath.Join(root, id+".dealing")); err == nil {
			t.Fatal("deal published the dealing before every trustee committed")
		}
		requireMode(t, filepath.Join(dir(id), pendingDealingFile), 0o600)
	}
	commits := ceremonyFileList(root, ids, ".commit")
	for _, id := range ids {
		mustTrusteeCLI(t, "reveal", "--dir", dir(id), "--roster", roster, "--commitments", commits, "--out", filepath.Join(root, id+".dealing"))
	}
	var keys [][]byte
	for _, id := range ids {
		mustTrusteeCLI(t, "finish", "--dir", dir(id), "--roster", roster, "--commitments", commits, "--dealings", ceremonyFileList(root, ids, ".dealing"))
		requireMode(t, filepath.Join(dir(id), trustee.ShareFile), 0o600)
		k, err := os.ReadFile(filepath.Join(dir(id), trustee.KeyEpochFile))
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	for _, k := range keys[1:] {
		if !bytes.Equal(k, keys[0]) {
			t.Fatal("trustees finished with different key epochs")
		}
	}
	// Test decryption: each trustee challenges; the trustees each challenge names answer.
	for _, id := range ids {
		out := mustTrusteeCLI(t, "challenge", "--dir", dir(id), "--roster", roster, "--out", filepath.Join(root, id+".challenge"))
		requireMode(t, filepath.Join(dir(id), keyCheckFile), 0o600)
		var responses []string
		_, asked, _ := strings.Cut(out, "to be answered by: ")
		asked, _, _ = strings.Cut(asked, "\n")
		for _, other := range strings.Split(asked, ", ") {
			resp := filepath.Join(root, other+"-for-"+id+".response")
			mustTrusteeCLI(t, "respond", "--dir", dir(other), "--roster", roster, "--challenge", filepath.Join(root, id+".challenge"), "--out", resp)
			responses = append(responses, resp)
		}
		out = mustTrusteeCLI(t, "approve", "--dir", dir(id), "--roster", roster, "--responses", strings.Join(responses, ","), "--out", filepath.Join(root, id+".approval"))
		if !strings.Contains(out, "test decryption of "+id+"'s challenge succeeded") {
			t.Fatalf("approve output:\n%s", out)
		}
	}
	return keys
}

func dialTrustee(t *testing.T, addr string) vigilv1.TrusteeClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return vigilv1.NewTrusteeClient(conn)
}

func TestTrusteeLocalCeremonyCLI(t *testing.T) {
	out := filepath.Join(t.TempDir(), "keys")
	msg := mustTrusteeCLI(t, "ceremony", "--out", out, "--trustees", "a,b,c", "--threshold", "2")
	if !strings.Contains(msg, "test decryption succeeded") {
		t.Fatalf("ceremony output:\n%s", msg)
	}
	p := he.DefaultParams()
	key, err := trustee.LoadKeyEpoch(p, filepath.Join(out, trustee.KeyEpochFile))
	if err != nil {
		t.Fatal(err)
	}
	rb, err := os.ReadFile(filepath.Join(out, rosterFile))
	if err != nil {
		t.Fatal(err)
	}
	roster, err := he.ParseRoster(p, rb)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		requireMode(t, filepath.Join(out, id), 0o700)
		requireMode(t, filepath.Join(out, id, trustee.ShareFile), 0o600)
		requireMode(t, filepath.Join(out, id, trustee.IdentityFile), 0o600)
		ab, err := os.ReadFile(filepath.Join(out, id, approvalFile))
		if err != nil {
			t.Fatal(err)
		}
		a, err := he.ParseApproval(ab)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Verify(roster, key); err != nil || a.Trustee != id {
			t.Errorf("%s's approval: %v (by %q)", id, err, a.Trustee)
		}
	}
	if _, err := runTrusteeCLI(t, "ceremony", "--out", out, "--trustees", "a,b,c", "--threshold", "2"); err == nil {
		t.Fatal("ceremony overwrote existing shares")
	}
}

func TestTrusteeCLIErrors(t *testing.T) {
	dir := t.TempDir()
	mustTrusteeCLI(t, "ceremony", "--out", dir, "--trustees", "a,b", "--threshold", "2")
	loose := filepath.Join(t.TempDir(), "loose")
	mustTrusteeCLI(t, "ceremony", "--out", loose, "--trustees", "a,b", "--threshold", "2")
	os.Chmod(filepath.Join(loose, "a", trustee.ShareFile), 0o644)
	// A trustee that has served (its marker exists) but whose journal is gone.
	amnesiac := filepath.Join(t.TempDir(), "amnesiac")
	mustTrusteeCLI(t, "ceremony", "--out", amnesiac, "--trustees", "a,b", "--threshold", "2")
	if err := os.WriteFile(filepath.Join(amnesiac, "a", trustee.MarkerFile), []byte("served\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	amnesiacRoot, _ := trusteeRoot(t, t.TempDir(), 2, filepath.Join(amnesiac, "a"), filepath.Join(amnesiac, "b"))
	// A root whose trustees role does not list the trustee's ceremony key.
	other, err := release.NewKeySet(rand.Reader, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	otherRoot := filepath.Join(t.TempDir(), "root.json")
	if err := os.WriteFile(otherRoot, other.RootEnvelope, 0o644); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		args []string
		want string
	}{
		{nil, "no subcommand"},
		{[]string{"bogus"}, "unknown subcommand"},
		{[]string{"init", "--id", "x"}, "--dir is required"},
		{[]string{"init", "--dir", t.TempDir(), "--id", "has space"}, "--id"},
		{[]string{"roster", "--out", filepath.Join(dir, "r")}, "public identity files"},
		{[]string{"ceremony", "--out", t.TempDir(), "--trustees", "a,b,c", "--threshold", "1"}, "--threshold 1"},
		{[]string{"serve", "--dir", filepath.Join(dir, "a")}, "--min-contributors"},
		{[]string{"serve", "--dir", filepath.Join(dir, "a"), "--min-contributors", "3", "--part-mib", "0"}, "--part-mib"},
		{[]string{"serve", "--insecure-plaintext", "--dir", filepath.Join(dir, "a"), "--min-contributors", "3", "--listen", "0.0.0.0:0"}, "not a loopback address"},
		{[]string{"serve", "--dir", filepath.Join(dir, "a"), "--min-contributors", "3", "--pki-dir", filepath.Join(dir, "no-pki")}, "--pki-dir"},
		{[]string{"serve", "--insecure-plaintext", "--dir", filepath.Join(loose, "a"), "--min-contributors", "3"}, "chmod 600"},
		{[]string{"serve", "--insecure-plaintext", "--dir", filepath.Join(dir, "nobody"), "--min-contributors", "3"}, "no such file"},
		{[]string{"serve", "--insecure-plaintext", "--dir", filepath.Join(amnesiac, "a"), "--min-contributors", "3", "--root", amnesiacRoot}, "Restore"},
		{[]string{"serve", "--insecure-plaintext", "--dir", filepath.Join(dir, "a"), "--min-contributors", "3"}, "--root is required"},
		{[]string{"serve", "--insecure-plaintext", "--dir", filepath.Join(dir, "a"), "--min-contributors", "3", "--root", filepath.Join(dir, "no-root.json")}, "--root"},
		{[]string{"serve", "--insecure-plaintext", "--dir", filepath.Join(dir, "a"), "--min-contributors", "3", "--root", otherRoot}, "is not among the trustee keys"},
		{[]string{"deal", "--dir", filepath.Join(dir, "nobody"), "--roster", filepath.Join(dir, "missing"), "--out", "x"}, "identity.key"},
		{[]string{"deal", "--dir", filepath.Join(dir, "a"), "--roster", filepath.Join(dir, "missing"), "--out", "x"}, "missing"},
		{[]string{"reveal", "--dir", filepath.Join(dir, "a"), "--roster", filepath.Join(dir, rosterFile), "--out", "x"}, "--commitments is required"},
		{[]string{"reveal", "--dir", filepath.Join(dir, "b"), "--roster", filepath.Join(dir, rosterFile), "--out", "x", "--commitments", "y"}, "run vigil trustee deal first"},
		{[]string{"finish", "--dir", t.TempDir(), "--roster", filepath.Join(dir, rosterFile), "--commitments", "y"}, "--dealings is required"},
		{[]string{"approve", "--dir", filepath.Join(dir, "b"), "--roster", filepath.Join(dir, rosterFile), "--out", "x", "--responses", "y"}, "run vigil trustee challenge first"},
		{[]string{"respond", "--dir", filepath.Join(dir, "a"), "--roster", filepath.Join(dir, rosterFile), "--out", "x", "--challenge", filepath.Join(dir, "missing")}, "missing"},
	}
	for _, c := range cases {
		out, err := runTrusteeCLI(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("vigil trustee %v: error %v, want one mentioning %q\n%s", c.args, err, c.want, out)
		}
	}
}

// TestTrusteeServeRefusesAnotherTrusteesTLS: `trustee serve` with
// another trustee's --pki-dir started and reported ready, though the coordinator, expecting
// this trustee's name at its address, could never connect. It is refused at start, as
// `vigil preflight --kit` refuses such a kit, naming both flags; the trustee's own credentials
// still serve.
func TestTrusteeServeRefusesAnotherTrusteesTLS(t *testing.T) {
	orgDir := org(t)
	dir := filepath.Join(orgDir, "trustees", "audit")
	serve := func(pkiDir string) (string, error) {
		// Bounded: a trustee that starts serves until stopped.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		var out bytes.Buffer
		err := run(ctx, []string{"trustee", "serve", "--dir", dir, "--pki-dir", pkiDir, "--root", filepath.Join(orgDir, "root.json"),
			"--min-contributors", "3", "--listen", "127.0.0.1:0"}, &out, &out)
		return out.String(), err
	}
	wrong := filepath.Join(orgDir, "trustees", "security", "tls")
	out, err := serve(wrong)
	if err == nil || !strings.Contains(err.Error(), "--pki-dir "+wrong) || !strings.Contains(err.Error(), "spiffe://vigil/trustee/security") ||
		!strings.Contains(err.Error(), `--dir `+dir+` holds trustee "audit"'s share`) {
		t.Fatalf("trustee serve with security's TLS for audit's share: %v\n%s\nwant a refusal naming --pki-dir, its certificate and --dir", err, out)
	}
	if strings.Contains(out, "listening") {
		t.Errorf("refused, yet it said it was listening:\n%s", out)
	}
	if out, err := serve(filepath.Join(dir, "tls")); err != nil || !strings.Contains(out, "trustee audit (point 3") {
		t.Errorf("trustee serve with its own TLS: %v\n%s", err, out)
	}
}
