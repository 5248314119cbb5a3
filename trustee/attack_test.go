package trustee

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigilauth/vigil/crypto/he"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// The attacks of the security issue against the trustee service, each written as the
// coordinator would mount it, over real gRPC on loopback, with real ciphertexts and ML-DSA
// signatures. Each must be refused, with a reason that says why.

// TestAttackKeyRecoveryCraftedSum: the coordinator used to send a "sum" with c0 = 0 and
// c1 = 2^41, whose combined decryption shares are 2^41 s, the whole secret key. Trustees now
// decrypt only their own sum of device-signed c1 polynomials, so the crafted c1 must come in
// as a device's contribution: with no valid signature it is refused, and a valid device
// signature does not cover an altered c1.
func TestAttackKeyRecoveryCraftedSum(t *testing.T) {
	k := newTestKey(t, 3, 2)
	cluster := startCluster(t, k, t.TempDir())
	devs := k.devices(t, 3)
	const dim = 100
	r := k.sealedRound(t, devs, 1, dim)

	crafted := make([]byte, k.params.C1Bytes())
	// c1 = 2^41: the constant polynomial, its residue 2^41 modulo each prime.
	binary.LittleEndian.PutUint64(crafted, 1<<41)
	binary.LittleEndian.PutUint64(crafted[len(crafted)/2:], 1<<41)

	forged := proto.Clone(r.contribs[0]).(*vigilv1.Contribution)
	forged.C1 = [][]byte{crafted}
	forged.Signature = bytes.Repeat([]byte{1}, len(forged.Signature))
	unsigned := proto.Clone(r.contribs[0]).(*vigilv1.Contribution)
	unsigned.C1, unsigned.Signature = [][]byte{crafted}, nil
	altered := proto.Clone(r.contribs[0]).(*vigilv1.Contribution)
	altered.C1 = [][]byte{crafted} // the device's real signature, over its real c1

	for _, c := range []struct {
		name string
		ct   *vigilv1.Contribution
	}{
		{"crafted c1 with a forged signature", forged},
		{"crafted c1 without a signature", unsigned},
		{"crafted c1 under a device's valid signature", altered},
	} {
		contribs := []*vigilv1.Contribution{c.ct, r.contribs[1], r.contribs[2]}
		_, err := commitSum(cluster.Clients[0], header(k, 1, dim, 3), contribs)
		wantRefusal(t, c.name, err, codes.PermissionDenied, "signature does not verify")
	}
	// Without a commitment no trustee shares anything for the round.
	_, err := cluster.Clients[0].DecryptionShare(context.Background(), shareRequest(k, r, nil, 0, 1))
	wantRefusal(t, "decryption without a commitment", err, codes.FailedPrecondition, "no commitment")
}

// TestAttackSingleUpdateAsSum: one device's update presented as a sum of m_min must not be
// decrypted: an honest count below m_min is refused, a count the stream does not deliver is
// refused, and the same device cannot be counted twice, under its own id or another's.
func TestAttackSingleUpdateAsSum(t *testing.T) {
	k := newTestKey(t, 3, 2)
	cluster := startCluster(t, k, t.TempDir())
	tc := cluster.Clients[0]
	devs := k.devices(t, 3)
	const dim = 100
	one := k.sealedRound(t, devs[:1], 1, dim)
	victim := one.contribs[0]

	_, err := commitSum(tc, header(k, 1, dim, 1), one.contribs)
	wantRefusal(t, "one update announced as one", err, codes.FailedPrecondition, "requires at least 3")

	_, err = commitSum(tc, header(k, 1, dim, 3), one.contribs)
	wantRefusal(t, "one update announced as three", err, codes.PermissionDenied, "1 contributions arrived, the header announced 3")

	_, err = commitSum(tc, header(k, 1, dim, 3), []*vigilv1.Contribution{victim, victim, victim})
	wantRefusal(t, "the same device three times", err, codes.PermissionDenied, "contributes twice")

	// The victim's update under the ids and records of two other enrolled devices: their
	// signatures cannot be made, and the victim's does not verify for another device.
	as := func(d device) *vigilv1.Contribution {
		c := proto.Clone(victim).(*vigilv1.Contribution)
		c.DeviceId, c.DeviceRecord = d.id, d.record
		return c
	}
	_, err = commitSum(tc, header(k, 1, dim, 3), []*vigilv1.Contribution{victim, as(devs[1]), as(devs[2])})
	wantRefusal(t, "the same update under two other devices' ids", err, codes.PermissionDenied, "signature does not verify")

	// The victim's update with another device's id but its own record.
	c := proto.Clone(victim).(*vigilv1.Contribution)
	c.DeviceId = devs[1].id
	// (Only this one contribution is bad: contributions are checked concurrently, and the
	// refusal names whichever bad one is found first.)
	_, err = commitSum(tc, header(k, 1, dim, 3), []*vigilv1.Contribution{victim, c})
	wantRefusal(t, "another device's id on the victim's record", err, codes.PermissionDenied, "presents the record of device")
}

