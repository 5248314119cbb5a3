package trustee

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/vigilauth/vigil/crypto/he"
	"github.com/vigilauth/vigil/crypto/sig"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
)

// Config configures a trustee Server.
type Config struct {
	// Share is this trustee's secret share from the key ceremony. Required.
	Share *he.SecretShare
	// MinContributors is m_min: the trustee refuses sets of fewer distinct enrolled devices.
	// Required, at least 2 (a "sum" of one update is that device's update).
	MinContributors int
	// Journal persists the trustee's decisions. Required: without it a restart would allow a
	// second decryption of the same round.
	Journal Journal
	// Signer signs the trustee's commitments: its ceremony identity's ML-DSA-65 key
	// (he.Identity.SigningKey). Required.
	Signer *sig.PrivateKey
	// Root is the pinned root of trust: device records must verify under its enrolment role,
	// and, unless Trustees is set, commitments count only under keys of its trustees role.
	// Required.
	Root *release.Root
	// Trustees are the keys whose commitments count towards the quorum (default: the root's
	// trustees role). They must include Signer's key and be at most n, the key epoch's number
	// of trustees, and at least the quorum.
	Trustees []*sig.PublicKey
	// Now is the clock device records are checked against (default time.Now).
	Now func() time.Time
	// Logger receives one record per request (default: discard).
	Logger *slog.Logger
	// PartBytes is the memory set aside for parts of rounds that frontends verified with the
	// trustee (CommitPart) before the coordinator commits them (default DefaultPartBytes).
	PartBytes int64
}

func (c *Config) validate() error {
	if c.Share == nil {
		return errors.New("trustee: no secret share configured")
	}
	if c.MinContributors < 2 || c.MinContributors > he.MaxContributors {
		return fmt.Errorf("trustee: MinContributors %d, want 2 to %d", c.MinContributors, he.MaxContributors)
	}
	if c.Journal == nil {
		return errors.New("trustee: no journal configured")
	}
	if c.Signer == nil {
		return errors.New("trustee: no signing key configured for commitments")
	}
	if c.Root == nil {
		return errors.New("trustee: no root of trust configured: device records and commitments are checked under it")
	}
	if c.Trustees == nil {
		c.Trustees = TrusteeKeys(c.Root)
	}
	n := len(c.Share.Trustees)
	ids := map[sig.KeyID]bool{}
	for _, k := range c.Trustees {
		ids[k.ID()] = true
	}
	switch {
	case !ids[c.Signer.ID()]:
		return fmt.Errorf("trustee: this trustee's signing key %s is not among the trustee keys whose commitments count", c.Signer.ID().Short())
	case len(ids) > n:
		// More keys than trustees would let quorums of q keys miss each other.
		return fmt.Errorf("trustee: %d trustee keys for a key epoch of %d trustees", len(ids), n)
	case len(ids) < Quorum(n, c.Share.Threshold):
		return fmt.Errorf("trustee: %d trustee keys, a quorum of %d is needed", len(ids), Quorum(n, c.Share.Threshold))
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.PartBytes == 0 {
		c.PartBytes = DefaultPartBytes
	}
	if c.PartBytes < 0 {
		return fmt.Errorf("trustee: PartBytes %d is negative", c.PartBytes)
	}
	return nil
}

// Server is one trustee as a gRPC service (vigilv1.TrusteeServer). CommitSum verifies a
// round's device-signed contributions and commits, durably, to that one participant set;
// DecryptionShare then shares the decryption of the trustee's own c1 sum of that set, once,
// given commitments to it from a quorum of trustees (see Quorum). Each decision is saved
// before the answer leaves. Decisions are taken one at a time; contributions are verified
// concurrently with other requests.
type Server struct {
	vigilv1.UnimplementedTrusteeServer

	cfg       Config
	params    he.Params
	keyDigest [32]byte
	parts     *partStore

	mu    sync.Mutex // guards dec and state
	dec   *he.Decryptor
	state State
}

var _ vigilv1.TrusteeServer = (*Server)(nil)

// NewServer loads the journal and returns a Server.
func NewServer(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	dec, err := he.NewDecryptor(cfg.Share)
	if err != nil {
		return nil, fmt.Errorf("trustee: %w", err)
	}
	st, err := cfg.Journal.Load()
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, params: cfg.Share.Params(), keyDigest: cfg.Share.KeyDigest, parts: newPartStore(cfg.PartBytes), dec: dec, state: st}, nil
}

// Info implements vigilv1.TrusteeServer.
func (s *Server) Info(ctx context.Context, _ *vigilv1.TrusteeInfoRequest) (*vigilv1.TrusteeInfoResponse, error) {
	s.mu.Lock()
	last := s.state.LastRound
	s.mu.Unlock()
	sh := s.cfg.Share
	return &vigilv1.TrusteeInfoResponse{
		TrusteeId:       sh.TrusteeID(),
		ShamirIndex:     sh.Point,
		ParamsId:        s.params.ID(),
		KeyEpoch:        sh.Epoch,
		Threshold:       uint32(sh.Threshold),
		MinContributors: uint32(s.cfg.MinContributors),
		LastRound:       last,
		KeyDigest:       s.keyDigest[:],
	}, nil
}

