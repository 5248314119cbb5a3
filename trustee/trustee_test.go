package trustee

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/vigilauth/vigil/crypto/he"
	"github.com/vigilauth/vigil/crypto/sig"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// header is the CommitSum header of r as round with the given announced count.
func header(k *testKey, round uint64, dim, contributors int) *vigilv1.SumHeader {
	return &vigilv1.SumHeader{Round: round, KeyEpoch: k.key.Epoch, ParamsId: k.params.ID(), Dimension: uint64(dim), Contributors: uint32(contributors),
		MinParticipants: testPrivacy.MinParticipants}
}

// commitSum streams hdr and contribs to one trustee over gRPC, as a coordinator does.
func commitSum(tc vigilv1.TrusteeClient, hdr *vigilv1.SumHeader, contribs []*vigilv1.Contribution) (*vigilv1.SumCommitment, error) {
	stream, err := tc.CommitSum(context.Background())
	if err != nil {
		return nil, err
	}
	if err := stream.Send(&vigilv1.SumPart{Part: &vigilv1.SumPart_Header{Header: hdr}}); err != nil {
		_, err = stream.CloseAndRecv()
		return nil, err
	}
	for _, c := range contribs {
		if err := stream.Send(&vigilv1.SumPart{Part: &vigilv1.SumPart_Contribution{Contribution: c}}); err != nil {
			break // the trustee has answered; CloseAndRecv returns its refusal
		}
	}
	return stream.CloseAndRecv()
}

// commitAll has every trustee in idx commit to r and returns their commitments.
func commitAll(t *testing.T, k *testKey, c *LocalCluster, r testRound, idx ...int) []*vigilv1.SumCommitment {
	t.Helper()
	var out []*vigilv1.SumCommitment
	for _, i := range idx {
		cm, err := commitSum(c.Clients[i], header(k, r.sum.Round, r.sum.Dimension, len(r.contribs)), r.contribs)
		if err != nil {
			t.Fatalf("trustee %d: %v", i, err)
		}
		out = append(out, cm)
	}
	return out
}

// shareRequest asks for the shares of r with the given commitments and active trustees.
func shareRequest(k *testKey, r testRound, commitments []*vigilv1.SumCommitment, active ...int) *vigilv1.DecryptionShareRequest {
	var pts []uint64
	for _, a := range active {
		pts = append(pts, k.shares[a].Point)
	}
	var set []byte
	if len(commitments) > 0 {
		set = commitments[0].GetSetDigest()
	}
	return &vigilv1.DecryptionShareRequest{
		Round: r.sum.Round, KeyEpoch: r.sum.Epoch, ParamsId: k.params.ID(), Contributors: uint32(r.sum.Contributors),
		ActiveShamirIndices: pts, SetDigest: set, Commitments: commitments,
	}
}

// wantRefusal checks that err is a gRPC status with code and a message naming why.
func wantRefusal(t *testing.T, what string, err error, code codes.Code, why string) {
	t.Helper()
	msg := status.Convert(err).Message()
	if status.Code(err) != code || !bytes.Contains([]byte(msg), []byte(why)) {
		t.Fatalf("%s: got %v, want %v mentioning %q", what, err, code, why)
	}
	t.Logf("%s: refused: %s", what, msg)
}

// TestDecryptSumOverLoopback: the trustees over real loopback gRPC verify every device's
// signed update, commit, and decrypt the sum; with n - q trustees offline the round still
// decrypts; with one more it cannot.
func TestDecryptSumOverLoopback(t *testing.T) {
	for _, c := range []struct{ n, t int }{{3, 2}, {5, 3}} {
		t.Run(fmt.Sprintf("%d-of-%d", c.t, c.n), func(t *testing.T) {
			k := newTestKey(t, c.n, c.t)
			cluster := startCluster(t, k, t.TempDir())
			client := newClient(t, k, cluster)
			devs := k.devices(t, 4)
			ctx := context.Background()

			r := k.sealedRound(t, devs, 1, 9000)
			res, err := client.DecryptSum(ctx, r.sum, r.contribs, testPrivacy)
			if err != nil {
				t.Fatal(err)
			}
			checkClose(t, res.Sum, r.want)
			t.Logf("all up: committed %v, decrypted by %v", res.Committed, res.Trustees)

			down := c.n - Quorum(c.n, c.t)
			for i := range down {
				cluster.Stop(i)
			}
			r = k.sealedRound(t, devs, 2, 9000)
			res, err = client.DecryptSum(ctx, r.sum, r.contribs, testPrivacy)
			if err != nil {
				t.Fatalf("%d of %d trustees down: %v", down, c.n, err)
			}
			checkClose(t, res.Sum, r.want)
			t.Logf("%d down: decrypted by %v", down, res.Trustees)

			cluster.Stop(down)
			r = k.sealedRound(t, devs, 3, 9000)
			if _, err := client.DecryptSum(ctx, r.sum, r.contribs, testPrivacy); !errors.Is(err, ErrNotEnoughTrustees) {
				t.Fatalf("%d of %d trustees down: %v, want ErrNotEnoughTrustees", down+1, c.n, err)
			}
		})
	}
}