// TestAttackNoiseDeflation: devices size their share of the noise for the task's m_min,
// z·C/sqrt(m_min - t_dev). A coordinator that asks for a large m_min (within the devices'
// privacy policy) and has a sum of a few updates decrypted gets each honest update with a
// small fraction of the noise the devices' ledgers charged for: a review found m_min 10,000
// and three updates giving a sum with a 58th of it. The devices now sign m_min with their
// update; trustees refuse a sum of fewer updates, and a header that understates m_min does not
// verify against the devices' signatures.
func TestAttackNoiseDeflation(t *testing.T) {
	k := newTestKey(t, 3, 2)
	k.minSum = 10 // every device's task said m_min 10, and its noise is sized for it
	cluster := startCluster(t, k, t.TempDir())
	tc := cluster.Clients[0]
	devs := k.devices(t, 10)
	const dim = 100
	few := k.sealedRound(t, devs[:3], 1, dim)

	hdr := header(k, 1, dim, 3)
	hdr.MinParticipants = 10
	_, err := commitSum(tc, hdr, few.contribs)
	wantRefusal(t, "three updates of devices that signed m_min 10", err, codes.FailedPrecondition, "sized their noise for at least 10")

	hdr.MinParticipants = 3 // the coordinator understates what the devices signed
	_, err = commitSum(tc, hdr, few.contribs)
	wantRefusal(t, "the same, the header claiming m_min 3", err, codes.PermissionDenied, "signature does not verify")

	hdr.MinParticipants = 0
	_, err = commitSum(tc, hdr, few.contribs)
	wantRefusal(t, "the same, the header claiming no m_min", err, codes.PermissionDenied, "signature does not verify")

	// Ten updates, as the devices were promised, are decrypted.
	all := k.sealedRound(t, devs, 2, dim)
	res, err := newClient(t, k, cluster).DecryptSum(context.Background(), all.sum, all.contribs, RoundPrivacy{ClipNorm: 1, MinParticipants: 10})
	if err != nil {
		t.Fatalf("the sum of ten updates of devices that signed m_min 10: %v", err)
	}
	checkClose(t, res.Sum, all.want)
}

// TestAttackZeroEncryptionBypass: "each sum is decrypted once" used to be enforced by a
// fingerprint of c1 only, so adding an encryption of zero made a decrypted sum new again.
// Now a decrypted round's set cannot be re-presented with an added (properly signed)
// encryption of zero, neither under the same round nor under a new round number.
func TestAttackZeroEncryptionBypass(t *testing.T) {
	k := newTestKey(t, 3, 2)
	cluster := startCluster(t, k, t.TempDir())
	client := newClient(t, k, cluster)
	devs := k.devices(t, 4)
	const dim = 100
	r1 := k.sealedRound(t, devs[:3], 1, dim)
	if _, err := client.DecryptSum(context.Background(), r1.sum, r1.contribs, testPrivacy); err != nil {
		t.Fatal(err)
	}
	enc, _ := he.NewEncryptor(k.key)
	_, zero1 := k.signedUpdate(t, enc, devs[3], 1, make([]float64, dim))
	_, zero2 := k.signedUpdate(t, enc, devs[3], 2, make([]float64, dim))

	for i := range cluster.Clients {
		_, err := commitSum(cluster.Clients[i], header(k, 1, dim, 4), append(r1.contribs[:3:3], zero1))
		// Trustees of the active set have decrypted round 1; the third has committed to it.
		wantRefusal(t, "round 1's set plus an encryption of zero, as round 1", err, codes.AlreadyExists, "round 1 is committed to set")
		_, err = commitSum(cluster.Clients[i], header(k, 2, dim, 4), append(r1.contribs[:3:3], zero2))
		wantRefusal(t, "round 1's set plus an encryption of zero, as round 2", err, codes.PermissionDenied, "signature does not verify for round 2")
		_, err = commitSum(cluster.Clients[i], header(k, 2, dim, 3), r1.contribs)
		wantRefusal(t, "round 1's set as round 2", err, codes.PermissionDenied, "signature does not verify for round 2")
	}
}

