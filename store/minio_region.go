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
	// Reader (optional) is the devices' credential: read only. It must not be the publisher:
	// its policy denies writes, and a deny overrides the publisher's allow.
	ReaderAccessKey, ReaderSecretKey string
	// PublisherSecretNew and ReaderSecretNew say that the secret was made up for this run
	// (`init-region` generated it, its file did not exist): a user of that name that already
	// exists is then refused with ErrUserExists, before anything is changed, rather than have
	// its secret replaced under whoever uses it (a review made another region's publisher the
	// reader and locked it out). With a secret given, an existing user is set to it: that is
	// running init-region again.
	PublisherSecretNew, ReaderSecretNew bool
}

// ErrUserExists means a user InitRegion was to create with a new secret already exists. The
// error is a *UserExistsError.
var ErrUserExists = errors.New("store: init region: the user already exists")

// UserExistsError names the user that exists and its role ("publisher" or "reader").
type UserExistsError struct{ Role, User string }

func (e *UserExistsError) Error() string {
	return fmt.Sprintf("%v: %s %q: its secret would be replaced by a new one; give the file that holds its secret, or another name", ErrUserExists, e.Role, e.User)
}

// Is makes the error match ErrUserExists.
func (e *UserExistsError) Is(target error) bool { return target == ErrUserExists }

// Validate checks what InitRegion can check without the server: the bucket name and the user
// names (the publisher required, neither user the admin, the reader not the publisher).
func (u RegionUsers) Validate(cfg MinIOConfig) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	if u.PublisherAccessKey == "" || u.PublisherSecretKey == "" {
		return errors.New("store: init region: publisher credentials are required")
	}
	if u.PublisherAccessKey == cfg.AccessKey || u.ReaderAccessKey == cfg.AccessKey {
		return errors.New("store: init region: neither the publisher nor the reader may be the admin (root) user: object lock is all that binds root")
	}
	if u.ReaderAccessKey != "" && u.ReaderSecretKey == "" {
		return errors.New("store: init region: the reader's secret is required")
	}
	if u.ReaderAccessKey == u.PublisherAccessKey {
		return fmt.Errorf("store: init region: %q cannot be both the publisher and the reader: the reader's policy denies writes", u.ReaderAccessKey)
	}
	return nil
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
// policies, and the bucket policy. It is idempotent, and repairs a region set up otherwise: the
// publisher loses the bucket's reader policy, the reader its publisher policy. A user whose
// secret is new (see RegionUsers) and who already exists is refused first, with
// ErrUserExists. It then checks, with the users' own credentials, that the publisher can
// write, that the reader cannot, and that no one but the admin can delete.
func InitRegion(ctx context.Context, cfg MinIOConfig, users RegionUsers) error {
	if err := users.Validate(cfg); err != nil {
		return err
	}
	st, err := NewMinIO(cfg)
	if err != nil {
		return err
	}
	admin, err := NewMinIOAdmin(cfg)
	if err != nil {
		return err
	}
	for _, u := range []struct {
		role, name string
		fresh      bool
	}{{"publisher", users.PublisherAccessKey, users.PublisherSecretNew}, {"reader", users.ReaderAccessKey, users.ReaderSecretNew}} {
		if u.name == "" || !u.fresh {
			continue
		}
		exists, err := admin.UserExists(ctx, u.name)
		if err != nil {
			return err
		}
		if exists {
			return &UserExistsError{Role: u.role, User: u.name}
		}
	}
	if err := st.EnsureBucket(ctx); err != nil {
		return err
	}
	pubPolicy, readPolicy := "vigil-publish-"+cfg.Bucket, "vigil-read-"+cfg.Bucket
	if err := admin.AddPolicy(ctx, pubPolicy, PublisherPolicy(cfg.Bucket)); err != nil {
		return err
	}
	if err := admin.AddUser(ctx, users.PublisherAccessKey, users.PublisherSecretKey); err != nil {
		return err
	}
	if err := admin.AttachUserPolicy(ctx, users.PublisherAccessKey, pubPolicy, readPolicy); err != nil {
		return err
	}
	if users.ReaderAccessKey != "" {
		if err := admin.AddPolicy(ctx, readPolicy, ReaderPolicy(cfg.Bucket)); err != nil {
			return err
		}
		if err := admin.AddUser(ctx, users.ReaderAccessKey, users.ReaderSecretKey); err != nil {
			return err
		}
		if err := admin.AttachUserPolicy(ctx, users.ReaderAccessKey, readPolicy, pubPolicy); err != nil {
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

// ErrPublisherDenied means a region's publisher may not write new objects with their retention.
var ErrPublisherDenied = errors.New("store: the region's publisher cannot write")

// CheckRegion checks a region's lockdown with the users' own credentials: the publisher can
// read and write but cannot delete; the reader (if given) cannot write. It writes
// nothing: the write probes are conditional PUTs on a reserved key that does not exist, with
// If-Match of an impossible ETag, which MinIO refuses with AccessDenied when the policy forbids
// the write and otherwise with NoSuchKey (PreconditionFailed if the key did exist).
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
	switch err := probePut(ctx, pub); {
	case err == nil:
	case minio.ToErrorResponse(err).Code == "AccessDenied":
		return fmt.Errorf("%w to %s (a policy of its own or of its groups denies s3:PutObject or s3:PutObjectRetention): %v", ErrPublisherDenied, cfg.Bucket, err)
	default:
		return fmt.Errorf("store: check region: the publisher's write probe: %w", err)
	}
	if err := denied(pub.client.RemoveObject(ctx, cfg.Bucket, pub.prefix+".vigil-probe", minio.RemoveObjectOptions{})); err != nil {
		return fmt.Errorf("%w: the publisher may delete in %s: %v", ErrRegionOpen, cfg.Bucket, err)
	}
	if users.ReaderAccessKey != "" {
		rd, err := probe(users.ReaderAccessKey, users.ReaderSecretKey)
		if err != nil {
			return err
		}
		if err := denied(probePut(ctx, rd)); err != nil {
			return fmt.Errorf("%w: the reader may write to %s: %v", ErrRegionOpen, cfg.Bucket, err)
		}
	}
	return nil
}

// probePut makes the write probe of CheckRegion with st's credentials: a PUT with a compliance
// lock (as the publisher writes) on the reserved key .vigil-probe, with If-Match of an
// impossible ETag, so that even an allowed PUT writes nothing. It returns nil when the write
// was allowed and refused by its condition, an error otherwise: AccessDenied if the policy
// forbids it.
func probePut(ctx context.Context, st *MinIO) error {
	opts := minio.PutObjectOptions{DisableMultipart: true, SendContentMd5: true,
		Mode: minio.Compliance, RetainUntilDate: st.now().Add(st.retention)}
	opts.SetMatchETag("00000000000000000000000000000000")
	_, err := st.client.PutObject(ctx, st.bucket, st.prefix+".vigil-probe", bytes.NewReader(nil), 0, opts)
	switch code := minio.ToErrorResponse(err).Code; {
	case err == nil:
		return errors.New("the conditional PUT succeeded")
	case code == "NoSuchKey" || code == "PreconditionFailed":
		return nil
	}
	return err
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
