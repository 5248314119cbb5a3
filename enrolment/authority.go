package enrolment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
)

// Every bound of the authority, in one place.
const (
	// RecordValidity is how long a device record is valid: a year. A device registers again with
	// a new token before its record expires; the coordinator refuses an expired record.
	RecordValidity = 365 * 24 * time.Hour
	// DefaultTokenTTL is how long a token from `vigil enrol token` stays valid by default.
	DefaultTokenTTL = 24 * time.Hour
	// MaxRequestBytes bounds a RegisterRequest: a public key (1,952 bytes), a signature (3,309
	// bytes) and short strings.
	MaxRequestBytes = 16 << 10
)

// Reasons attached to refusals, as google.rpc.ErrorInfo reasons in the "vigil" domain. Token
// refusals carry pki's reasons (TOKEN_UNKNOWN, TOKEN_USED, TOKEN_EXPIRED, TOKEN_WRONG_DEVICE).
const (
	ReasonInvalidArgument = "INVALID_ARGUMENT" // InvalidArgument: a malformed or missing field
	ReasonBadSigningKey   = "BAD_SIGNING_KEY"  // InvalidArgument: signing_key is not an ML-DSA-65 public key
	ReasonBadProof        = "BAD_PROOF"        // Unauthenticated: the proof does not verify under signing_key
)

// Config configures an Authority.
type Config struct {
	// Key signs device records: the private key of the root of trust's enrolment role.
	// Required.
	Key *sig.PrivateKey
	// Tokens holds the one-time tokens devices register with. Required.
	Tokens *pki.Tokens
	// Validity is how long a record is valid (default RecordValidity).
	Validity time.Duration
	// Logger receives one line per record issued or request refused (default: discard).
	Logger *slog.Logger
	// Now replaces the clock in tests.
	Now func() time.Time
}

func (c *Config) validate() error {
	if c.Key == nil || c.Tokens == nil {
		return errors.New("enrolment: an authority needs its signing key and a token store")
	}
	if c.Validity == 0 {
		c.Validity = RecordValidity
	}
	if c.Validity < time.Hour || c.Validity > 5*RecordValidity {
		return fmt.Errorf("enrolment: record validity %v is outside [1h, %v]", c.Validity, 5*RecordValidity)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Authority serves the Enrolment gRPC service. It is safe for concurrent use.
type Authority struct {
	vigilv1.UnimplementedEnrolmentServer
	cfg Config
}

var _ vigilv1.EnrolmentServer = (*Authority)(nil)

// New returns an Authority.
func New(cfg Config) (*Authority, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Authority{cfg: cfg}, nil
}

// PublicKey returns the key that verifies the authority's records: the one to put in the root's
// enrolment role.
func (a *Authority) PublicKey() *sig.PublicKey { return a.cfg.Key.Public() }

// RegisterService serves the Enrolment service on s.
func (a *Authority) RegisterService(s *grpc.Server) { vigilv1.RegisterEnrolmentServer(s, a) }

// ServerOptions are the gRPC server options of an authority serving with creds: TLS 1.3 with
// the hybrid post-quantum key exchange, authenticating the server only (devices have no
// certificate yet), and bounds on what a stranger can make it hold: a small message bound with
// fixed flow-control windows (gRPC's dynamic ones grow to megabytes), a few calls per
// connection, and connections closed when idle or old, since a registration is one call.
func ServerOptions(creds pki.Credentials) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.Creds(credentials.NewTLS(pki.ServerOnlyTLS(creds.TLSCertificate()))),
		grpc.MaxRecvMsgSize(MaxRequestBytes),
		grpc.InitialWindowSize(64 << 10), grpc.InitialConnWindowSize(64 << 10),
		grpc.MaxConcurrentStreams(4),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: 30 * time.Second, MaxConnectionAge: 5 * time.Minute, MaxConnectionAgeGrace: 30 * time.Second,
		}),
		grpc.ConnectionTimeout(10 * time.Second),
	}
}