// TestAttackCrossRoundReplay: device 0's round-1 update, rebound to round 2 under device 1's
// id (and record), as the coordinator could when binding was a cleartext hash.
func TestAttackCrossRoundReplay(t *testing.T) {
	k := newTestKey(t, 3, 2)
	cluster := startCluster(t, k, t.TempDir())
	devs := k.devices(t, 4)
	const dim = 100
	r1 := k.sealedRound(t, devs[:3], 1, dim)
	r2 := k.sealedRound(t, devs[1:], 2, dim)

	replay := proto.Clone(r1.contribs[0]).(*vigilv1.Contribution)
	replay.DeviceId, replay.DeviceRecord, replay.Nonce = devs[1].id, devs[1].record, nonce(2, devs[1].id)
	_, err := commitSum(cluster.Clients[0], header(k, 2, dim, 3), []*vigilv1.Contribution{replay, r2.contribs[1], r2.contribs[2]})
	wantRefusal(t, "round-1 update rebound to round 2 as another device", err, codes.PermissionDenied, "signature does not verify for round 2")

	same := proto.Clone(r1.contribs[0]).(*vigilv1.Contribution)
	same.Nonce = nonce(2, devs[0].id)
	_, err = commitSum(cluster.Clients[0], header(k, 2, dim, 4), []*vigilv1.Contribution{same, r2.contribs[0], r2.contribs[1], r2.contribs[2]})
	wantRefusal(t, "round-1 update replayed in round 2 by its own device", err, codes.PermissionDenied, "signature does not verify for round 2")
}

// TestAttackSybilDevices: the coordinator invents devices to fill m_min, with records signed by
// a key it holds (its release key) instead of the enrolment authority's, and updates signed by
// keys it made.
func TestAttackSybilDevices(t *testing.T) {
	k := newTestKey(t, 3, 2)
	cluster := startCluster(t, k, t.TempDir())
	const dim = 100
	real := k.devices(t, 1)
	sybils := []device{newDevice(t, "sybil-1", k.keys.Release), newDevice(t, "sybil-2", k.keys.Release)}
	r := k.sealedRound(t, append(real, sybils...), 1, dim)
	_, err := commitSum(cluster.Clients[0], header(k, 1, dim, 3), r.contribs)
	wantRefusal(t, "devices enrolled by the coordinator's release key", err, codes.PermissionDenied, "does not verify under the enrolment role")

	unenrolled := proto.Clone(r.contribs[1]).(*vigilv1.Contribution)
	unenrolled.DeviceRecord = nil
	_, err = commitSum(cluster.Clients[0], header(k, 1, dim, 3), []*vigilv1.Contribution{r.contribs[0], unenrolled, r.contribs[2]})
	wantRefusal(t, "a device without a record", err, codes.PermissionDenied, "does not verify under the enrolment role")
}

// TestAttackSubsetDifference: the coordinator, with one colluding trustee (t - 1 = 1 of 3),
// asks honest trustee A to decrypt participant set S and honest trustee B to decrypt S plus
// device x for the same round; the difference of the two decryptions would be x's update.
// Each honest trustee commits to one set per round, and releases a share only with
// commitments from a quorum of q = 3 trustees, which two sets cannot both have.
func TestAttackSubsetDifference(t *testing.T) {
	k := newTestKey(t, 3, 2)
	cluster := startCluster(t, k, t.TempDir())
	ctx := context.Background()
	devs := k.devices(t, 4)
	const dim = 100
	s := k.sealedRound(t, devs[:3], 1, dim)
	sx := k.sealedRound(t, devs, 1, dim) // S plus device x = dev-3 (fresh encryptions, same round)
	a, b, colluder := 0, 1, 2

	cmA, err := commitSum(cluster.Clients[a], header(k, 1, dim, 3), s.contribs)
	if err != nil {
		t.Fatal(err)
	}
	cmB, err := commitSum(cluster.Clients[b], header(k, 1, dim, 4), sx.contribs)
	if err != nil {
		t.Fatal(err)
	}
	// The colluding trustee signs whatever the coordinator wants: both sets.
	forge := func(like *vigilv1.SumCommitment) *vigilv1.SumCommitment {
		c := proto.Clone(like).(*vigilv1.SumCommitment)
		c.TrusteeId = k.shares[colluder].TrusteeID()
		if err := signCommitment(c, k.signers[colluder]); err != nil {
			t.Fatal(err)
		}
		return c
	}
	_, err = cluster.Clients[a].DecryptionShare(ctx, shareRequest(k, s, []*vigilv1.SumCommitment{cmA, forge(cmA)}, a, colluder))
	wantRefusal(t, "A decrypts S with 2 of 3 commitments", err, codes.FailedPrecondition, "2 distinct trustees committed")
	_, err = cluster.Clients[b].DecryptionShare(ctx, shareRequest(k, sx, []*vigilv1.SumCommitment{cmB, forge(cmB)}, b, colluder))
	wantRefusal(t, "B decrypts S+x with 2 of 3 commitments", err, codes.FailedPrecondition, "2 distinct trustees committed")

	// The colluder's commitment counted twice under two names does not make a quorum.
	twice := forge(cmA)
	twice.TrusteeId = k.shares[b].TrusteeID()
	if err := signCommitment(twice, k.signers[colluder]); err != nil {
		t.Fatal(err)
	}
	_, err = cluster.Clients[a].DecryptionShare(ctx, shareRequest(k, s, []*vigilv1.SumCommitment{cmA, forge(cmA), twice}, a, colluder))
	wantRefusal(t, "the colluder's key signing as B too", err, codes.FailedPrecondition, "2 distinct trustees committed")

	// B's commitment to S+x relabelled as one to S does not verify.
	relabelled := proto.Clone(cmB).(*vigilv1.SumCommitment)
	relabelled.SetDigest, relabelled.Contributors, relabelled.C1Digest = cmA.SetDigest, cmA.Contributors, cmA.C1Digest
	_, err = cluster.Clients[a].DecryptionShare(ctx, shareRequest(k, s, []*vigilv1.SumCommitment{cmA, forge(cmA), relabelled}, a, colluder))
	wantRefusal(t, "B's commitment relabelled to S", err, codes.FailedPrecondition, "not signed by a trustee key")

	// And the honest trustees will not commit to the other set for the round.
	_, err = commitSum(cluster.Clients[a], header(k, 1, dim, 4), sx.contribs)
	wantRefusal(t, "A asked to commit to S+x too", err, codes.AlreadyExists, "committed to another participant set")
	_, err = commitSum(cluster.Clients[b], header(k, 1, dim, 3), s.contribs)
	wantRefusal(t, "B asked to commit to S too", err, codes.AlreadyExists, "committed to another participant set")
}

