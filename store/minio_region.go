package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/minio/minio-go/v7"
)

// RegionUsers are the credentials a release region is operated with. The admin (MinIO's root
// user) sets the region up once and is then kept offline: object lock binds even the root user
// (compliance mode), but nothing else does, so the tools never publish with it.
type RegionUsers struct {
	// Publisher writes releases: new objects, never deletes, never retention changes.
	PublisherAccessKey, PublisherSecretKey string
	// Reader (optional) is the devices' credential: read only.
	ReaderAccessKey, ReaderSecretKey string
}

// readActions are what devices and the publisher may do, writeActions what only the publisher
// may do on a release bucket, and deleteActions what no one may do (compliance-locked versions
// cannot be deleted anyway; delete markers could be added).
var (
	readActions = []string{
		"s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:ListBucketVersions",
		"s3:GetBucketLocation", "s3:GetBucketVersioning", "s3:GetBucketObjectLockConfiguration",
		"s3:GetObjectRetention",
	}
	writeActions  = []string{"s3:PutObject", "s3:PutObjectRetention"}
	deleteActions = []string{
		"s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention", "s3:PutObjectLegalHold",
		"s3:PutBucketPolicy", "s3:DeleteBucketPolicy", "s3:PutBucketVersioning", "s3:PutBucketObjectLockConfiguration",
		"s3:DeleteBucket",
	}
)

type statement struct {
	Effect    string         `json:"Effect"`
	Principal map[string]any `json:"Principal,omitempty"`
	Action    []string       `json:"Action"`
	Resource  []string       `json:"Resource"`
	Condition map[string]any `json:"Condition,omitempty"`
}

type policyDoc struct {
	Version   string      `json:"Version"`
	Statement []statement `json:"Statement"`
}

func resources(bucket string) []string {
	return []string{"arn:aws:s3:::" + bucket, "arn:aws:s3:::" + bucket + "/*"}
}

// PublisherPolicy is the IAM policy of a region's publisher: read, write new objects (with
// their retention), and an explicit deny of every delete and of bucket policy, versioning and
// lock changes, so that even leaked publisher credentials cannot remove a release.
func PublisherPolicy(bucket string) []byte {
	return mustJSON(policyDoc{Version: "2012-10-17", Statement: []statement{
		{Effect: "Allow", Action: append(append([]string{}, readActions...), writeActions...), Resource: resources(bucket)},
		{Effect: "Deny", Action: deleteActions, Resource: resources(bucket)},
	}})
}

// ReaderPolicy is the IAM policy of a region's devices: read only.
func ReaderPolicy(bucket string) []byte {
	return mustJSON(policyDoc{Version: "2012-10-17", Statement: []statement{
		{Effect: "Allow", Action: readActions, Resource: resources(bucket)},
		{Effect: "Deny", Action: append(append([]string{}, writeActions...), deleteActions...), Resource: resources(bucket)},
	}})
}

// BucketPolicy denies writes, deletes and retention changes to every principal but the
// publisher. S3 applies it to every request. MinIO applies bucket policies to anonymous
// requests only; there the users' IAM policies (PublisherPolicy, ReaderPolicy) carry the same
// rule, and no other user may be given write access to the bucket.
func BucketPolicy(bucket, publisher string) []byte {
	return mustJSON(policyDoc{Version: "2012-10-17", Statement: []statement{
		{
			Effect: "Deny", Principal: map[string]any{"AWS": []string{"*"}},
			Action: append(append([]string{}, writeActions...), deleteActions...), Resource: resources(bucket),
			Condition: map[string]any{"StringNotEquals": map[string][]string{"aws:username": {publisher}}},
		},
	}})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // static documents
	}
	return b
}

