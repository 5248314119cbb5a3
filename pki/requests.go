package pki

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/tap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Reasons of the refusals of RequestLimits (ResourceExhausted).
const (
	// ReasonRequestTooLarge: the request is larger than its method accepts.
	ReasonRequestTooLarge = "REQUEST_TOO_LARGE"
	// ReasonTooManyCalls: the caller already has RequestLimitsConfig.MaxInFlight calls open,
	// or an upload open when it starts another.
	ReasonTooManyCalls = "TOO_MANY_CALLS"
	// ReasonServerBusy: the server has RequestLimitsConfig.MaxUploads uploads open
	// (Unavailable: another server of the same service, or this one a moment later, may take
	// it).
	ReasonServerBusy = "SERVER_BUSY"
)

// DefaultMaxInFlight bounds the calls one identity has open on a server, over all its
// connections: a device long-polls GetTask and may fetch a model, a key epoch, renew and submit
// an update meanwhile; eight leaves room.
const DefaultMaxInFlight = 8

// RequestLimitsConfig configures RequestLimits.
type RequestLimitsConfig struct {
	// MaxBytes returns the largest request message a method (full name) accepts, such as
	// vigilv1.MaxRequestBytes. Required.
	MaxBytes func(method string) int
	// MaxInFlight bounds the calls one caller has open at once over all its connections: the
	// identity of its verified certificate, or its address without one. Zero means
	// DefaultMaxInFlight.
	MaxInFlight int
	// Uploads are the methods (full names) whose requests are uploads, such as SubmitUpdate:
	// each may make the server hold a request of its MaxBytes, so a caller has one open at a
	// time, and the server at most MaxUploads.
	Uploads []string
	// MaxUploads bounds the uploads open on the server at once, over all callers; zero means
	// no bound beyond the callers' own.
	MaxUploads int
	// UploadTimeout ends an upload that has not been read and answered in this time, so that
	// a caller sending slowly gives up its slot; zero means no bound.
	UploadTimeout time.Duration
}

// RequestLimits gives each method its own request size limit and bounds the calls one caller
// has open, on servers whose callers hold certificates (a stranger's server reads only
// enrolment-sized messages at all; see Split).
//
// gRPC cannot refuse an oversized request per method before reading it. grpc-go (v1.85) reads
// a request's 5-byte length prefix and compares it with one limit for the whole server,
// grpc.MaxRecvMsgSize, copied into every stream (serverStream.maxReceiveMessageSize); only
// then does it grant flow-control window for the body and read all of it, in the handler's
// decode function, which the generated handler calls before any interceptor runs. Nothing
// that knows the method sees the prefix: the tap (grpc.InTapHandle) runs at the HEADERS frame,
// before any data; the codec and the interceptors run once the body is read, and a codec's
// error becomes Internal; the per-stream override is an unexported xDS hook. So each server
// keeps the limit of its largest method, and the smaller limits are enforced as soon as the
// body is read: the codec does not decode a request larger than its message type may be
// (decoding would copy it twice more, into one buffer and into the message) and notes it, and
// the interceptors refuse its call, before the guard and the handler do any work.
//
// What the per-method limits cannot bound, the caps on calls open bound: the tap refuses a
// caller's call beyond MaxInFlight, and its upload while it has another open, before the
// call's stream exists, so no data of it is buffered. A caller can make the server hold one
// request of the server's limit and MaxInFlight-1 of the small limits' size however many
// connections it opens (its other calls are refused as soon as they are read, undecoded), and
// all callers together MaxUploads requests of the server's limit, each for at most
// UploadTimeout.
type RequestLimits struct {
	cfg     RequestLimitsConfig
	uploads map[string]bool

	mu          sync.Mutex
	open        map[string]int  // calls open by caller
	uploading   map[string]bool // callers with an upload open
	openUploads int

	typeLimits sync.Map // protoreflect.FullName -> int: the largest limit of a method taking it
	undecoded  sync.Map // request message -> its size: left empty by the codec, to be refused
}

// NewRequestLimits returns RequestLimits.
func NewRequestLimits(cfg RequestLimitsConfig) (*RequestLimits, error) {
	if cfg.MaxBytes == nil {
		return nil, errors.New("pki: request limits: no MaxBytes")
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.MaxInFlight < 0 {
		return nil, fmt.Errorf("pki: request limits: MaxInFlight %d is negative", cfg.MaxInFlight)
	}
	if cfg.MaxUploads < 0 || cfg.UploadTimeout < 0 {
		return nil, fmt.Errorf("pki: request limits: MaxUploads %d or UploadTimeout %v is negative", cfg.MaxUploads, cfg.UploadTimeout)
	}
	l := &RequestLimits{cfg: cfg, uploads: map[string]bool{}, open: map[string]int{}, uploading: map[string]bool{}}
	for _, m := range cfg.Uploads {
		l.uploads[m] = true
	}
	return l, nil
}

// ServerOptions installs the limits: the tap (a server has one tap, so this server can have no
// other), the codec (protobuf, checking sizes before decoding) and the interceptors. Put them
// before the Guard's options, so that an oversized request is refused before the guard's
// revocation check.
func (l *RequestLimits) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.InTapHandle(l.Tap), grpc.ForceServerCodecV2(sizeCodec{encoding.GetCodecV2(grpcproto.Name), l}),
		grpc.ChainUnaryInterceptor(l.Unary), grpc.ChainStreamInterceptor(l.Stream)}
}

