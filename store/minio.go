package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// MinIOConfig configures a Store on a MinIO (or other S3) bucket.
type MinIOConfig struct {
	// Endpoint is host:port of the server, without scheme.
	Endpoint  string
	AccessKey string
	SecretKey string
	// Bucket holds the objects; EnsureBucket creates it with versioning and object locking.
	Bucket string
	// Prefix, if set, is a key prefix inside the bucket (a valid key, no trailing slash), so
	// several stores can share one bucket.
	Prefix string
	// Region is the bucket's region (default "us-east-1", MinIO's default).
	Region string
	// TLS selects https.
	TLS bool
	// Retention is how long objects written with Create stay locked in compliance mode: no one,
	// not even the root user, can delete or overwrite that version before it ends.
	// Default 365 days.
	Retention time.Duration
}

func (c *MinIOConfig) validate() error {
	if c.Endpoint == "" || strings.Contains(c.Endpoint, "://") {
		return fmt.Errorf("store: minio: endpoint %q must be host:port without scheme", c.Endpoint)
	}
	if c.AccessKey == "" || c.SecretKey == "" {
		return errors.New("store: minio: access key and secret key are required")
	}
	if len(c.Bucket) < 3 || len(c.Bucket) > 63 || strings.ToLower(c.Bucket) != c.Bucket || strings.ContainsAny(c.Bucket, "/_ ") {
		return fmt.Errorf("store: minio: bucket %q is not a valid bucket name (3..63 lowercase letters, digits, '.', '-')", c.Bucket)
	}
	if c.Prefix != "" {
		if err := ValidKey(c.Prefix); err != nil {
			return fmt.Errorf("store: minio: prefix: %w", err)
		}
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.Retention == 0 {
		c.Retention = 365 * 24 * time.Hour
	}
	if c.Retention < 24*time.Hour {
		return fmt.Errorf("store: minio: retention %v is shorter than one day (S3 object lock works in days)", c.Retention)
	}
	return nil
}

// MinIO is a Store on a MinIO bucket with versioning and object locking. Create writes an
// object only if the key is free (a conditional PUT with If-None-Match: *) and locks that
// version for the retention period (WORM); Put writes a new version of a mutable object such as
// a release pointer, and earlier versions stay in the bucket's history.
type MinIO struct {
	client    *minio.Client
	bucket    string
	prefix    string
	region    string
	retention time.Duration
	now       func() time.Time
	admin     *MinIOAdmin // the same credentials on the admin API, to tell an admin apart
}

var (
	_ Store         = (*MinIO)(nil)
	_ LimitedGetter = (*MinIO)(nil)
	_ VersionReader = (*MinIO)(nil)
	_ VersionWriter = (*MinIO)(nil)
	_ Deleter       = (*MinIO)(nil)
)

// NewMinIO returns a MinIO store. It does not contact the server; call EnsureBucket on the
// writer's side before the first write.
func NewMinIO(cfg MinIOConfig) (*MinIO, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	transport, err := minio.DefaultTransport(cfg.TLS)
	if err != nil {
		return nil, fmt.Errorf("store: minio: %w", err)
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: cfg.TLS,
		Region: cfg.Region,
		// Every response body is bounded (see MaxListingBytes and maxResponseBytes): minio-go
		// reads listings and other documents whole, as long as the server sends them.
		Transport: limitTransport{next: transport},
		// Callers (the release publisher, the device poll loop) retry with their own backoff;
		// retrying inside too would multiply the wait while a region is down.
		MaxRetries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("store: minio: %w", err)
	}
	p := cfg.Prefix
	if p != "" {
		p += "/"
	}
	admin, err := NewMinIOAdmin(cfg)
	if err != nil {
		return nil, err
	}
	return &MinIO{client: client, bucket: cfg.Bucket, prefix: p, region: cfg.Region, retention: cfg.Retention, now: time.Now, admin: admin}, nil
}

// Client returns the underlying minio-go client, for administration and tests.
func (s *MinIO) Client() *minio.Client { return s.client }

// Bucket returns the bucket name.
func (s *MinIO) Bucket() string { return s.bucket }

// EnsureBucket creates the bucket with object locking (which also turns on versioning) if it
// does not exist, and refuses a bucket that exists without both: object locking can only be
// enabled when a bucket is created, and write-once releases depend on it.
func (s *MinIO) EnsureBucket(ctx context.Context) error {
	exists, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("store: minio: bucket %s: %w", s.bucket, err)
	}
	if !exists {
		err := s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: s.region, ObjectLocking: true})
		if err != nil && minio.ToErrorResponse(err).Code != "BucketAlreadyOwnedByYou" {
			return fmt.Errorf("store: minio: create bucket %s: %w", s.bucket, err)
		}
	}
	lock, _, _, _, err := s.client.GetObjectLockConfig(ctx, s.bucket)
	if err != nil || lock != "Enabled" {
		return fmt.Errorf("store: minio: bucket %s has no object lock (recreate it with object locking): %v", s.bucket, err)
	}
	v, err := s.client.GetBucketVersioning(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("store: minio: bucket %s versioning: %w", s.bucket, err)
	}
	if !v.Enabled() {
		return fmt.Errorf("store: minio: bucket %s does not have versioning enabled", s.bucket)
	}
	return nil
}

