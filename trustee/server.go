package trustee

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/vigilauth/vigil/crypto/he"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// Config configures a trustee Server.
type Config struct {
	// Share is this trustee's secret share from the key ceremony. Required.
	Share *he.SecretShare
	// MinContributors is m_min: the trustee refuses sums of fewer updates. Required, at
	// least 2 (a "sum" of one update is that device's update).
	MinContributors int
	// Journal persists the trustee's decisions. Required: without it a restart would allow a
	// second decryption of the same round.
	Journal Journal
	// Logger receives one record per request (default: discard).
	Logger *slog.Logger
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
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Server is one trustee as a gRPC service (vigilv1.TrusteeServer). It computes decryption
// shares only for requests its policy allows (see decide) and saves each decision before it
// releases the share. Requests are served one at a time.
//
// The trustee cannot see devices, so it takes the contributor count from the coordinator: a
// coordinator that lies about it, or re-randomises a sum and presents it as a new round,
// defeats m_min. The trust model makes the coordinator honest but curious; device-signed
// receipts checked here would remove that assumption and are not built.
type Server struct {
	vigilv1.UnimplementedTrusteeServer

	cfg       Config
	params    he.Params
	keyDigest [32]byte

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
	return &Server{cfg: cfg, params: cfg.Share.Params(), keyDigest: cfg.Share.KeyDigest, dec: dec, state: st}, nil
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
	contributors := int(req.GetContributors())
	sum, err := he.ParseSum(s.params, sh.Epoch, req.GetRound(), contributors, req.GetCiphertexts())
	if err != nil {
		return nil, err
	}
	r := request{round: req.GetRound(), contributors: contributors, digest: requestDigest(req), sum: sum.Fingerprint()}

	s.mu.Lock()
	defer s.mu.Unlock()
	cached, err := decide(&s.state, s.cfg.MinContributors, r)
	if err != nil {
		return nil, err
	}
	if cached != nil {
		return &vigilv1.DecryptionShareResponse{TrusteeId: sh.TrusteeID(), Shares: cached}, nil
	}
	shares, err := s.dec.Share(sum, req.GetActiveShamirIndices())
	if err != nil {
		return nil, err
	}
	next := record(s.state, r, shares)
	if err := s.cfg.Journal.Save(next); err != nil {
		return nil, fmt.Errorf("trustee: saving the decision before answering: %w", err)
	}
	s.state = next
	return &vigilv1.DecryptionShareResponse{TrusteeId: sh.TrusteeID(), Shares: shares}, nil
}

// requestDigest hashes every field of the request, so that only a byte-identical retry is
// recognised as one.
func requestDigest(req *vigilv1.DecryptionShareRequest) [32]byte {
	h := sha256.New()
	var buf []byte
	buf = append(buf, "vigil/trustee/request/v1"...)
	buf = binary.LittleEndian.AppendUint64(buf, req.GetRound())
	buf = binary.LittleEndian.AppendUint64(buf, req.GetKeyEpoch())
	buf = binary.LittleEndian.AppendUint64(buf, uint64(len(req.GetParamsId())))
	buf = append(buf, req.GetParamsId()...)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(req.GetContributors()))
	buf = binary.LittleEndian.AppendUint64(buf, uint64(len(req.GetActiveShamirIndices())))
	for _, x := range req.GetActiveShamirIndices() {
		buf = binary.LittleEndian.AppendUint64(buf, x)
	}
	buf = binary.LittleEndian.AppendUint64(buf, uint64(len(req.GetCiphertexts())))
	h.Write(buf)
	for _, c := range req.GetCiphertexts() {
		h.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(c))))
		h.Write(c)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}
