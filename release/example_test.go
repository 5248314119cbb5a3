package release_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/store"
)

// Example shows the whole chain: an organisation makes a root of trust, the coordinator builds,
// signs and publishes a release, and a device pinned to the root verifies and fetches it.
func Example() {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	rootKey, _ := sig.GenerateKey(nil)
	releaseKey, _ := sig.GenerateKey(nil)
	timestampKey, _ := sig.GenerateKey(nil)

	root, err := release.NewRoot(1, now.AddDate(1, 0, 0), release.RootRoles{
		Root:      release.RoleSpec{Keys: []*sig.PublicKey{rootKey.Public()}, Threshold: 1},
		Release:   release.RoleSpec{Keys: []*sig.PublicKey{releaseKey.Public()}, Threshold: 1},
		Timestamp: release.RoleSpec{Keys: []*sig.PublicKey{timestampKey.Public()}, Threshold: 1},
		// The roles these tests do not exercise share the release key.
		Trustees: release.RoleSpec{Keys: []*sig.PublicKey{releaseKey.Public()}, Threshold: 1}, Enrolment: release.RoleSpec{Keys: []*sig.PublicKey{releaseKey.Public()}, Threshold: 1}, Privacy: release.RoleSpec{Keys: []*sig.PublicKey{releaseKey.Public()}, Threshold: 1},
	})
	if err != nil {
		panic(err)
	}
	pinned, _ := release.Sign(root, rootKey) // shipped in the device image

	// Coordinator: after a round, build and publish to every region.
	dir, _ := os.MkdirTemp("", "vigil-example")
	defer os.RemoveAll(dir)
	eu, _ := store.NewFS(dir)
	regions := []release.Region{{Name: "eu", Store: eu}}
	bundle, err := release.Build(release.Spec{
		Model: "vigil-ae", Version: 1, Created: now, Expires: now.AddDate(0, 1, 0),
		Training:      release.Training{Rounds: 5, Devices: 40, Epsilon: 1.2, Delta: 1e-5},
		Files:         map[string][]byte{"model.bin": []byte("weights")},
		LatestExpires: now.Add(6 * time.Hour),
	}, releaseKey, timestampKey)
	if err != nil {
		panic(err)
	}
	pub, _ := release.NewPublisher(release.PublisherConfig{})
	if err := pub.PublishRoot(ctx, regions, pinned); err != nil {
		panic(err)
	}
	if err := pub.Publish(ctx, regions, bundle); err != nil {
		panic(err)
	}

	// Device: poll the region's store, verify, install, record the version.
	v, _ := release.NewVerifier(release.VerifierConfig{Root: pinned, Model: "vigil-ae"})
	got, err := v.Fetch(ctx, eu, now.Add(time.Minute))
	if err != nil {
		panic(err)
	}
	fmt.Println(got.Manifest.Model, got.Manifest.Version, string(got.Files["model.bin"]))
	_ = v.SetInstalled(got.Manifest.Version)
	// Output: vigil-ae 1 weights
}