func (s *MinIO) object(key string) (string, error) {
	if err := ValidKey(key); err != nil {
		return "", err
	}
	return s.prefix + key, nil
}

// Get implements Store.
func (s *MinIO) Get(ctx context.Context, key string) ([]byte, error) {
	return s.GetLimit(ctx, key, MaxObjectBytes)
}

// GetLimit implements LimitedGetter: the size the server announces is checked before a byte of
// the body is read, and the buffer is allocated once at that size.
func (s *MinIO) GetLimit(ctx context.Context, key string, limit int64) ([]byte, error) {
	return s.getVersion(ctx, key, "", limit)
}

func (s *MinIO) getVersion(ctx context.Context, key, versionID string, limit int64) ([]byte, error) {
	name, err := s.object(key)
	if err != nil {
		return nil, err
	}
	limit = min(limit, MaxObjectBytes)
	// The body is read below by its announced size; the transport holds it to the limit too.
	ctx = withBodyLimit(ctx, newBodyLimit(limit+1, "object "+key))
	// One GET, whose response carries the size and the body of the same version. (minio-go's
	// Client.GetObject asks for the size first and then for the body if the ETag still
	// matches, so a reader racing a Put of the same key, a device polling latest.json while
	// the coordinator publishes, failed with "precondition failed".)
	body, info, _, err := minio.Core{Client: s.client}.GetObject(ctx, s.bucket, name, minio.GetObjectOptions{VersionID: versionID})
	if err != nil {
		return nil, s.mapErr("get", key, err)
	}
	defer body.Close()
	if info.Size > limit || info.Size < 0 {
		return nil, fmt.Errorf("%w: %s is %d bytes, at most %d", ErrTooLarge, key, info.Size, limit)
	}
	buf := bytes.NewBuffer(make([]byte, 0, info.Size))
	// The announced size is checked above; reading one byte more catches a server that sends
	// more than it announced.
	if _, err := io.Copy(buf, io.LimitReader(body, info.Size+1)); err != nil {
		return nil, s.mapErr("get", key, err)
	}
	if int64(buf.Len()) != info.Size {
		return nil, fmt.Errorf("store: minio: get %s: %d bytes, the server announced %d", key, buf.Len(), info.Size)
	}
	return buf.Bytes(), nil
}