// TestTrusteeRefuses exercises the trustee's policy over gRPC: every refusal comes with the
// status code the coordinator branches on, and nothing refused changes the trustee's state.
func TestTrusteeRefuses(t *testing.T) {
	k := newTestKey(t, 3, 2)
	cluster := startCluster(t, k, t.TempDir())
	tc := cluster.Clients[0]
	ctx := context.Background()
	devs := k.devices(t, 3)

	r5 := k.sealedRound(t, devs, 5, 100)
	cms := commitAll(t, k, cluster, r5, 0, 1, 2)
	again, err := commitSum(tc, header(k, 5, 100, 3), r5.contribs)
	if err != nil || !proto.Equal(again, cms[0]) {
		t.Fatalf("repeated commitment to the same set: %v, %v; want the same commitment", again, err)
	}
	first, err := tc.DecryptionShare(ctx, shareRequest(k, r5, cms, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	again, err = commitSum(tc, header(k, 5, 100, 3), r5.contribs)
	if err != nil || !proto.Equal(again, cms[0]) {
		t.Fatalf("repeated commitment after decryption: %v, %v; want the same commitment", again, err)
	}
	retry, err := tc.DecryptionShare(ctx, shareRequest(k, r5, cms, 0, 1))
	if err != nil {
		t.Fatalf("identical retry: %v", err)
	}
	if !slices.EqualFunc(first.Shares, retry.Shares, bytes.Equal) {
		t.Fatal("identical retry got a different share: the protocol ran twice")
	}

	r7 := k.sealedRound(t, devs, 7, 100)
	cms7 := commitAll(t, k, cluster, r7, 0, 1, 2)
	otherParams := shareRequest(k, r7, cms7, 0, 1)
	otherParams.ParamsId = "ckks-other"
	otherEpoch := shareRequest(k, r7, cms7, 0, 1)
	otherEpoch.KeyEpoch++
	lying := shareRequest(k, r7, cms7, 0, 1)
	lying.Contributors = 50
	otherSet := shareRequest(k, r7, cms7, 0, 1)
	otherSet.SetDigest = bytes.Repeat([]byte{7}, 32)
	notYet := shareRequest(k, r7, cms7, 0, 1)
	notYet.Round = 9

	cases := []struct {
		name string
		req  *vigilv1.DecryptionShareRequest
		want codes.Code
	}{
		{"same round, other active set", shareRequest(k, r5, cms, 0, 2), codes.AlreadyExists},
		{"earlier round", shareRequest(k, r5, cms, 0, 1), codes.AlreadyExists},
		{"round not committed to", notYet, codes.FailedPrecondition},
		{"set not committed to", otherSet, codes.AlreadyExists},
		{"contributor count not the committed one", lying, codes.AlreadyExists},
		{"other parameter set", otherParams, codes.FailedPrecondition},
		{"other key epoch", otherEpoch, codes.FailedPrecondition},
		{"fewer commitments than the quorum", shareRequest(k, r7, cms7[:2], 0, 1), codes.FailedPrecondition},
		{"active set without this trustee", shareRequest(k, r7, cms7, 1, 2), codes.InvalidArgument},
		{"active set too small", shareRequest(k, r7, cms7, 0), codes.InvalidArgument},
	}
	for _, c := range cases {
		if c.name == "earlier round" {
			continue // covered by "same round" while round 5 is the last: see below
		}
		_, err := tc.DecryptionShare(ctx, c.req)
		if status.Code(err) != c.want {
			t.Errorf("%s: got %v, want code %v", c.name, err, c.want)
			continue
		}
		t.Logf("%s: %v", c.name, status.Convert(err).Message())
	}
	info, err := tc.Info(ctx, &vigilv1.TrusteeInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if info.GetLastRound() != 5 {
		t.Fatalf("last round %d after refusals, want 5", info.GetLastRound())
	}
	if _, err := tc.DecryptionShare(ctx, shareRequest(k, r7, cms7, 0, 1)); err != nil {
		t.Fatalf("round 7 after the refusals: %v", err)
	}
	if _, err := tc.DecryptionShare(ctx, shareRequest(k, r5, cms, 0, 1)); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("earlier round after round 7: %v, want AlreadyExists", err)
	}
	if _, err := commitSum(tc, header(k, 6, 100, 3), k.sealedRound(t, devs, 6, 100).contribs); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("commit to a round before the last decrypted one: %v, want AlreadyExists", err)
	}
}

// TestRestartKeepsRefusing: commitments and decisions survive a restart; a trustee restarted
// between commit and decryption decrypts from the c1 sum in its journal, and an identical
// retry after the restart gets the saved answer.
func TestRestartKeepsRefusing(t *testing.T) {
	k := newTestKey(t, 3, 2)
	dir := t.TempDir()
	ctx := context.Background()
	devs := k.devices(t, 3)
	r := k.sealedRound(t, devs, 3, 100)

	cluster := startCluster(t, k, dir)
	cms := commitAll(t, k, cluster, r, 0, 1, 2)
	cluster.Close()

	cluster = startCluster(t, k, dir)
	first, err := cluster.Clients[1].DecryptionShare(ctx, shareRequest(k, r, cms, 0, 1))
	if err != nil {
		t.Fatalf("decryption after a restart between commit and decryption: %v", err)
	}
	cluster.Close()

	cluster = startCluster(t, k, dir)
	if _, err := cluster.Clients[1].DecryptionShare(ctx, shareRequest(k, r, cms, 1, 2)); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("after restart, round 3 with another active set: %v, want AlreadyExists", err)
	}
	again, err := cluster.Clients[1].DecryptionShare(ctx, shareRequest(k, r, cms, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(first.Shares, again.Shares, bytes.Equal) {
		t.Fatal("retry after restart got a new share")
	}
	// Trustee 1 has done round 3; the others have committed to it but not decrypted: round 4
	// still finds its quorum.
	r4 := k.sealedRound(t, devs, 4, 100)
	res, err := newClient(t, k, cluster).DecryptSum(ctx, r4.sum, r4.contribs, testPrivacy)
	if err != nil {
		t.Fatal(err)
	}
	checkClose(t, res.Sum, r4.want)
}

func TestConfigRejects(t *testing.T) {
	k := newTestKey(t, 2, 2)
	j := FileJournal{Path: t.TempDir() + "/j"}
	s := k.signers[0]
	for name, cfg := range map[string]Config{
		"no share":             {MinContributors: 3, Journal: j, Signer: s},
		"m_min 1":              {Share: k.shares[0], MinContributors: 1, Journal: j, Signer: s},
		"no journal":           {Share: k.shares[0], MinContributors: 3, Signer: s},
		"no signer":            {Share: k.shares[0], MinContributors: 3, Journal: j},
		"signer not a trustee": {Share: k.shares[0], MinContributors: 3, Journal: j, Signer: s, Trustees: []*sig.PublicKey{k.signers[1].Public(), k.keys.Release.Public()}},
		"more keys than n": {Share: k.shares[0], MinContributors: 3, Journal: j, Signer: s,
			Trustees: append(TrusteeKeys(k.root), k.keys.Release.Public())},
	} {
		if _, err := NewServer(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewClient(ClientConfig{Key: k.key}); err == nil {
		t.Errorf("client without trustees accepted")
	}
}

// TestDeviceDropoutDoesNotBlock: of five devices in a round, one drops out halfway through
// its upload and one never sends; the round seals with the three complete updates, their
// contributions go to the trustees, and the trustees decrypt exactly their sum.
func TestDeviceDropoutDoesNotBlock(t *testing.T) {
	k := newTestKey(t, 3, 2)
	cluster := startCluster(t, k, t.TempDir())
	const dim, round = 9000, 1
	devs := k.devices(t, 5)
	enc, _ := he.NewEncryptor(k.key)
	acc, _ := he.NewAccumulator(k.params, k.key.Epoch, dim)
	want := make([]float64, dim)
	var contribs SliceContributions
	for i, d := range devs {
		u := make([]float64, dim)
		for j := range u {
			u[j] = float64((i+1)*(j%7)) / 1000
		}
		cts, c := k.signedUpdate(t, enc, d, round, u)
		b := he.UpdateBinding(k.key.Epoch, round, d.id, nonce(round, d.id))
		switch i {
		case 3: // connection lost after the first ciphertext
			if err := acc.Add(cts[:1], b); !errors.Is(err, he.ErrDimension) {
				t.Fatalf("partial upload: %v, want ErrDimension", err)
			}
		case 4: // never sends
		default:
			if err := acc.Add(cts, b); err != nil {
				t.Fatal(err)
			}
			contribs = append(contribs, c)
			for j := range u {
				want[j] += u[j]
			}
		}
	}
	sum, err := acc.Seal(round)
	if err != nil {
		t.Fatal(err)
	}
	res, err := newClient(t, k, cluster).DecryptSum(context.Background(), sum, contribs, testPrivacy)
	if err != nil {
		t.Fatal(err)
	}
	checkClose(t, res.Sum, want)
}