// Register implements vigilv1.EnrolmentServer: it redeems the request's token for a device
// record naming the request's device, region and signing key.
func (a *Authority) Register(ctx context.Context, req *vigilv1.RegisterRequest) (*vigilv1.RegisterResponse, error) {
	rec, err := a.register(req)
	if err != nil {
		a.cfg.Logger.Info("registration refused", "device", req.GetDeviceId(), "reason", vigilv1.Reason(err), "err", err)
		return nil, err
	}
	return &vigilv1.RegisterResponse{DeviceRecord: rec}, nil
}

func (a *Authority) register(req *vigilv1.RegisterRequest) ([]byte, error) {
	invalid := func(reason, msg string) error { return vigilv1.Error(codes.InvalidArgument, reason, msg, 0) }
	if err := vigilv1.ValidID("device_id", req.GetDeviceId()); err != nil {
		return nil, invalid(ReasonInvalidArgument, err.Error())
	}
	if err := vigilv1.ValidID("region", req.GetRegion()); err != nil {
		return nil, invalid(ReasonInvalidArgument, err.Error()+": a device record names the region its data stays in")
	}
	if req.GetToken() == "" || len(req.GetToken()) > vigilv1.MaxTokenLen {
		return nil, invalid(ReasonInvalidArgument, fmt.Sprintf("token is %d bytes; a one-time token from `vigil enrol token` is required", len(req.GetToken())))
	}
	key, err := sig.ParsePublicKey(req.GetSigningKey())
	if err != nil {
		return nil, invalid(ReasonBadSigningKey, "signing_key: "+err.Error())
	}
	if len(req.GetProof()) != sig.SignatureSize {
		return nil, invalid(ReasonInvalidArgument, fmt.Sprintf("proof is %d bytes, an ML-DSA-65 signature is %d", len(req.GetProof()), sig.SignatureSize))
	}
	now := a.cfg.Now()
	// Cheapest first: the token is a lookup, the proof a signature verification.
	authorised, err := a.cfg.Tokens.Check(req.GetToken(), req.GetDeviceId(), now)
	if err != nil {
		return nil, pki.StatusError(err)
	}
	if err := key.Verify(registrationMessage(req), req.GetProof(), RegisterContext); err != nil {
		return nil, vigilv1.Error(codes.Unauthenticated, ReasonBadProof, "proof does not verify under signing_key: "+err.Error(), 0)
	}
	// The record is dated when its token was issued, the moment the enrolment was authorised,
	// not when the token is redeemed: the coordinator refuses a record issued up to the
	// device's revocation (pki.Enroller.Enroll), and `vigil pki revoke` must cover the tokens
	// already handed out. Dated at redemption, a token issued before the revocation and redeemed
	// after it would bring the revoked device back. Tokens are dated at whole seconds
	// (pki.TokenDate), as records are, so a token issued after a revocation buys a record
	// dated after it; a token from an earlier version, dated within its second, is truncated,
	// which can only move the date earlier, towards refusal. The record's lifetime runs from
	// now, or from its date if that is later (a token dated up to a second ahead, or a clock
	// behind the token's).
	from := now
	if authorised.After(from) {
		from = authorised
	}
	expires := from.Add(a.cfg.Validity)
	rec, err := release.Sign(release.NewDeviceRecord(req.GetDeviceId(), req.GetRegion(), key, authorised, expires), a.cfg.Key)
	if err != nil {
		return nil, invalid(ReasonInvalidArgument, err.Error())
	}
	// Redeemed only now, so a refusal above leaves the token usable; if another request won the
	// race, this record is never handed out.
	if err := a.cfg.Tokens.Redeem(req.GetToken(), req.GetDeviceId(), now); err != nil {
		return nil, pki.StatusError(err)
	}
	a.cfg.Logger.Info("device record issued", "device", req.GetDeviceId(), "region", req.GetRegion(),
		"key", key.ID().Short(), "authorised", authorised.UTC().Format(time.RFC3339),
		"expires", expires.UTC().Format(time.RFC3339))
	return rec, nil
}
