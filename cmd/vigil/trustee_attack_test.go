package main

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vigilauth/vigil/crypto/he"
)

// TestTrusteeCLIAttackRogueDealing is the review's rogue-key attack through the CLI: mallory
// commits, sees the honest dealings once they are revealed, deals again and publishes the new
// dealing (with a new commitment to it). The honest trustees' finish refuses both the swapped
// dealing and the swapped commitment, naming the file and the trustee.
func TestTrusteeCLIAttackRogueDealing(t *testing.T) {
	root := t.TempDir()
	ids := []string{"alice", "bob", "mallory"}
	dir := func(id string) string { return filepath.Join(root, id) }
	file := func(name string) string { return filepath.Join(root, name) }
	var pubs []string
	for _, id := range ids {
		mustTrusteeCLI(t, "init", "--dir", dir(id), "--id", id)
		pubs = append(pubs, filepath.Join(dir(id), identityPubFile))
	}
	roster := file("roster.bin")
	mustTrusteeCLI(t, append([]string{"roster", "--out", roster, "--threshold", "2"}, pubs...)...)
	for _, id := range ids {
		mustTrusteeCLI(t, "deal", "--dir", dir(id), "--roster", roster, "--out", file(id+".commit"))
	}
	commits := ceremonyFileList(root, ids, ".commit")

	// An honest trustee does not reveal before it has every commitment.
	_, err := runTrusteeCLI(t, "reveal", "--dir", dir("alice"), "--roster", roster, "--commitments", ceremonyFileList(root, ids[:2], ".commit"), "--out", file("early.dealing"))
	if err == nil || !strings.Contains(err.Error(), `no commitment from "mallory"`) {
		t.Fatalf("reveal without mallory's commitment: %v", err)
	}
	if _, err := os.Stat(file("early.dealing")); err == nil {
		t.Fatal("reveal published the dealing anyway")
	}
	for _, id := range ids[:2] {
		mustTrusteeCLI(t, "reveal", "--dir", dir(id), "--roster", roster, "--commitments", commits, "--out", file(id+".dealing"))
	}

	// Mallory has seen alice's and bob's dealings; she deals again and reveals the new one.
	if err := os.Rename(filepath.Join(dir("mallory"), pendingDealingFile), filepath.Join(dir("mallory"), "first.key")); err != nil {
		t.Fatal(err)
	}
	mustTrusteeCLI(t, "deal", "--dir", dir("mallory"), "--roster", roster, "--out", file("mallory-late.commit"))
	late := strings.Join([]string{file("alice.commit"), file("bob.commit"), file("mallory-late.commit")}, ",")
	mustTrusteeCLI(t, "reveal", "--dir", dir("mallory"), "--roster", roster, "--commitments", late, "--out", file("mallory.dealing"))
	dealings := ceremonyFileList(root, ids, ".dealing")

	cases := []struct {
		name        string
		commitments string
		want        []string
	}{
		{"swapped dealing", commits, []string{"dealing file " + file("mallory.dealing"), `the dealing from "mallory" does not match its commitment`}},
		{"swapped commitment", late, []string{"mallory-late.commit", "not the ones this trustee revealed its dealing against"}},
		{"both commitments", commits + "," + file("mallory-late.commit"), []string{"commitment file " + file("mallory-late.commit"), `two commitments from "mallory"`}},
	}
	for _, c := range cases {
		_, err := runTrusteeCLI(t, "finish", "--dir", dir("alice"), "--roster", roster, "--commitments", c.commitments, "--dealings", dealings)
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: finish gave %v, want an error mentioning %q", c.name, err, w)
			}
		}
	}
}

// TestTrusteeCLIAttackSkipTestDecryption checks that approve needs this trustee's own
// challenge answered by the trustees it names, and that respond decrypts one challenge per
// challenger.
func TestTrusteeCLIAttackSkipTestDecryption(t *testing.T) {
	root := t.TempDir()
	ids := []string{"alice", "bob", "carol"}
	dir := func(id string) string { return filepath.Join(root, id) }
	file := func(name string) string { return filepath.Join(root, name) }
	var pubs []string
	for _, id := range ids {
		mustTrusteeCLI(t, "init", "--dir", dir(id), "--id", id)
		pubs = append(pubs, filepath.Join(dir(id), identityPubFile))
	}
	roster := file("roster.bin")
	mustTrusteeCLI(t, append([]string{"roster", "--out", roster, "--threshold", "2"}, pubs...)...)
	runCeremonyCLI(t, root, roster, ids) // alice's challenge was answered by bob and carol

	// Carol answered bob's challenge; presented to alice as an answer to hers, it is refused.
	_, err := runTrusteeCLI(t, "approve", "--dir", dir("alice"), "--roster", roster, "--responses", file("carol-for-bob.response"), "--out", file("x.approval"))
	for _, w := range []string{"carol-for-bob.response", `the response from "carol" answers another challenge`, "do not sign"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("approve with carol's answer to bob: %v, want an error mentioning %q", err, w)
		}
	}
	// Bob's response file altered in transit.
	data, err := os.ReadFile(file("bob-for-alice.response"))
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	os.WriteFile(file("altered.response"), data, 0o644)
	if _, err := runTrusteeCLI(t, "approve", "--dir", dir("alice"), "--roster", roster, "--responses", file("altered.response"), "--out", file("x.approval")); err == nil || !strings.Contains(err.Error(), "not signed") {
		t.Errorf("approve with an altered response: %v", err)
	}
	// Bob's answer alone is not enough: alice's challenge tests {alice, carol} too.
	if _, err := runTrusteeCLI(t, "approve", "--dir", dir("alice"), "--roster", roster, "--responses", file("bob-for-alice.response"), "--out", file("x.approval")); err == nil ||
		!strings.Contains(err.Error(), `no response from "carol"`) {
		t.Errorf("approve without carol's answer: %v", err)
	}
	if _, err := os.Stat(file("x.approval")); err == nil {
		t.Error("a refused approve wrote an approval")
	}

	// Alice makes a second challenge: bob, who answered her first, refuses the second.
	os.Rename(filepath.Join(dir("alice"), keyCheckFile), filepath.Join(dir("alice"), "first.key"))
	mustTrusteeCLI(t, "challenge", "--dir", dir("alice"), "--roster", roster, "--out", file("alice2.challenge"))
	_, err = runTrusteeCLI(t, "respond", "--dir", dir("bob"), "--roster", roster, "--challenge", file("alice2.challenge"), "--out", file("bob-for-alice2.response"))
	if err == nil || !strings.Contains(err.Error(), "one challenge per trustee") || !strings.Contains(err.Error(), "alice2.challenge") {
		t.Errorf("bob answering alice's second challenge: %v", err)
	}
	// The same challenge again gets the same answer, not a second decryption.
	mustTrusteeCLI(t, "respond", "--dir", dir("bob"), "--roster", roster, "--challenge", file("alice.challenge"), "--out", file("again.response"))
	first, _ := os.ReadFile(file("bob-for-alice.response"))
	again, _ := os.ReadFile(file("again.response"))
	if string(first) != string(again) {
		t.Error("bob decrypted alice's challenge a second time")
	}
}

