package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func randomSecret(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// lockedRegion sets up a region as `vigil release init-region` does and returns the admin's
// configuration and the users.
func lockedRegion(t *testing.T) (MinIOConfig, RegionUsers) {
	t.Helper()
	cfg := minioConfig(t)
	users := RegionUsers{
		PublisherAccessKey: "pub-" + randomSecret(t, 4), PublisherSecretKey: randomSecret(t, 16),
		ReaderAccessKey: "dev-" + randomSecret(t, 4), ReaderSecretKey: randomSecret(t, 16),
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := InitRegion(ctx, cfg, users); err != nil {
		t.Fatalf("InitRegion: %v", err)
	}
	return cfg, users
}

func as(t *testing.T, cfg MinIOConfig, access, secret string) *MinIO {
	t.Helper()
	cfg.AccessKey, cfg.SecretKey = access, secret
	s, err := NewMinIO(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAttackRegionWrites is issue 15, item 3 at the store level: in a region set up by
// InitRegion, credentials other than the publisher's (here the devices' read credential, and
// anonymous requests) cannot PUT, DELETE or change retention; the publisher itself cannot
// delete; and the publisher publishes with its own credentials, not the admin's.
func TestAttackRegionWrites(t *testing.T) {
	ctx := context.Background()
	cfg, users := lockedRegion(t)
	pub := as(t, cfg, users.PublisherAccessKey, users.PublisherSecretKey)
	if err := pub.EnsureBucket(ctx); err != nil {
		t.Fatalf("publisher EnsureBucket: %v", err)
	}
	if err := pub.Create(ctx, "releases/m/1/manifest.json", []byte("genuine")); err != nil {
		t.Fatalf("publisher Create: %v", err)
	}
	if err := pub.Put(ctx, "releases/m/latest.json", []byte("pointer")); err != nil {
		t.Fatalf("publisher Put: %v", err)
	}
	reader := as(t, cfg, users.ReaderAccessKey, users.ReaderSecretKey)
	if got, err := reader.Get(ctx, "releases/m/1/manifest.json"); err != nil || string(got) != "genuine" {
		t.Fatalf("reader Get: %q, %v", got, err)
	}
	if err := reader.Put(ctx, "releases/m/latest.json", []byte("forged")); !errors.Is(err, ErrDenied) {
		t.Fatalf("reader Put: %v, want ErrDenied", err)
	}
	anon, err := minio.New(cfg.Endpoint, &minio.Options{Creds: credentials.NewStaticV4("", "", ""), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	versions := func() []minio.ObjectInfo {
		var out []minio.ObjectInfo
		for o := range pub.client.ListObjects(ctx, cfg.Bucket, minio.ListObjectsOptions{Prefix: "releases/m/1/manifest.json", WithVersions: true}) {
			out = append(out, o)
		}
		return out
	}
	vid := versions()[0].VersionID
	far := time.Now().Add(time.Hour)
	gov := minio.Governance
	for _, tc := range []struct {
		name string
		c    *minio.Client
		do   func(c *minio.Client) error
	}{
		{"reader PUT", reader.client, func(c *minio.Client) error {
			_, err := c.PutObject(ctx, cfg.Bucket, "releases/m/1/manifest.json", bytes.NewReader([]byte("evil")), 4, minio.PutObjectOptions{DisableMultipart: true, SendContentMd5: true})
			return err
		}},
		{"reader DELETE", reader.client, func(c *minio.Client) error {
			return c.RemoveObject(ctx, cfg.Bucket, "releases/m/1/manifest.json", minio.RemoveObjectOptions{})
		}},
		{"reader DELETE version", reader.client, func(c *minio.Client) error {
			return c.RemoveObject(ctx, cfg.Bucket, "releases/m/1/manifest.json", minio.RemoveObjectOptions{VersionID: vid})
		}},
		{"reader retention change", reader.client, func(c *minio.Client) error {
			return c.PutObjectRetention(ctx, cfg.Bucket, "releases/m/1/manifest.json", minio.PutObjectRetentionOptions{Mode: &gov, RetainUntilDate: &far, VersionID: vid})
		}},
		{"publisher retention shortened", pub.client, func(c *minio.Client) error {
			soon := time.Now().Add(time.Minute)
			comp := minio.Compliance
			return c.PutObjectRetention(ctx, cfg.Bucket, "releases/m/1/manifest.json", minio.PutObjectRetentionOptions{Mode: &comp, RetainUntilDate: &soon, VersionID: vid})
		}},
		{"anonymous PUT", anon, func(c *minio.Client) error {
			_, err := c.PutObject(ctx, cfg.Bucket, "releases/m/latest.json", bytes.NewReader([]byte("evil")), 4, minio.PutObjectOptions{DisableMultipart: true, SendContentMd5: true})
			return err
		}},
		{"anonymous DELETE", anon, func(c *minio.Client) error {
			return c.RemoveObject(ctx, cfg.Bucket, "releases/m/latest.json", minio.RemoveObjectOptions{})
		}},
		{"publisher DELETE", pub.client, func(c *minio.Client) error {
			return c.RemoveObject(ctx, cfg.Bucket, "releases/m/latest.json", minio.RemoveObjectOptions{})
		}},
		{"publisher DELETE version", pub.client, func(c *minio.Client) error {
			return c.RemoveObject(ctx, cfg.Bucket, "releases/m/1/manifest.json", minio.RemoveObjectOptions{VersionID: vid})
		}},
		{"publisher bucket policy change", pub.client, func(c *minio.Client) error {
			return c.SetBucketPolicy(ctx, cfg.Bucket, "")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do(tc.c)
			// A retention change on a compliance-locked version is refused by the lock itself
			// ("InvalidRequest: Object is WORM protected") before any policy is consulted.
			if code := minio.ToErrorResponse(err).Code; code != "AccessDenied" && code != "InvalidRequest" || err == nil {
				t.Fatalf("got %v (code %q), want a refusal", err, code)
			}
		})
	}
	if n := len(versions()); n != 1 {
		t.Fatalf("%d versions of the manifest after the attacks, want 1", n)
	}
	if got, err := reader.Get(ctx, "releases/m/latest.json"); err != nil || string(got) != "pointer" {
		t.Fatalf("pointer after the attacks: %q, %v", got, err)
	}
	// The check InitRegion ends with passes again, and refuses the admin as publisher.
	if err := CheckRegion(ctx, cfg, users); err != nil {
		t.Fatal(err)
	}
	if err := InitRegion(ctx, cfg, RegionUsers{PublisherAccessKey: cfg.AccessKey, PublisherSecretKey: cfg.SecretKey}); err == nil {
		t.Fatal("InitRegion accepted the admin as the publisher")
	}
}

// TestMinIOVersions checks the version reads that let readers skip what the admin's
// credentials (which object lock alone binds) wrote after a locked version: a plain PUT, a
// delete marker.
func TestMinIOVersions(t *testing.T) {
	ctx := context.Background()
	s := newTestMinIO(t, minioConfig(t))
	if err := s.Create(ctx, "k", []byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "k", []byte("second, larger")); err != nil {
		t.Fatal(err)
	}
	if err := s.client.RemoveObject(ctx, s.bucket, "k", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "k"); err == nil {
		t.Fatal("Get after a delete marker succeeded")
	}
	vs, err := s.GetVersions(ctx, "k", 100, 8)
	if err != nil || len(vs) != 2 || string(vs[0]) != "first" || string(vs[1]) != "second, larger" {
		t.Fatalf("GetVersions: %q, %v", vs, err)
	}
	// A version over the limit is skipped without being read.
	if vs, err := s.GetVersions(ctx, "k", 5, 8); err != nil || len(vs) != 1 || string(vs[0]) != "first" {
		t.Fatalf("GetVersions limit 5: %q, %v", vs, err)
	}
	if err := s.Create(ctx, "k", []byte("third")); err != nil {
		t.Fatalf("Create over a delete marker: %v", err)
	}
	if err := s.PutVersion(ctx, "k", []byte("fourth")); err != nil {
		t.Fatal(err)
	}
	if vs, err := s.GetVersions(ctx, "k", 100, 3); err != nil || len(vs) != 3 || string(vs[2]) != "third" {
		t.Fatalf("GetVersions max 3: %q, %v", vs, err)
	}
	if _, err := s.GetLimit(ctx, "k", 3); !errorsIs(err, ErrTooLarge) {
		t.Fatalf("GetLimit 3: %v", err)
	}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// TestRegionsShareAServer: two regions' buckets on one MinIO server with the same publisher
// (and reader). Setting up the second made its policy the publisher's only one, so publishing
// to the first was refused (a review); set up again, the first took the second's away. The
// publisher writes to both, after either is set up again, and still deletes in neither.
func TestRegionsShareAServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	eu, users := lockedRegion(t)
	us := eu
	us.Bucket += "-us"
	for i, cfg := range []MinIOConfig{us, eu} {
		if err := InitRegion(ctx, cfg, users); err != nil {
			t.Fatalf("InitRegion %d: %v", i, err)
		}
		for _, region := range []MinIOConfig{eu, us} {
			pub := as(t, region, users.PublisherAccessKey, users.PublisherSecretKey)
			if err := pub.Put(ctx, "probe", []byte("x")); err != nil {
				t.Fatalf("after setting up %s: the publisher cannot write to %s: %v", cfg.Bucket, region.Bucket, err)
			}
		}
	}
}

// userPolicies returns the policies MinIO has attached to user.
func userPolicies(t *testing.T, admin *MinIOAdmin, user string) string {
	t.Helper()
	var info struct {
		PolicyName string `json:"policyName"`
	}
	if err := admin.get(context.Background(), "user-info", url.Values{"accessKey": {user}}, &info); err != nil {
		t.Fatal(err)
	}
	return info.PolicyName
}

// TestInitRegionRepairsPublisherAsReader: a review gave one user both roles. The reader policy
// denies writes, so that publisher could not publish, yet the check passed ("lockdown
// checked"), and init-region run again kept the reader policy, so it could not repair it. Now
// the names are refused, the check probes the publisher's writes, and a run again takes the
// bucket's reader policy from the publisher (and the publisher policy from the reader).
func TestInitRegionRepairsPublisherAsReader(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, users := lockedRegion(t)
	same := users
	same.ReaderAccessKey, same.ReaderSecretKey = users.PublisherAccessKey, users.PublisherSecretKey
	if err := InitRegion(ctx, cfg, same); err == nil || !strings.Contains(err.Error(), "both the publisher and the reader") {
		t.Fatalf("InitRegion with the publisher as reader: %v", err)
	}
	// The region as the old init-region left it: the publisher holds the bucket's reader
	// policy too, and the reader its publisher policy.
	admin, err := NewMinIOAdmin(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pubPolicy, readPolicy := "vigil-publish-"+cfg.Bucket, "vigil-read-"+cfg.Bucket
	if err := admin.AttachUserPolicy(ctx, users.PublisherAccessKey, readPolicy); err != nil {
		t.Fatal(err)
	}
	if err := admin.AttachUserPolicy(ctx, users.ReaderAccessKey, pubPolicy); err != nil {
		t.Fatal(err)
	}
	pub := as(t, cfg, users.PublisherAccessKey, users.PublisherSecretKey)
	if err := pub.Create(ctx, "root/1.root.json", []byte("x")); !errors.Is(err, ErrDenied) {
		t.Fatalf("publisher holding the reader policy: Create %v, want ErrDenied", err)
	}
	if err := CheckRegion(ctx, cfg, users); !errors.Is(err, ErrPublisherDenied) {
		t.Fatalf("CheckRegion of a publisher that cannot write: %v, want ErrPublisherDenied", err)
	}
	if err := InitRegion(ctx, cfg, users); err != nil {
		t.Fatalf("InitRegion again: %v", err)
	}
	if got := userPolicies(t, admin, users.PublisherAccessKey); got != pubPolicy {
		t.Fatalf("publisher's policies after the repair: %q", got)
	}
	if got := userPolicies(t, admin, users.ReaderAccessKey); got != readPolicy {
		t.Fatalf("reader's policies after the repair: %q", got)
	}
	if err := pub.Create(ctx, "root/1.root.json", []byte("x")); err != nil {
		t.Fatalf("publisher after the repair: %v", err)
	}
	// The write probes left nothing behind.
	if n := len(listVersions(t, pub, "")); n != 1 {
		t.Fatalf("%d object versions in the bucket, want the one the publisher wrote", n)
	}
}

func listVersions(t *testing.T, s *MinIO, prefix string) []minio.ObjectInfo {
	t.Helper()
	var out []minio.ObjectInfo
	for o := range s.client.ListObjects(context.Background(), s.bucket, minio.ListObjectsOptions{Prefix: prefix, WithVersions: true, Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		out = append(out, o)
	}
	return out
}

// TestInitRegionRefusesExistingUser: a review named another region's publisher as a new
// region's reader, with a secret file that did not exist; init-region gave that user the new
// secret and the other region's publishing failed. A user that exists is refused when its
// secret is new, before anything changes; given its secret, it is set up (running again).
func TestInitRegionRefusesExistingUser(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	eu, users := lockedRegion(t)
	us := eu
	us.Bucket += "-us"
	usUsers := RegionUsers{
		PublisherAccessKey: "pub-" + randomSecret(t, 4), PublisherSecretKey: randomSecret(t, 16), PublisherSecretNew: true,
		ReaderAccessKey: users.PublisherAccessKey, ReaderSecretKey: randomSecret(t, 16), ReaderSecretNew: true,
	}
	err := InitRegion(ctx, us, usUsers)
	var exists *UserExistsError
	if !errors.Is(err, ErrUserExists) || !errors.As(err, &exists) || exists.Role != "reader" || exists.User != users.PublisherAccessKey {
		t.Fatalf("InitRegion with an existing user and a new secret: %v", err)
	}
	admin, err := NewMinIOAdmin(eu)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := admin.UserExists(ctx, usUsers.PublisherAccessKey); ok || err != nil {
		t.Fatalf("the refused run created the other user: %v, %v", ok, err)
	}
	if ok, err := as(t, us, eu.AccessKey, eu.SecretKey).client.BucketExists(ctx, us.Bucket); ok || err != nil {
		t.Fatalf("the refused run created the bucket: %v, %v", ok, err)
	}
	if err := as(t, eu, users.PublisherAccessKey, users.PublisherSecretKey).Put(ctx, "probe", []byte("x")); err != nil {
		t.Fatalf("eu's publisher after the refused run: %v", err)
	}
	// With the user's own secret it is running init-region again: the user is set up, as the
	// reader of us, and still publishes to eu.
	usUsers.ReaderSecretKey, usUsers.ReaderSecretNew = users.PublisherSecretKey, false
	if err := InitRegion(ctx, us, usUsers); err != nil {
		t.Fatalf("InitRegion with the existing user's secret: %v", err)
	}
	if err := as(t, eu, users.PublisherAccessKey, users.PublisherSecretKey).Put(ctx, "probe", []byte("y")); err != nil {
		t.Fatalf("eu's publisher as us's reader: %v", err)
	}
	if ok, err := admin.UserExists(ctx, "no-such-user-"+randomSecret(t, 4)); ok || err != nil {
		t.Fatalf("UserExists of a missing user: %v, %v", ok, err)
	}
}
