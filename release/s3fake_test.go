package release

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilauth/vigil/store"
)

// s3Fake is an S3 endpoint, served over HTTP by httptest, that holds what an attacker in
// control of a region's bucket puts there: any number of versions under a key, listed with any
// size, with bodies of zeros generated as they are sent, so that gigabytes cost nothing to hold.
// Devices read it through store.MinIO, as they read a real region. It counts the body bytes it
// sends, per key.
type s3Fake struct {
	t      testing.TB
	srv    *httptest.Server
	bucket string

	mu      sync.Mutex
	objects map[string][]fakeVersion // oldest first
	served  map[string]int64         // body bytes sent, by key
	total   int64
	// limit stops the server once it has sent this many body bytes in all, so that a device
	// without a bound (the code before the fix) fails the test instead of exhausting memory.
	limit int64
	// listed counts the bytes of the listings sent; pad adds that many entries of other keys
	// under the prefix, with long names, to every listing; endless makes every listing a
	// <Key> that never ends (until limit).
	listed  int64
	pad     int
	endless bool
}

// fakeVersion is one stored version: data, or size zero bytes when data is nil.
type fakeVersion struct {
	data []byte
	size int64
	// listed is the size the listing reports, when it lies (0: the real size).
	listed int64
	// announced is the Content-Length a GET reports, when it lies (0: the real size); the
	// server sends no more than that.
	announced int64
	// hold keeps the body back until the client hangs up (or 5 s pass): a device that refuses
	// the object by the size in the response's header reads none of it, and one that reads on
	// gets every byte. Without it, what the kernel buffers would count as sent.
	hold bool
}

func (v fakeVersion) len() int64 {
	if v.data != nil {
		return int64(len(v.data))
	}
	return v.size
}

