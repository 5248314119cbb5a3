package client

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vigilauth/vigil/crypto/he"
	"github.com/vigilauth/vigil/crypto/sig"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
)

// rogueCoordinator serves a key epoch of its own making, signed with the keys a coordinator
// holds online.
type rogueCoordinator struct {
	vigilv1.UnimplementedCoordinatorServer
	document, publicKey []byte
}

func (r *rogueCoordinator) GetKeyEpoch(context.Context, *vigilv1.GetKeyEpochRequest) (*vigilv1.GetKeyEpochResponse, error) {
	return &vigilv1.GetKeyEpochResponse{Document: r.document, PublicKey: r.publicKey}, nil
}

// serveRogue serves r on a loopback port and returns a client of it.
func serveRogue(t *testing.T, r vigilv1.CoordinatorServer) vigilv1.CoordinatorClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	vigilv1.RegisterCoordinatorServer(srv, r)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return vigilv1.NewCoordinatorClient(conn)
}

// TestAttackCoordinatorSubstitutesKey is the attack of a coordinator that runs a key ceremony
// alone, so that it knows the whole secret, and signs the key-epoch document with every key it
// holds online (release, timestamp). Devices accept key epochs only under the root's trustees
// role and refuse to encrypt under its key.
func TestAttackCoordinatorSubstitutesKey(t *testing.T) {
	now := time.Now()
	org, err := release.NewKeySet(rand.Reader, now.AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	p := he.DefaultParams()
	// The coordinator plays every trustee: it holds all the shares, hence the secret.
	_, key, err := he.LocalCeremony(p, 1, []string{"a", "b", "c"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := key.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	doc := release.NewKeyEpoch(1, p.ID(), pk, now, now.AddDate(0, 1, 0))
	for _, tc := range []struct {
		name    string
		signers []release.Signer
	}{
		{"release key", []release.Signer{org.Release}},
		{"timestamp key", []release.Signer{org.Timestamp}},
		{"release and timestamp keys", []release.Signer{org.Release, org.Timestamp}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			signed, err := release.Sign(doc, tc.signers...)
			if err != nil {
				t.Fatal(err)
			}
			api := serveRogue(t, &rogueCoordinator{document: signed, publicKey: pk})
			keys, err := NewSignedKeys(api, org.RootEnvelope, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = keys.KeyEpoch(context.Background(), 1)
			if err == nil || !strings.Contains(err.Error(), "does not verify") || !strings.Contains(err.Error(), "trustees") {
				t.Fatalf("KeyEpoch = %v, want a refusal naming the trustees role", err)
			}
		})
	}
	// The same document approved by the trustees is accepted: the refusal is about who signed.
	signed, err := org.SignKeyEpoch(1, p.ID(), pk, now, now.AddDate(0, 1, 0))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := NewSignedKeys(serveRogue(t, &rogueCoordinator{document: signed, publicKey: pk}), org.RootEnvelope, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.KeyEpoch(context.Background(), 1); err != nil {
		t.Fatalf("trustee-signed key epoch refused: %v", err)
	}
}

// epochArchive serves every key epoch it holds, as a coordinator replaying old ones can.
type epochArchive struct {
	vigilv1.UnimplementedCoordinatorServer
	docs, keys map[uint64][]byte
}

func (a *epochArchive) GetKeyEpoch(_ context.Context, r *vigilv1.GetKeyEpochRequest) (*vigilv1.GetKeyEpochResponse, error) {
	return &vigilv1.GetKeyEpochResponse{Document: a.docs[r.GetEpoch()], PublicKey: a.keys[r.GetEpoch()]}, nil
}

// TestAttackKeyEpochRollbackAcrossRotation: after the device took key epoch 2, the coordinator
// offers epoch 1 again (whose key a past quorum may have leaked). That is refused; but once the
// device followed a root rotation, even one of the privacy key only, its key-epoch floor was
// dropped with the old verifier and epoch 1 was taken (found by review). The floor now
// carries over.
func TestAttackKeyEpochRollbackAcrossRotation(t *testing.T) {
	f := newPolicyFixture(t)
	archive := signedEpochs(t, f, 1, 2)
	keys, err := NewSignedKeys(serveRogue(t, archive), f.keys.RootEnvelope, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := keys.KeyEpoch(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.KeyEpoch(ctx, 1); err == nil {
		t.Fatal("epoch 1 taken after epoch 2")
	}
	newPrivacy, err := sig.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rootV2 := f.rotatePrivacy(t, newPrivacy)
	keys.Follow(func() []byte { return rootV2 })
	if _, err := keys.KeyEpoch(ctx, 1); err == nil {
		t.Fatal("after a root rotation, epoch 1 was taken again after epoch 2")
	}
	if _, err := keys.KeyEpoch(ctx, 2); err != nil {
		t.Fatalf("epoch 2 under the new root: %v", err)
	}
}

// signedEpochs returns an archive of the given key epochs, each signed by f's trustees and
// valid a month.
func signedEpochs(t *testing.T, f *policyFixture, epochs ...uint64) *epochArchive {
	t.Helper()
	archive := &epochArchive{docs: map[uint64][]byte{}, keys: map[uint64][]byte{}}
	archive.sign(t, f.keys, epochs...)
	return archive
}

// sign adds the given key epochs to a, signed by by's trustees and valid a month.
func (a *epochArchive) sign(t *testing.T, by *release.KeySet, epochs ...uint64) {
	t.Helper()
	now := time.Now()
	p := he.DefaultParams()
	for _, e := range epochs {
		_, key, err := he.LocalCeremony(p, e, []string{"a", "b", "c"}, 2)
		if err != nil {
			t.Fatal(err)
		}
		pk, err := key.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if a.docs[e], err = by.SignKeyEpoch(e, p.ID(), pk, now, now.AddDate(0, 1, 0)); err != nil {
			t.Fatal(err)
		}
		a.keys[e] = pk
	}
}

// TestAttackKeyEpochRollbackAfterRestart: the trustees replaced epoch 1 by epoch 2, and the
// device took epoch 2. A coordinator replaying epoch 1, whose document has not expired, to
// the restarted device is refused: the floor is recorded in its directory. A floor recorded
// under trustees' keys the root does not name is not applied.
func TestAttackKeyEpochRollbackAfterRestart(t *testing.T) {
	f := newPolicyFixture(t)
	api := serveRogue(t, signedEpochs(t, f, 1, 2))
	path := filepath.Join(t.TempDir(), KeyEpochFloorFile)
	start := func() *SignedKeys {
		keys, err := NewSignedKeys(api, f.keys.RootEnvelope, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := keys.PersistTo(path); err != nil {
			t.Fatal(err)
		}
		return keys
	}
	ctx := context.Background()
	if _, err := start().KeyEpoch(ctx, 2); err != nil {
		t.Fatal(err)
	}
	restarted := start()
	if _, err := restarted.KeyEpoch(ctx, 1); !errors.Is(err, release.ErrRollback) {
		t.Fatalf("epoch 1 after a restart that followed epoch 2: %v, want ErrRollback", err)
	}
	if _, err := restarted.KeyEpoch(ctx, 2); err != nil {
		t.Fatalf("epoch 2 after the restart: %v", err)
	}

	if err := os.WriteFile(path, []byte("7 00000000000000000000000000000000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := start().KeyEpoch(ctx, 1); err != nil {
		t.Fatalf("a floor set under other trustees' keys was applied: %v", err)
	}
}

// TestAttackKeyEpochFloorAcrossTrusteesRotation: the floor is held against the root the
// device follows, not the one it pinned. After a rotation to new trustees' keys, a device
// that took their epoch 2 refuses their epoch 1 after a restart, although at start it holds
// only its pinned root. And an epoch numbered 2^40, taken under trustees' keys a thief stole,
// keeps no restarted device from the epoch the new trustees sign after the rotation.
func TestAttackKeyEpochFloorAcrossTrusteesRotation(t *testing.T) {
	f := newPolicyFixture(t)
	next, err := release.NewKeySet(rand.Reader, f.now.AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	rootV2 := f.rotateTrustees(t, next.Trustees[0])
	const stolen = 1 << 40
	archive := &epochArchive{docs: map[uint64][]byte{}, keys: map[uint64][]byte{}}
	archive.sign(t, f.keys, stolen)
	archive.sign(t, next, 1, 2, 3)
	api := serveRogue(t, archive)
	ctx := context.Background()
	for _, tc := range []struct {
		name        string
		first       uint64 // taken before the restart
		firstUnder  []byte // the root followed then (nil: the pinned one)
		then        uint64 // asked for after the restart, following v2
		wantRefused bool
	}{
		{"rollback after the rotation", 2, rootV2, 1, true},
		{"a thief's epoch before the rotation", stolen, nil, 3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), KeyEpochFloorFile)
			start := func(follow []byte) *SignedKeys {
				keys, err := NewSignedKeys(api, f.keys.RootEnvelope, nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := keys.PersistTo(path); err != nil {
					t.Fatal(err)
				}
				if follow != nil {
					keys.Follow(func() []byte { return follow })
				}
				return keys
			}
			if _, err := start(tc.firstUnder).KeyEpoch(ctx, tc.first); err != nil {
				t.Fatal(err)
			}
			_, err := start(rootV2).KeyEpoch(ctx, tc.then)
			if refused := errors.Is(err, release.ErrRollback); refused != tc.wantRefused {
				t.Fatalf("epoch %d after the restart: %v, want refused %v", tc.then, err, tc.wantRefused)
			}
		})
	}
}
