package store

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// hostileS3 is an S3 endpoint that answers listings as handler says and counts the bytes it
// sends; it stops at 1 GiB, so that a reader without a bound fails the test rather than the
// machine.
type hostileS3 struct {
	srv              *httptest.Server
	sent, requests   atomic.Int64
	listVersions     func(w http.ResponseWriter, page int64)
	listObjectsPlain func(w http.ResponseWriter)
}

func newHostileS3(t *testing.T) *hostileS3 {
	t.Helper()
	h := &hostileS3{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page := h.requests.Add(1)
		w.Header().Set("Content-Type", "application/xml")
		switch q := r.URL.Query(); {
		case q.Has("versions") && h.listVersions != nil:
			h.listVersions(&countingWriter{w, h}, page)
		case q.Get("list-type") == "2" && h.listObjectsPlain != nil:
			h.listObjectsPlain(&countingWriter{w, h})
		default:
			w.WriteHeader(http.StatusNotImplemented)
		}
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hostileS3) store(t *testing.T) *MinIO {
	t.Helper()
	s, err := NewMinIO(MinIOConfig{Endpoint: strings.TrimPrefix(h.srv.URL, "http://"), AccessKey: "device", SecretKey: "device-secret", Bucket: "vigil-eu"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type countingWriter struct {
	http.ResponseWriter
	h *hostileS3
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.h.sent.Load() > 256<<20 {
		return 0, errors.New("hostile s3: 256 MiB sent, the reader has no bound")
	}
	n, err := c.ResponseWriter.Write(p)
	c.h.sent.Add(int64(n))
	return n, err
}

// endless writes open, then chunks of filler until the client hangs up.
func endless(w http.ResponseWriter, open string) {
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(open))
	chunk := []byte(strings.Repeat("a", 64<<10))
	for {
		if _, err := w.Write(chunk); err != nil {
			return
		}
	}
}

// allocated runs f and returns what it allocated.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestAttackEndlessListing: a region server answers the
// version listing a device reads before every write-once object, and a plain listing, with a
// <Key> that never ends. minio-go decodes a listing whole; without a bound on the response the
// device allocated 3.2 GiB from 600 MiB of listing in 9 s. Each response is now cut, the
// version listing of a key at MaxListingBytes, any other at maxResponseBytes, with an error
// wrapping ErrTooLarge.
func TestAttackEndlessListing(t *testing.T) {
	h := newHostileS3(t)
	h.listVersions = func(w http.ResponseWriter, _ int64) {
		endless(w, `<?xml version="1.0" encoding="UTF-8"?><ListVersionsResult><Name>vigil-eu</Name><Version><Key>`)
	}
	h.listObjectsPlain = func(w http.ResponseWriter) {
		endless(w, `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>vigil-eu</Name><Contents><Key>`)
	}
	s := h.store(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, c := range []struct {
		name string
		read func() error
	}{
		{"GetVersions", func() error { _, err := s.GetVersions(ctx, "releases/m/v1/params.f64", 1<<20, 8); return err }},
		{"Delete", func() error { return s.Delete(ctx, "releases/m/v1/params.f64") }},
		{"List", func() error { _, err := s.List(ctx, "releases/"); return err }},
	} {
		h.sent.Store(0)
		var err error
		start := time.Now()
		alloc := allocated(func() { err = c.read() })
		t.Logf("%s: %v after %v; %d MiB sent, %d MiB allocated", c.name, err, time.Since(start).Round(time.Millisecond), h.sent.Load()>>20, alloc>>20)
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s of an endless listing: %v, want ErrTooLarge", c.name, err)
		}
		// What the kernel buffers counts as sent; the listing itself is cut at 1 or 4 MiB.
		if sent := h.sent.Load(); sent > 64<<20 {
			t.Errorf("%s: the server sent %d MiB of one listing", c.name, sent>>20)
		}
		if alloc > 128<<20 {
			t.Errorf("%s: %d MiB allocated for one listing", c.name, alloc>>20)
		}
	}
}

// TestAttackEndlessListingPages: the server answers every page of the version listing with
// 1000 other keys under the key as a prefix, truncated, for ever. GetVersions counts every
// entry, not only the key's versions, and stops after maxListedVersions of them.
func TestAttackEndlessListingPages(t *testing.T) {
	h := newHostileS3(t)
	const key = "releases/m/v1/params.f64"
	h.listVersions = func(w http.ResponseWriter, page int64) {
		var b strings.Builder
		fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?><ListVersionsResult><Name>vigil-eu</Name><Prefix>%s</Prefix>`+
			`<IsTruncated>true</IsTruncated><NextKeyMarker>%s.%d</NextKeyMarker><NextVersionIdMarker>x</NextVersionIdMarker>`, key, key, page)
		for i := range 1000 {
			fmt.Fprintf(&b, `<Version><Key>%s.%d.%d</Key><VersionId>v%d</VersionId><IsLatest>true</IsLatest>`+
				`<LastModified>2026-03-01T00:00:00.000Z</LastModified><ETag>"00"</ETag><Size>1</Size></Version>`, key, page, i, i)
		}
		b.WriteString(`</ListVersionsResult>`)
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(b.String()))
	}
	s := h.store(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := s.GetVersions(ctx, key, 1<<20, 8)
	t.Logf("GetVersions: %v after %d pages, %d KiB", err, h.requests.Load(), h.sent.Load()>>10)
	if !errors.Is(err, ErrTooLarge) || errors.Is(err, ErrNotFound) {
		t.Errorf("endless pages of other keys: %v, want ErrTooLarge", err)
	}
	if n := h.requests.Load(); n > 2 {
		t.Errorf("%d pages read for one key", n)
	}
}

// TestListingCounter: GetVersions reports the listing's bytes to a caller that charges them.
func TestListingCounter(t *testing.T) {
	h := newHostileS3(t)
	const key = "releases/m/v1/params.f64"
	listing := `<?xml version="1.0" encoding="UTF-8"?><ListVersionsResult><Name>vigil-eu</Name><Prefix>` + key + `</Prefix>` +
		`<IsTruncated>false</IsTruncated><DeleteMarker><Key>` + key + `</Key><VersionId>d</VersionId><IsLatest>true</IsLatest>` +
		`<LastModified>2026-03-01T00:00:00.000Z</LastModified></DeleteMarker></ListVersionsResult>`
	h.listVersions = func(w http.ResponseWriter, _ int64) {
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(listing))
	}
	var n atomic.Int64
	_, err := h.store(t).GetVersions(WithListingCounter(context.Background(), &n), key, 1<<20, 8)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("only a delete marker: %v, want ErrNotFound", err)
	}
	if n.Load() != int64(len(listing)) {
		t.Fatalf("listing counted %d bytes, the server sent %d", n.Load(), len(listing))
	}
}