// GetVersions implements VersionReader.
func (s *MinIO) GetVersions(ctx context.Context, key string, limit int64, max int) ([][]byte, error) {
	name, err := s.object(key)
	if err != nil {
		return nil, err
	}
	type version struct {
		id   string
		at   time.Time
		size int64
	}
	var vs []version
	lim := newBodyLimit(MaxListingBytes, "the listing of "+key)
	lctx, cancel := context.WithCancel(withBodyLimit(ctx, lim))
	defer cancel()
	listed, full := 0, false
	for obj := range s.client.ListObjects(lctx, s.bucket, minio.ListObjectsOptions{Prefix: name, WithVersions: true}) {
		if obj.Err != nil {
			countListing(ctx, lim.used())
			return nil, s.mapErr("list versions", key, obj.Err)
		}
		// Every entry counts, not only the key's versions: a server listing endless other
		// keys under the prefix (or delete markers) is cut as soon.
		if listed++; listed > maxListedVersions {
			full = true
			break
		}
		if obj.Key != name || obj.IsDeleteMarker {
			continue
		}
		vs = append(vs, version{id: obj.VersionID, at: obj.LastModified, size: obj.Size})
	}
	countListing(ctx, lim.used())
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(vs) == 0 && full {
		return nil, fmt.Errorf("%w: the listing of %s has more than %d entries, none a version of the key", ErrTooLarge, key, maxListedVersions)
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	// S3 lists the versions of a key newest first; reversed, and then sorted by time (stable,
	// for versions written within the same millisecond), they are oldest first.
	slices.Reverse(vs)
	sort.SliceStable(vs, func(i, j int) bool { return vs[i].at.Before(vs[j].at) })
	var out [][]byte
	for _, v := range vs {
		if len(out) == max {
			break
		}
		if v.size > limit {
			continue
		}
		data, err := s.getVersion(ctx, key, v.id, limit)
		if err != nil {
			return nil, err
		}
		out = append(out, data)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: every version of %s is larger than %d bytes", ErrTooLarge, key, limit)
	}
	return out, nil
}

// maxListedVersions bounds the entries (versions of the key, delete markers, other keys under
// it as a prefix) that GetVersions and Delete read from a listing of one key.
const maxListedVersions = 1000

type listingCounterKey struct{}

// WithListingCounter returns a context under which GetVersions adds to n the bytes of the
// version listings it reads, so that a caller bounding what it reads can charge them beside
// the versions returned. A listing is at most MaxListingBytes.
func WithListingCounter(ctx context.Context, n *atomic.Int64) context.Context {
	return context.WithValue(ctx, listingCounterKey{}, n)
}

func countListing(ctx context.Context, bytes int64) {
	if n, _ := ctx.Value(listingCounterKey{}).(*atomic.Int64); n != nil {
		n.Add(bytes)
	}
}

// Put implements Store.
func (s *MinIO) Put(ctx context.Context, key string, data []byte) error {
	return s.put(ctx, key, data, putPlain)
}

// PutVersion implements VersionWriter: an unconditional write, locked like Create's.
func (s *MinIO) PutVersion(ctx context.Context, key string, data []byte) error {
	return s.put(ctx, key, data, putLocked)
}

// Create implements Store. The object version it writes is locked in compliance mode until
// the retention period ends.
func (s *MinIO) Create(ctx context.Context, key string, data []byte) error {
	return s.put(ctx, key, data, putOnce)
}

type putMode int

const (
	putPlain  putMode = iota // a new version, unlocked
	putOnce                  // only if the key is free, locked
	putLocked                // a new version, locked
)

func (s *MinIO) put(ctx context.Context, key string, data []byte, mode putMode) error {
	if len(data) > MaxObjectBytes {
		return fmt.Errorf("%w: %s: %d bytes", ErrTooLarge, key, len(data))
	}
	name, err := s.object(key)
	if err != nil {
		return err
	}
	opts := minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		// One PUT keeps the write atomic and the condition below on the request that creates
		// the object; MaxObjectBytes is far below S3's 5 GiB single-PUT limit.
		DisableMultipart: true,
		// S3 requires an integrity header on writes to object-locked buckets.
		SendContentMd5: true,
	}
	if mode == putOnce {
		opts.SetMatchETagExcept("*") // If-None-Match: *
	}
	if mode != putPlain {
		opts.Mode = minio.Compliance
		opts.RetainUntilDate = s.now().Add(s.retention)
	}
	_, err = s.client.PutObject(ctx, s.bucket, name, bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		return s.mapErr("put", key, err)
	}
	return nil
}