// CommitSum implements vigilv1.TrusteeServer.
func (s *Server) CommitSum(stream grpc.ClientStreamingServer[vigilv1.SumPart, vigilv1.SumCommitment]) error {
	ctx := stream.Context()
	c, hdr, err := s.commitSum(stream)
	log := s.cfg.Logger.With("round", hdr.GetRound(), "contributors", hdr.GetContributors())
	if err != nil {
		log.WarnContext(ctx, "commitment refused", "err", err)
		return toStatus(err)
	}
	log.InfoContext(ctx, "committed to a participant set", "set", fmt.Sprintf("%x", c.GetSetDigest()[:8]))
	return stream.SendAndClose(c)
}

// header receives a CommitSum or CommitPart stream's header, and returns it with the last
// round the trustee decrypted.
func (s *Server) header(stream sumStream) (*vigilv1.SumHeader, uint64, error) {
	first, err := stream.Recv()
	if err != nil {
		return nil, 0, fmt.Errorf("%w: no header: %v", ErrHeader, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return first.GetHeader(), s.state.LastRound, nil
}

func (s *Server) commitSum(stream grpc.ClientStreamingServer[vigilv1.SumPart, vigilv1.SumCommitment]) (*vigilv1.SumCommitment, *vigilv1.SumHeader, error) {
	hdr, last, err := s.header(stream)
	if err != nil {
		return nil, nil, err
	}
	v, err := newSumVerifier(s.cfg.Share, s.cfg.MinContributors, last, s.cfg.Root, s.cfg.Now(), hdr)
	if err != nil {
		return nil, hdr, err
	}
	if err := s.mergeParts(v, hdr.GetParts()); err != nil {
		return nil, hdr, err
	}
	if err := verifyStream(stream, v, runtime.GOMAXPROCS(0)); err != nil {
		return nil, hdr, err
	}
	set, err := v.finish()
	if err != nil {
		return nil, hdr, err
	}
	c, err := s.commit(hdr, set, v.c1)
	return c, hdr, err
}

// sumStream is what CommitSum and CommitPart receive.
type sumStream interface {
	Recv() (*vigilv1.SumPart, error)
}

// verifyStream feeds the stream's contributions to v, checking up to workers of them at once
// (records and signatures are the costly part) and adding them one at a time. At most workers
// contributions are held besides the one being received, so memory stays bounded whatever the
// number of devices. It stops at the first refusal.
func verifyStream(stream sumStream, v *sumVerifier, workers int) error {
	type result struct {
		c   *vigilv1.Contribution
		m   member
		err error
	}
	results := make(chan result, workers)
	inflight := 0
	var first error
	settle := func(r result) {
		inflight--
		if first == nil && r.err != nil {
			first = r.err
		}
		if first == nil {
			first = v.accept(r.c, r.m)
		}
	}
	for first == nil {
		part, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			first = err
			break
		}
		c := part.GetContribution()
		if c == nil {
			what := "neither a header nor a contribution"
			if part.GetHeader() != nil {
				what = "a second header"
			}
			first = fmt.Errorf("%w: a stream message with %s where a contribution was expected", ErrContribution, what)
			break
		}
		if first = v.admit(c); first != nil {
			break
		}
		if inflight == workers {
			settle(<-results)
		}
		inflight++
		go func() {
			m, err := v.check(c)
			results <- result{c, m, err}
		}()
	}
	for inflight > 0 {
		settle(<-results)
	}
	return first
}

// commit decides, saves and signs the trustee's commitment to a verified set.
func (s *Server) commit(hdr *vigilv1.SumHeader, set [32]byte, c1 *he.C1Sum) (*vigilv1.SumCommitment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	saved, err := commitDecision(&s.state, hdr.GetRound(), set)
	if err != nil {
		return nil, err
	}
	if saved != nil {
		return parseCommitment(saved)
	}
	c1Digest := c1.Digest()
	c := &vigilv1.SumCommitment{
		TrusteeId: s.cfg.Share.TrusteeID(), Round: hdr.GetRound(), KeyEpoch: hdr.GetKeyEpoch(),
		SetDigest: set[:], Contributors: hdr.GetContributors(), C1Digest: c1Digest[:],
	}
	if err := signCommitment(c, s.cfg.Signer); err != nil {
		return nil, err
	}
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("trustee: %w", err)
	}
	c1Bytes, err := c1.MarshalBinary()
	if err != nil {
		return nil, err
	}
	next := s.state
	next.Committed = Committed{Round: hdr.GetRound(), SetDigest: set, Contributors: hdr.GetContributors(), C1Digest: c1Digest, Commitment: raw, C1: c1Bytes}
	// Saved before it is answered: a trustee that crashed after answering must remember the set.
	if err := s.cfg.Journal.Save(next); err != nil {
		return nil, fmt.Errorf("trustee: saving the commitment before answering: %w", err)
	}
	s.state = next
	return c, nil
}