// finishedCeremony runs a 2-of-3 ceremony through the CLI up to finish (no test decryption)
// and returns its roster file and the trustees' directories and files under root.
func finishedCeremony(t *testing.T) (roster string, dir, file func(string) string) {
	t.Helper()
	root := t.TempDir()
	ids := []string{"alice", "bob", "carol"}
	dir = func(id string) string { return filepath.Join(root, id) }
	file = func(name string) string { return filepath.Join(root, name) }
	var pubs []string
	for _, id := range ids {
		mustTrusteeCLI(t, "init", "--dir", dir(id), "--id", id)
		pubs = append(pubs, filepath.Join(dir(id), identityPubFile))
	}
	roster = file("roster.bin")
	mustTrusteeCLI(t, append([]string{"roster", "--out", roster, "--threshold", "2"}, pubs...)...)
	for _, id := range ids {
		mustTrusteeCLI(t, "deal", "--dir", dir(id), "--roster", roster, "--out", file(id+".commit"))
	}
	commits := ceremonyFileList(root, ids, ".commit")
	for _, id := range ids {
		mustTrusteeCLI(t, "reveal", "--dir", dir(id), "--roster", roster, "--commitments", commits, "--out", file(id+".dealing"))
	}
	for _, id := range ids {
		mustTrusteeCLI(t, "finish", "--dir", dir(id), "--roster", roster, "--commitments", commits, "--dealings", ceremonyFileList(root, ids, ".dealing"))
	}
	return roster, dir, file
}

// TestTrusteeCLIAttackTwoChallengesAtOnce: alice makes two challenges and has bob answer both
// at the same moment. Each run checked bob's record of alice's challenge before answering and
// wrote it after, so both were answered, twice what a trustee gives a challenger (a review, 5
// of 5 runs). At most one is answered now.
func TestTrusteeCLIAttackTwoChallengesAtOnce(t *testing.T) {
	roster, dir, file := finishedCeremony(t)
	mustTrusteeCLI(t, "challenge", "--dir", dir("alice"), "--roster", roster, "--out", file("alice1.challenge"))
	if err := os.Remove(filepath.Join(dir("alice"), keyCheckFile)); err != nil {
		t.Fatal(err)
	}
	mustTrusteeCLI(t, "challenge", "--dir", dir("alice"), "--roster", roster, "--out", file("alice2.challenge"))
	var wg sync.WaitGroup
	for _, ch := range []string{"alice1", "alice2"} {
		wg.Go(func() {
			runTrusteeCLI(t, "respond", "--dir", dir("bob"), "--roster", roster, "--challenge", file(ch+".challenge"), "--out", file("bob-"+ch+".response"))
		})
	}
	wg.Wait()
	answered := 0
	for _, ch := range []string{"alice1", "alice2"} {
		if _, err := os.Stat(file("bob-" + ch + ".response")); err == nil {
			answered++
		}
	}
	if answered != 1 {
		t.Fatalf("bob answered %d of alice's two challenges, want 1", answered)
	}
}

// TestTrusteeCLIAttackRosterOfAnotherCRS: bob has carol answer his challenge under a roster
// that differs from the ceremony's only in its common random string, from which the test
// ciphertext's c1 takes its a: carol would have decrypted a c1 that is no encryption under the
// key (a review). The roster must be the key's.
func TestTrusteeCLIAttackRosterOfAnotherCRS(t *testing.T) {
	roster, dir, file := finishedCeremony(t)
	data, err := os.ReadFile(roster)
	if err != nil {
		t.Fatal(err)
	}
	r, err := he.ParseRoster(he.DefaultParams(), data)
	if err != nil {
		t.Fatal(err)
	}
	r.CRS[0] ^= 0xff
	forged, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file("roster-other-crs.bin"), forged, 0o644); err != nil {
		t.Fatal(err)
	}
	mustTrusteeCLI(t, "challenge", "--dir", dir("bob"), "--roster", roster, "--out", file("bob.challenge"))
	out, err := runTrusteeCLI(t, "respond", "--dir", dir("carol"), "--roster", file("roster-other-crs.bin"), "--challenge", file("bob.challenge"), "--out", file("carol-bob.response"))
	if err == nil || !strings.Contains(err.Error(), "not the outcome of this roster") {
		t.Fatalf("carol answered under a roster of another CRS: %v\n%s", err, out)
	}
}