// InitRegion sets up a release region with the admin's credentials in cfg: the bucket with
// object lock and versioning, a publisher user (and optionally a reader user) with their IAM
// policies, and the bucket policy. It is idempotent. It then checks, with the users' own
// credentials, that the reader cannot write and that no one but the admin can delete.
func InitRegion(ctx context.Context, cfg MinIOConfig, users RegionUsers) error {
	if users.PublisherAccessKey == "" || users.PublisherSecretKey == "" {
		return errors.New("store: init region: publisher credentials are required")
	}
	if users.PublisherAccessKey == cfg.AccessKey {
		return errors.New("store: init region: the publisher must not be the admin (root) user: object lock is all that binds root")
	}
	st, err := NewMinIO(cfg)
	if err != nil {
		return err
	}
	if err := st.EnsureBucket(ctx); err != nil {
		return err
	}
	admin, err := NewMinIOAdmin(cfg)
	if err != nil {
		return err
	}
	pubPolicy, readPolicy := "vigil-publish-"+cfg.Bucket, "vigil-read-"+cfg.Bucket
	if err := admin.AddPolicy(ctx, pubPolicy, PublisherPolicy(cfg.Bucket)); err != nil {
		return err
	}
	if err := admin.AddUser(ctx, users.PublisherAccessKey, users.PublisherSecretKey); err != nil {
		return err
	}
	if err := admin.AttachUserPolicy(ctx, users.PublisherAccessKey, pubPolicy); err != nil {
		return err
	}
	if users.ReaderAccessKey != "" {
		if err := admin.AddPolicy(ctx, readPolicy, ReaderPolicy(cfg.Bucket)); err != nil {
			return err
		}
		if err := admin.AddUser(ctx, users.ReaderAccessKey, users.ReaderSecretKey); err != nil {
			return err
		}
		if err := admin.AttachUserPolicy(ctx, users.ReaderAccessKey, readPolicy); err != nil {
			return err
		}
	}
	if err := st.client.SetBucketPolicy(ctx, cfg.Bucket, string(BucketPolicy(cfg.Bucket, users.PublisherAccessKey))); err != nil {
		return fmt.Errorf("store: init region: bucket policy: %w", err)
	}
	return CheckRegion(ctx, cfg, users)
}

// ErrRegionOpen means a region lets someone other than the admin delete, or someone other than
// the publisher write.
var ErrRegionOpen = errors.New("store: region is not locked down")

// CheckRegion checks a region's lockdown with the users' own credentials: the publisher can
// read but cannot delete; the reader (if given) cannot write or delete. It writes nothing that
// stays: the probes are refused, or they fail on a key that cannot exist.
func CheckRegion(ctx context.Context, cfg MinIOConfig, users RegionUsers) error {
	probe := func(access, secret string) (*MinIO, error) {
		c := cfg
		c.AccessKey, c.SecretKey = access, secret
		return NewMinIO(c)
	}
	pub, err := probe(users.PublisherAccessKey, users.PublisherSecretKey)
	if err != nil {
		return err
	}
	if _, err := pub.List(ctx, "root/"); err != nil {
		return fmt.Errorf("store: check region: the publisher cannot list %s: %w", cfg.Bucket, err)
	}
	if err := denied(pub.client.RemoveObject(ctx, cfg.Bucket, pub.prefix+".vigil-probe", minio.RemoveObjectOptions{})); err != nil {
		return fmt.Errorf("%w: the publisher may delete in %s: %v", ErrRegionOpen, cfg.Bucket, err)
	}
	if users.ReaderAccessKey != "" {
		rd, err := probe(users.ReaderAccessKey, users.ReaderSecretKey)
		if err != nil {
			return err
		}
		// A conditional PUT on a key that exists nowhere would succeed if allowed; the check
		// runs on a reserved key with If-Match of an impossible ETag, so even an allowed PUT
		// writes nothing.
		opts := minio.PutObjectOptions{DisableMultipart: true, SendContentMd5: true}
		opts.SetMatchETag("00000000000000000000000000000000")
		_, err = rd.client.PutObject(ctx, cfg.Bucket, rd.prefix+".vigil-probe", bytes.NewReader(nil), 0, opts)
		if err := denied(err); err != nil {
			return fmt.Errorf("%w: the reader may write to %s: %v", ErrRegionOpen, cfg.Bucket, err)
		}
	}
	return nil
}

// denied returns nil if err is an access-denied refusal.
func denied(err error) error {
	if err != nil && minio.ToErrorResponse(err).Code == "AccessDenied" {
		return nil
	}
	if err == nil {
		return errors.New("request allowed")
	}
	return err
}