func newS3Fake(t testing.TB) *s3Fake {
	t.Helper()
	f := &s3Fake{t: t, bucket: "vigil-eu", objects: map[string][]fakeVersion{}, served: map[string]int64{}, limit: 1 << 30}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

// store returns a device's store on the fake.
func (f *s3Fake) store() *store.MinIO {
	f.t.Helper()
	st, err := store.NewMinIO(store.MinIOConfig{
		Endpoint: strings.TrimPrefix(f.srv.URL, "http://"), AccessKey: "device", SecretKey: "device-secret", Bucket: f.bucket,
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return st
}

// put adds a version of key.
func (f *s3Fake) put(key string, v fakeVersion) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.objects[key] = append(f.objects[key], v)
}

// publish stores b as the publisher writes it: one version of each object.
func (f *s3Fake) publish(b *Bundle) {
	for name, data := range b.Files {
		f.put(ArtifactKey(b.Manifest.Model, b.Manifest.Version, name), fakeVersion{data: data})
	}
	f.put(ManifestKey(b.Manifest.Model, b.Manifest.Version), fakeVersion{data: b.ManifestEnvelope})
	f.put(LatestKey(b.Manifest.Model), fakeVersion{data: b.LatestEnvelope})
}

// sent returns the body bytes sent for keys with prefix.
func (f *s3Fake) sent(prefix string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for k, b := range f.served {
		if strings.HasPrefix(k, prefix) {
			n += b
		}
	}
	return n
}

func (f *s3Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/"+f.bucket)
	switch {
	case r.Method != http.MethodGet:
		http.Error(w, "read-only fake", http.StatusNotImplemented)
	case r.URL.Query().Has("versions") && (path == "" || path == "/"):
		f.list(w, r.URL.Query().Get("prefix"))
	case strings.HasPrefix(path, "/") && len(path) > 1:
		f.get(w, r, path[1:], r.URL.Query().Get("versionId"))
	default:
		http.Error(w, "not in the fake", http.StatusNotImplemented)
	}
}

var fakeEpoch = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

type fakeListing struct {
	XMLName     xml.Name `xml:"ListVersionsResult"`
	Name        string
	Prefix      string
	MaxKeys     int
	IsTruncated bool
	Versions    []fakeListed `xml:"Version"`
}

type fakeListed struct {
	Key          string
	VersionID    string `xml:"VersionId"`
	IsLatest     bool
	LastModified string
	ETag         string
	Size         int64
}

func (f *s3Fake) list(w http.ResponseWriter, prefix string) {
	f.mu.Lock()
	out := fakeListing{Name: f.bucket, Prefix: prefix, MaxKeys: 1000}
	for key, vs := range f.objects {
		if !strings.HasPrefix(key, prefix) {
			continue
		}
		// S3 lists newest first.
		for i := len(vs) - 1; i >= 0; i-- {
			size := vs[i].len()
			if vs[i].listed != 0 {
				size = vs[i].listed
			}
			out.Versions = append(out.Versions, fakeListed{
				Key: key, VersionID: strconv.Itoa(i), IsLatest: i == len(vs)-1, Size: size,
				LastModified: fakeEpoch.Add(time.Duration(i) * time.Second).Format("2006-01-02T15:04:05.000Z"),
				ETag:         fakeETag(key, i),
			})
		}
	}
	for i := range f.pad {
		out.Versions = append(out.Versions, fakeListed{
			Key: fmt.Sprintf("%s.%0400d", prefix, i), VersionID: "0", IsLatest: true, Size: 1,
			LastModified: fakeEpoch.Format("2006-01-02T15:04:05.000Z"), ETag: fakeETag(prefix, i),
		})
	}
	endless := f.endless
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/xml")
	cw := &listingWriter{f: f, w: w}
	if endless {
		cw.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><ListVersionsResult><Name>` + f.bucket + `</Name><Version><Key>`))
		chunk := []byte(strings.Repeat("a", 32<<10))
		for {
			if _, err := cw.Write(chunk); err != nil {
				return
			}
		}
	}
	if err := xml.NewEncoder(cw).Encode(out); err != nil {
		f.t.Errorf("fake s3: list: %v", err)
	}
}

// listingWriter counts the bytes of a listing, and stops at the fake's limit.
type listingWriter struct {
	f *s3Fake
	w http.ResponseWriter
}

func (c *listingWriter) Write(p []byte) (int, error) {
	c.f.mu.Lock()
	over := c.f.total >= c.f.limit
	c.f.mu.Unlock()
	if over {
		return 0, fmt.Errorf("fake s3: %d bytes sent, the device reads on", c.f.limit)
	}
	n, err := c.w.Write(p)
	c.f.mu.Lock()
	c.f.listed += int64(n)
	c.f.total += int64(n)
	c.f.mu.Unlock()
	return n, err
}

// listedBytes returns the bytes of the listings sent.
func (f *s3Fake) listedBytes() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.listed
}

func fakeETag(key string, i int) string {
	s := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", key, i)))
	return `"` + hex.EncodeToString(s[:16]) + `"`
}

func (f *s3Fake) get(w http.ResponseWriter, r *http.Request, key, versionID string) {
	f.mu.Lock()
	vs := f.objects[key]
	i := len(vs) - 1
	if versionID != "" {
		var err error
		if i, err = strconv.Atoi(versionID); err != nil || i < 0 || i >= len(vs) {
			i = -1
		}
	}
	f.mu.Unlock()
	if i < 0 {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>%s</Key><BucketName>%s</BucketName></Error>`, key, f.bucket)
		return
	}
	v := vs[i]
	size := v.len()
	announced := size
	if v.announced != 0 {
		announced = v.announced
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(announced, 10))
	h.Set("Last-Modified", fakeEpoch.Add(time.Duration(i)*time.Second).Format(http.TimeFormat))
	h.Set("ETag", fakeETag(key, i))
	h.Set("X-Amz-Version-Id", strconv.Itoa(i))
	w.WriteHeader(http.StatusOK)
	if v.hold {
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
	// HTTP/1.1 carries no more than the Content-Length: a longer body is cut there.
	size = min(size, announced)
	chunk := make([]byte, 32<<10)
	for off := int64(0); off < size; {
		n := min(int64(len(chunk)), size-off)
		if v.data != nil {
			copy(chunk, v.data[off:off+n])
		} else {
			clear(chunk)
		}
		f.mu.Lock()
		over := f.total >= f.limit
		f.mu.Unlock()
		if over {
			return // the connection drops mid-body
		}
		k, err := w.Write(chunk[:n])
		f.mu.Lock()
		f.served[key] += int64(k)
		f.total += int64(k)
		f.mu.Unlock()
		if err != nil {
			return
		}
		off += n
	}
}

// zeroSHA256 is the lowercase hex SHA-256 of n zero bytes.
func zeroSHA256(n int64) string {
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, int64(len(buf)))
		h.Write(buf[:k])
		n -= k
	}
	return hex.EncodeToString(h.Sum(nil))
}