func parseCommitment(raw []byte) (*vigilv1.SumCommitment, error) {
	var c vigilv1.SumCommitment
	if err := proto.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("trustee: the journal's commitment: %w", err)
	}
	return &c, nil
}

// DecryptionShare implements vigilv1.TrusteeServer.
func (s *Server) DecryptionShare(ctx context.Context, req *vigilv1.DecryptionShareRequest) (*vigilv1.DecryptionShareResponse, error) {
	resp, err := s.decryptionShare(req)
	log := s.cfg.Logger.With("round", req.GetRound(), "contributors", req.GetContributors(), "active", req.GetActiveShamirIndices())
	if err != nil {
		log.WarnContext(ctx, "decryption share refused", "err", err)
		return nil, toStatus(err)
	}
	log.InfoContext(ctx, "decryption share released", "ciphertexts", len(resp.Shares))
	return resp, nil
}

func (s *Server) decryptionShare(req *vigilv1.DecryptionShareRequest) (*vigilv1.DecryptionShareResponse, error) {
	sh := s.cfg.Share
	if req.GetParamsId() != s.params.ID() {
		return nil, fmt.Errorf("%w: parameter set %q, this trustee holds a share under %q", ErrKeyMismatch, req.GetParamsId(), s.params.ID())
	}
	if req.GetKeyEpoch() != sh.Epoch {
		return nil, fmt.Errorf("%w: key epoch %d, this trustee holds a share of epoch %d", ErrKeyMismatch, req.GetKeyEpoch(), sh.Epoch)
	}
	d := decrypt{round: req.GetRound(), set: req.GetSetDigest(), contributors: req.GetContributors(), digest: requestDigest(req)}

	s.mu.Lock()
	defer s.mu.Unlock()
	cached, err := decide(&s.state, d)
	if err != nil {
		return nil, err
	}
	if cached != nil {
		return &vigilv1.DecryptionShareResponse{TrusteeId: sh.TrusteeID(), Shares: cached}, nil
	}
	own, err := parseCommitment(s.state.Committed.Commitment)
	if err != nil {
		return nil, err
	}
	need := Quorum(len(sh.Trustees), sh.Threshold)
	if _, err := quorumCheck(req.GetCommitments(), own, s.cfg.Trustees, s.cfg.Signer.Public(), need); err != nil {
		return nil, err
	}
	c1, err := he.ParseC1Sum(s.params, s.state.Committed.C1)
	if err != nil {
		return nil, fmt.Errorf("trustee: the journal's c1 sum: %w", err)
	}
	shares, err := s.dec.ShareC1(c1, req.GetRound(), req.GetActiveShamirIndices())
	if err != nil {
		return nil, err
	}
	next := s.state
	next.LastRound, next.Request, next.Response = d.round, d.digest, shares
	// The c1 sum is not needed any more: this round is never decrypted again.
	next.Committed.C1 = nil
	if err := s.cfg.Journal.Save(next); err != nil {
		return nil, fmt.Errorf("trustee: saving the decision before answering: %w", err)
	}
	s.state = next
	return &vigilv1.DecryptionShareResponse{TrusteeId: sh.TrusteeID(), Shares: shares}, nil
}

// requestDigest hashes every field of the request, so that only an identical retry is
// recognised as one.
func requestDigest(req *vigilv1.DecryptionShareRequest) [32]byte {
	h := sha256.New()
	var buf []byte
	field := func(p []byte) {
		buf = binary.LittleEndian.AppendUint64(buf, uint64(len(p)))
		buf = append(buf, p...)
	}
	field([]byte("vigil/trustee/request/v2"))
	buf = binary.LittleEndian.AppendUint64(buf, req.GetRound())
	buf = binary.LittleEndian.AppendUint64(buf, req.GetKeyEpoch())
	field([]byte(req.GetParamsId()))
	buf = binary.LittleEndian.AppendUint64(buf, uint64(req.GetContributors()))
	buf = binary.LittleEndian.AppendUint64(buf, uint64(len(req.GetActiveShamirIndices())))
	for _, x := range req.GetActiveShamirIndices() {
		buf = binary.LittleEndian.AppendUint64(buf, x)
	}
	field(req.GetSetDigest())
	buf = binary.LittleEndian.AppendUint64(buf, uint64(len(req.GetCommitments())))
	for _, c := range req.GetCommitments() {
		field(commitmentMessage(c))
		field(c.GetSignature())
	}
	h.Write(buf)
	var out [32]byte
	h.Sum(out[:0])
	return out
}