// List implements Store.
func (s *MinIO) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if obj.Err != nil {
			return nil, s.mapErr("list", prefix, obj.Err)
		}
		key := strings.TrimPrefix(obj.Key, s.prefix)
		if ValidKey(key) == nil {
			keys = append(keys, key)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sort.Strings(keys)
	return keys, nil
}

// Delete implements Deleter: it removes every version of key, one by one with its version ID,
// so that the storage is freed rather than the object hidden behind a delete marker. Versions
// under object lock (or that the credentials may not delete, as a region's publisher may
// not) are left where they are and reported as ErrRetained; Delete never bypasses governance
// retention.
func (s *MinIO) Delete(ctx context.Context, key string) error {
	name, err := s.object(key)
	if err != nil {
		return err
	}
	var ids []string
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	listed := 0
	for obj := range s.client.ListObjects(lctx, s.bucket, minio.ListObjectsOptions{Prefix: name, WithVersions: true}) {
		if obj.Err != nil {
			return s.mapErr("list versions", key, obj.Err)
		}
		if listed++; listed > maxListedVersions {
			break
		}
		if obj.Key == name {
			ids = append(ids, obj.VersionID)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var retained []string
	for _, id := range ids {
		err := s.client.RemoveObject(ctx, s.bucket, name, minio.RemoveObjectOptions{VersionID: id})
		switch {
		case err == nil:
		case refusedDelete(err), s.locked(ctx, name, id):
			retained = append(retained, id)
		default:
			return s.mapErr("delete", key, err)
		}
	}
	if len(retained) > 0 {
		return fmt.Errorf("%w: %s/%s: %d of %d version(s) locked or not deletable with these credentials", ErrRetained, s.bucket, name, len(retained), len(ids))
	}
	return nil
}

// refusedDelete reports a delete the server refused as S3 does for object lock or policy.
func refusedDelete(err error) bool {
	resp := minio.ToErrorResponse(err)
	return resp.StatusCode == http.StatusForbidden || resp.Code == "AccessDenied" || resp.Code == "ObjectLocked"
}

// locked reports whether a version is under retention or legal hold. MinIO refuses to delete
// such a version with a plain InvalidRequest, so the refusal alone does not say why.
func (s *MinIO) locked(ctx context.Context, name, versionID string) bool {
	mode, until, err := s.client.GetObjectRetention(ctx, s.bucket, name, versionID)
	if err == nil && mode != nil && until != nil && until.After(s.now()) {
		return true
	}
	hold, err := s.client.GetObjectLegalHold(ctx, s.bucket, name, minio.GetObjectLegalHoldOptions{VersionID: versionID})
	return err == nil && hold != nil && *hold == minio.LegalHoldEnabled
}

func precondition(err error) bool {
	resp := minio.ToErrorResponse(err)
	return resp.Code == "PreconditionFailed" || resp.StatusCode == http.StatusPreconditionFailed
}

func (s *MinIO) mapErr(op, key string, err error) error {
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == "NoSuchKey" || resp.StatusCode == http.StatusNotFound && resp.Code != "NoSuchBucket":
		return fmt.Errorf("%w: %s", ErrNotFound, key)
	case precondition(err):
		return fmt.Errorf("%w: %s", ErrExist, key)
	case resp.Code == "AccessDenied" || resp.Code == "InvalidAccessKeyId" || resp.Code == "SignatureDoesNotMatch":
		// Not every 403: RequestTimeTooSkewed, say, is this machine's clock, and passes.
		return fmt.Errorf("store: minio: %s %s/%s: %w: %w", op, s.bucket, s.prefix+key, ErrDenied, err)
	}
	return fmt.Errorf("store: minio: %s %s/%s: %w", op, s.bucket, s.prefix+key, err)
}