// Open returns the calls caller (as in the refusals: "device/ID", or "addr:HOST") has open.
func (l *RequestLimits) Open(caller string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open[caller]
}

// Tap is a tap.ServerInHandle that counts the caller's open call, or refuses it beyond
// MaxInFlight, or an upload beyond the caller's one or the server's MaxUploads. It runs when
// the call's headers arrive, before any of its data is read; the counts drop when the call's
// stream ends, its context being cancelled then.
func (l *RequestLimits) Tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	key := caller(ctx)
	upload := l.uploads[info.FullMethodName]
	l.mu.Lock()
	n := l.open[key]
	switch {
	case n >= l.cfg.MaxInFlight:
		l.mu.Unlock()
		return nil, refuse(codes.ResourceExhausted, ReasonTooManyCalls,
			fmt.Sprintf("%s has %d calls open, the limit; %s refused", key, n, info.FullMethodName), 0)
	case upload && l.uploading[key]:
		// Unavailable, not ResourceExhausted: an honest device meets this too, when it sends
		// again before the server has seen its last upload end (a dropped connection, or the
		// moment between a call's answer and its stream's end), and should try again shortly.
		l.mu.Unlock()
		return nil, refuse(codes.Unavailable, ReasonTooManyCalls,
			fmt.Sprintf("%s has an upload open, the limit; send %s again once it has ended", key, info.FullMethodName), time.Second)
	case upload && l.cfg.MaxUploads > 0 && l.openUploads >= l.cfg.MaxUploads:
		l.mu.Unlock()
		return nil, refuse(codes.Unavailable, ReasonServerBusy,
			fmt.Sprintf("the server has %d uploads open, its limit; send %s again shortly, or to another server", l.openUploads, info.FullMethodName), time.Second)
	}
	l.open[key] = n + 1
	if upload {
		l.uploading[key] = true
		l.openUploads++
	}
	l.mu.Unlock()
	context.AfterFunc(ctx, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.open[key]--; l.open[key] <= 0 {
			delete(l.open, key)
		}
		if upload {
			delete(l.uploading, key)
			l.openUploads--
		}
	})
	if upload && l.cfg.UploadTimeout > 0 {
		// The call reads its request under this context, so the timeout ends a slow upload
		// too, not only the work on it.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.cfg.UploadTimeout)
		context.AfterFunc(ctx, cancel)
	}
	return ctx, nil
}

// Uploads returns the uploads open on the server.
func (l *RequestLimits) Uploads() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.openUploads
}

// caller names who makes a call: the identity of its verified certificate, or its address.
func caller(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "addr:unknown"
	}
	if info, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(info.State.VerifiedChains) > 0 {
		if id, err := IdentityOf(info.State.VerifiedChains[0][0]); err == nil {
			return string(id.Role) + "/" + id.ID
		}
	}
	return "addr:" + remoteHost(p.Addr)
}

// check refuses msg if it is larger than method accepts.
func (l *RequestLimits) check(method string, msg any) error {
	limit := l.cfg.MaxBytes(method)
	n, undecoded := l.undecoded.LoadAndDelete(msg)
	if !undecoded {
		m, ok := msg.(proto.Message)
		if !ok {
			return nil
		}
		n = proto.Size(m)
	}
	if n.(int) > limit {
		return refuse(codes.ResourceExhausted, ReasonRequestTooLarge,
			fmt.Sprintf("%s accepts requests of at most %d bytes; this one has %d", method, limit, n), 0)
	}
	return nil
}

// typeLimit returns the largest request limit of the methods, among the services linked into
// the program, whose request is of m's type; 0 if there is none.
func (l *RequestLimits) typeLimit(m proto.Message) int {
	name := m.ProtoReflect().Descriptor().FullName()
	if v, ok := l.typeLimits.Load(name); ok {
		return v.(int)
	}
	limit := 0
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Services().Len() {
			svc := fd.Services().Get(i)
			for j := range svc.Methods().Len() {
				if md := svc.Methods().Get(j); md.Input().FullName() == name {
					limit = max(limit, l.cfg.MaxBytes("/"+string(svc.FullName())+"/"+string(md.Name())))
				}
			}
		}
		return true
	})
	l.typeLimits.Store(name, limit)
	return limit
}

// sizeCodec is gRPC's protobuf codec, except that it leaves a request larger than any method
// taking its type accepts undecoded and notes its size for RequestLimits.check, which refuses
// the call: an error of its own would reach the caller as Internal.
type sizeCodec struct {
	encoding.CodecV2
	l *RequestLimits
}

func (c sizeCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if m, ok := v.(proto.Message); ok {
		if limit := c.l.typeLimit(m); limit > 0 && data.Len() > limit {
			c.l.undecoded.Store(v, data.Len())
			return nil
		}
	}
	return c.CodecV2.Unmarshal(data, v)
}

// Unary is a grpc.UnaryServerInterceptor refusing a request larger than its method accepts.
func (l *RequestLimits) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := l.check(info.FullMethod, req); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// Stream is a grpc.StreamServerInterceptor refusing any message of the stream larger than its
// method accepts.
func (l *RequestLimits) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, limitedStream{ServerStream: ss, l: l, method: info.FullMethod})
}

type limitedStream struct {
	grpc.ServerStream
	l      *RequestLimits
	method string
}

func (s limitedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return s.l.check(s.method, m)
}
