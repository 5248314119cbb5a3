package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// MinIOAdmin makes the calls of MinIO's admin API (v3) that setting up a region needs: look a
// user up, add a user, add a policy, attach a policy to a user. It is run with the region's admin (root)
// credentials, once, by `vigil release init-region`. We talk to the API directly rather than
// through github.com/minio/madmin-go, which would add some thirty modules for these few
// requests; the wire format (SigV4-signed requests, the add-user body sealed as madmin's
// EncryptData does) is tested against the pinned MinIO server.
type MinIOAdmin struct {
	base            string // scheme://host:port
	access, secret  string
	region          string
	client          *http.Client
	argon2Time      uint32
	argon2MemoryKiB uint32
	argon2Threads   uint8
}

// NewMinIOAdmin returns an admin client for the server cfg names, with cfg's credentials (which
// must be the admin's). The bucket in cfg is not used.
func NewMinIOAdmin(cfg MinIOConfig) (*MinIOAdmin, error) {
	if cfg.Bucket == "" {
		cfg.Bucket = "unused"
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	scheme := "http"
	if cfg.TLS {
		scheme = "https"
	}
	return &MinIOAdmin{
		base: scheme + "://" + cfg.Endpoint, access: cfg.AccessKey, secret: cfg.SecretKey, region: cfg.Region,
		client: &http.Client{Timeout: time.Minute},
		// madmin's parameters for argon2id; the server derives the same key from them.
		argon2Time: 1, argon2MemoryKiB: 64 * 1024, argon2Threads: 4,
	}, nil
}

// AddUser creates (or updates the secret of) a MinIO user, enabled.
func (a *MinIOAdmin) AddUser(ctx context.Context, accessKey, secretKey string) error {
	body, err := json.Marshal(struct {
		SecretKey string `json:"secretKey"`
		Status    string `json:"status"`
	}{secretKey, "enabled"})
	if err != nil {
		return err
	}
	sealed, err := a.seal(body)
	if err != nil {
		return err
	}
	return a.do(ctx, http.MethodPut, "add-user", url.Values{"accessKey": {accessKey}}, sealed)
}

// AddPolicy creates or replaces the IAM policy name.
func (a *MinIOAdmin) AddPolicy(ctx context.Context, name string, policy []byte) error {
	return a.do(ctx, http.MethodPut, "add-canned-policy", url.Values{"name": {name}}, policy)
}

// UserExists reports whether MinIO has a user named accessKey (its user-info call). The root
// user is no user in this sense: it is reported absent.
func (a *MinIOAdmin) UserExists(ctx context.Context, accessKey string) (bool, error) {
	var info struct {
		Status string `json:"status"`
	}
	err := a.get(ctx, "user-info", url.Values{"accessKey": {accessKey}}, &info)
	var ae *adminError
	if errors.As(err, &ae) && ae.code == "XMinioAdminNoSuchUser" {
		return false, nil
	}
	return err == nil, err
}

// AttachUserPolicy gives user policy besides the other regions' policies it has (named
// vigil-*): the publisher of two regions' buckets on one server keeps both (setting the one
// policy took the first bucket's writes away; found by a review). The policies named in detach
// are taken away, and so is any policy not named vigil-*, so running init-region again repairs
// a user given more: the publisher of a bucket loses that bucket's reader policy, whose
// explicit deny of writes would override its own (a review set one user up as both).
func (a *MinIOAdmin) AttachUserPolicy(ctx context.Context, user, policy string, detach ...string) error {
	var info struct {
		PolicyName string `json:"policyName"`
	}
	if err := a.get(ctx, "user-info", url.Values{"accessKey": {user}}, &info); err != nil {
		return err
	}
	policies := []string{policy}
	for _, p := range strings.Split(info.PolicyName, ",") {
		if p = strings.TrimSpace(p); strings.HasPrefix(p, "vigil-") && p != policy && !slices.Contains(detach, p) {
			policies = append(policies, p)
		}
	}
	slices.Sort(policies)
	return a.do(ctx, http.MethodPut, "set-user-or-group-policy",
		url.Values{"policyName": {strings.Join(policies, ",")}, "userOrGroup": {user}, "isGroup": {"false"}}, nil)
}

// get sends a GET to the admin API and decodes its JSON answer into v.
func (a *MinIOAdmin) get(ctx context.Context, path string, query url.Values, v any) error {
	body, err := a.request(ctx, http.MethodGet, path, query, nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("store: minio admin: %s: %w", path, err)
	}
	return nil
}

func (a *MinIOAdmin) do(ctx context.Context, method, path string, query url.Values, body []byte) error {
	_, err := a.request(ctx, method, path, query, body)
	return err
}

func (a *MinIOAdmin) request(ctx context.Context, method, path string, query url.Values, body []byte) ([]byte, error) {
	u := a.base + "/minio/admin/v3/" + path + "?" + query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("store: minio admin: %w", err)
	}
	sum := sha256.Sum256(body)
	req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
	req.ContentLength = int64(len(body))
	req = signer.SignV4(*req, a.access, a.secret, "", a.region)
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("store: minio admin: %s: %w", path, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		var body struct {
			Code string `json:"Code"`
		}
		_ = json.Unmarshal(msg, &body) // best effort: the code is for callers to branch on
		return nil, &adminError{path: path, status: resp.Status, code: body.Code, msg: string(bytes.TrimSpace(msg[:min(len(msg), 4096)]))}
	}
	return msg, nil
}

// adminError is a refusal by the admin API, with the code its JSON body gives.
type adminError struct {
	path, status, code, msg string
}

func (e *adminError) Error() string {
	return fmt.Sprintf("store: minio admin: %s: %s: %s", e.path, e.status, e.msg)
}

// seal encrypts data for the admin API as madmin.EncryptData does: a key derived from the
// admin's secret key with argon2id and a random 32-byte salt, then one sio stream fragment of
// ChaCha20-Poly1305 (algorithm ID 1). Layout: salt(32) | 0x01 | nonce(8) | sealed data, where
// the fragment's associated data is 0x80 (final fragment) followed by the tag of an empty
// message sealed under sequence number 0, and the data is sealed under sequence number 1.
func (a *MinIOAdmin) seal(data []byte) ([]byte, error) {
	var salt [32]byte
	var nonce [8]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return nil, err
	}
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, err
	}
	key := argon2.IDKey([]byte(a.secret), salt[:], a.argon2Time, a.argon2MemoryKiB, a.argon2Threads, 32)
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, err
	}
	n := make([]byte, aead.NonceSize())
	copy(n, nonce[:])
	binary.LittleEndian.PutUint32(n[len(n)-4:], 0)
	ad := append([]byte{0x80}, aead.Seal(nil, n, nil, nil)...)
	binary.LittleEndian.PutUint32(n[len(n)-4:], 1)
	out := append(append(append([]byte{}, salt[:]...), 0x01), nonce[:]...)
	return aead.Seal(out, n, data, ad), nil
}

// IsAdmin reports whether st's credentials can use the admin API: then they are the region's
// admin (root) credentials, which the publisher must not use.
func IsAdmin(ctx context.Context, st *MinIO) (bool, error) {
	if st.admin == nil {
		return false, nil
	}
	err := st.admin.do(ctx, http.MethodGet, "info", url.Values{}, nil)
	return err == nil, err
}