// TestAttackTrusteeJournalDeleted: a trustee whose journal is gone would start as new and
// decrypt old rounds again; once it has served, it refuses to start without its journal.
func TestAttackTrusteeJournalDeleted(t *testing.T) {
	k := newTestKey(t, 3, 2)
	dir := t.TempDir()
	cluster := startCluster(t, k, dir)
	devs := k.devices(t, 3)
	r := k.sealedRound(t, devs, 1, 100)
	if _, err := newClient(t, k, cluster).DecryptSum(context.Background(), r.sum, r.contribs, testPrivacy); err != nil {
		t.Fatal(err)
	}
	cluster.Close()

	tdir := filepath.Join(dir, k.shares[0].TrusteeID())
	if err := os.Remove(filepath.Join(tdir, JournalFile)); err != nil {
		t.Fatal(err)
	}
	_, err := StartLocal(LocalConfig{Shares: k.shares, Signers: k.signers, Root: k.root, MinContributors: testMinContributors, StateDir: dir})
	if !errors.Is(err, ErrJournalMissing) {
		t.Fatalf("trustee started without its journal: %v, want ErrJournalMissing", err)
	}
	t.Logf("refused: %v", err)

	// A trustee that never served starts with an empty journal.
	fresh := FileJournal{Path: filepath.Join(t.TempDir(), JournalFile), Marker: filepath.Join(t.TempDir(), MarkerFile)}
	if _, err := NewServer(Config{Share: k.shares[0], Signer: k.signers[0], Root: k.root, MinContributors: 3, Journal: fresh}); err != nil {
		t.Fatalf("new trustee: %v", err)
	}
}

// TestHeaderOutOfRange: a sum's header that no contributions could satisfy is refused as a
// malformed request (InvalidArgument, saying what is wrong), before any contribution is read,
// not as a contribution that failed verification; an empty message after the header is named
// as such.
func TestHeaderOutOfRange(t *testing.T) {
	k := newTestKey(t, 3, 2)
	cluster := startCluster(t, k, t.TempDir())
	tc := cluster.Clients[0]
	devs := k.devices(t, 3)
	const dim = 100
	r := k.sealedRound(t, devs, 1, dim)
	for _, c := range []struct {
		name string
		hdr  *vigilv1.SumHeader
		why  string
	}{
		{"round 0", header(k, 0, dim, 3), "round 0"},
		{"dimension 0", header(k, 1, 0, 3), "dimension 0"},
		{"dimension too large", header(k, 1, he.MaxDimension+1, 3), "dimension"},
		{"too many contributors", header(k, 1, dim, he.MaxContributors+1), "at most"},
	} {
		_, err := commitSum(tc, c.hdr, r.contribs)
		wantRefusal(t, c.name, err, codes.InvalidArgument, c.why)
	}

	stream, err := tc.CommitSum(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&vigilv1.SumPart{Part: &vigilv1.SumPart_Header{Header: header(k, 1, dim, 3)}}); err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(&vigilv1.SumPart{})
	_, err = stream.CloseAndRecv()
	wantRefusal(t, "an empty message after the header", err, codes.PermissionDenied, "neither a header nor a contribution")
}
