package store

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
)

// MaxListingBytes bounds the version listing one GetVersions reads, every page together:
// minio-go decodes a listing whole, with no bound of its own, so a hostile server answering
// with an endless one made a device allocate gigabytes in seconds (a review). A page of 1000
// versions of a release's file is about 450 KB.
const MaxListingBytes = 1 << 20

// maxResponseBytes bounds every other response the S3 client reads, each on its own, except an
// object's body, which its reader bounds: the pages of List and Delete (1000 keys of the
// longest length ValidKey allows are about 1.5 MB), bucket settings, errors.
const maxResponseBytes = 4 << 20

// bodyLimit is what the responses read under one context may still carry, every response
// together: one object's body, or the pages of one listing.
type bodyLimit struct {
	left  atomic.Int64
	total int64
	what  string // for the error: "the listing of KEY", "object KEY"
}

func newBodyLimit(n int64, what string) *bodyLimit {
	l := &bodyLimit{total: n, what: what}
	l.left.Store(n)
	return l
}

// used returns how many bytes the responses read under l carried.
func (l *bodyLimit) used() int64 { return l.total - l.left.Load() }

type bodyLimitKey struct{}

// withBodyLimit returns ctx with l as the bound of the responses to its requests.
func withBodyLimit(ctx context.Context, l *bodyLimit) context.Context {
	return context.WithValue(ctx, bodyLimitKey{}, l)
}

// limitTransport caps the body of every response the S3 client reads: a successful response to
// a request whose context carries a bodyLimit by that limit, shared by every response under
// it; any other response by maxResponseBytes on its own. Past the cap, reads fail with an error
// wrapping ErrTooLarge, which minio-go returns as the request's error; the connection is then
// closed, not drained.
type limitTransport struct{ next http.RoundTripper }

func (t limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	l, _ := req.Context().Value(bodyLimitKey{}).(*bodyLimit)
	if l == nil || resp.StatusCode/100 != 2 {
		l = newBodyLimit(maxResponseBytes, req.Method+" "+req.URL.Path+" response")
	}
	resp.Body = &limitedBody{rc: resp.Body, limit: l}
	return resp, nil
}

// limitedBody is a response body that fails once its limit is spent and another byte comes.
type limitedBody struct {
	rc    io.ReadCloser
	limit *bodyLimit
	err   error // sticky: minio-go drains a body after an error, which must not read on
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	left := b.limit.left.Load()
	if left <= 0 {
		// Spent: the body may still end here; one more byte is one too many.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n == 0 {
			return 0, err
		}
		b.limit.left.Add(-1)
		b.err = fmt.Errorf("%w: %s is over its bound of %d bytes", ErrTooLarge, b.limit.what, b.limit.total)
		return 0, b.err
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	n, err := b.rc.Read(p)
	b.limit.left.Add(-int64(n))
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
