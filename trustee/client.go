package trustee

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigilauth/vigil/crypto/he"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// MaxMessageBytes bounds a trustee request or answer: the largest encrypted sum (128
// ciphertexts of 131,160 bytes for 2^20 parameters) plus framing.
const MaxMessageBytes = 20 << 20

// ServerOptions are the gRPC server options a trustee service needs (message size limits
// that fit the largest sum).
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.MaxRecvMsgSize(MaxMessageBytes), grpc.MaxSendMsgSize(MaxMessageBytes)}
}

// ErrNotEnoughTrustees reports that fewer than t trustees could take part.
var ErrNotEnoughTrustees = errors.New("trustee: not enough trustees available")

// ClientConfig configures a Client.
type ClientConfig struct {
	// Key is the key epoch the sums are encrypted under. Required.
	Key *he.KeyEpoch
	// Trustees are connections to all n trustees, in any order; up to n-t may be down.
	Trustees []vigilv1.TrusteeClient
	// ProbeTimeout bounds the Info call that finds which trustees are up (default 2s).
	ProbeTimeout time.Duration
	// CallTimeout bounds one DecryptionShare call (default 30s).
	CallTimeout time.Duration
	// Retries is how often a DecryptionShare call that failed in transport is resent,
	// byte-identical, so the trustee answers it from its journal (default 2).
	Retries int
}

func (c *ClientConfig) validate() error {
	if c.Key == nil {
		return errors.New("trustee: client has no key epoch")
	}
	if len(c.Trustees) < c.Key.Threshold {
		return fmt.Errorf("trustee: %d trustee connections, the threshold is %d", len(c.Trustees), c.Key.Threshold)
	}
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = 2 * time.Second
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = 30 * time.Second
	}
	if c.Retries == 0 {
		c.Retries = 2
	}
	if c.ProbeTimeout < 0 || c.CallTimeout < 0 || c.Retries < 0 {
		return errors.New("trustee: negative timeout or retry count")
	}
	return nil
}

// Client is the coordinator's side of threshold decryption: it finds t trustees that are up
// and hold shares of the right key, asks them concurrently for their shares of one sum, and
// combines the answers.
type Client struct {
	cfg       ClientConfig
	keyDigest [32]byte
}

// NewClient returns a Client.
func NewClient(cfg ClientConfig) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	d, err := cfg.Key.Digest()
	if err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, keyDigest: d}, nil
}

// Result is a decrypted sum and the trustees that decrypted it.
type Result struct {
	// Sum is the sum of the updates, in the units of the clip norm.
	Sum []float64
	// Trustees are the ids of the active set, by Shamir point.
	Trustees []string
}

// DecryptSum decrypts a sealed sum with the first t trustees (by Shamir point) that answer
// Info in time and can serve it. Once the active set is fixed it is never changed for this
// sum: trustees refuse a second request for a round, so if one of the t fails after retries
// the sum cannot be decrypted and DecryptSum returns an error naming it.
func (c *Client) DecryptSum(ctx context.Context, sum *he.Sum, clipNorm float64) (*Result, error) {
	if sum == nil {
		return nil, errors.New("trustee: DecryptSum: nil sum")
	}
	if sum.Epoch != c.cfg.Key.Epoch {
		return nil, fmt.Errorf("trustee: DecryptSum: the sum is under key epoch %d, the client holds epoch %d", sum.Epoch, c.cfg.Key.Epoch)
	}
	active, err := c.probe(ctx, sum)
	if err != nil {
		return nil, err
	}
	points := make([]uint64, len(active))
	ids := make([]string, len(active))
	for i, a := range active {
		points[i], ids[i] = a.info.GetShamirIndex(), a.info.GetTrusteeId()
	}
	req := &vigilv1.DecryptionShareRequest{
		Round:               sum.Round,
		KeyEpoch:            sum.Epoch,
		ParamsId:            c.cfg.Key.Params().ID(),
		Contributors:        uint32(sum.Contributors),
		Ciphertexts:         sum.Ciphertexts,
		ActiveShamirIndices: points,
	}
	shares := make([][][]byte, len(active))
	errs := make([]error, len(active))
	var wg sync.WaitGroup
	for i, a := range active {
		wg.Go(func() { shares[i], errs[i] = c.share(ctx, a, req) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("trustee: decrypting round %d with %v: %w", sum.Round, ids, err)
	}
	values, err := he.Combine(c.cfg.Key, sum, shares, clipNorm)
	if err != nil {
		return nil, fmt.Errorf("trustee: combining the shares of %v: %w", ids, err)
	}
	return &Result{Sum: values, Trustees: ids}, nil
}

type candidate struct {
	client vigilv1.TrusteeClient
	info   *vigilv1.TrusteeInfoResponse
}

// probe asks every trustee for Info concurrently and picks the first t that can serve sum.
func (c *Client) probe(ctx context.Context, sum *he.Sum) ([]candidate, error) {
	key := c.cfg.Key
	infos := make([]*vigilv1.TrusteeInfoResponse, len(c.cfg.Trustees))
	reasons := make([]string, len(c.cfg.Trustees))
	var wg sync.WaitGroup
	for i, tc := range c.cfg.Trustees {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, c.cfg.ProbeTimeout)
			defer cancel()
			info, err := tc.Info(pctx, &vigilv1.TrusteeInfoRequest{})
			if err != nil {
				reasons[i] = fmt.Sprintf("trustee %d: %v", i, err)
				return
			}
			if why := c.unfit(info, sum); why != "" {
				reasons[i] = fmt.Sprintf("trustee %d (%s): %s", i, info.GetTrusteeId(), why)
				return
			}
			infos[i] = info
		})
	}
	wg.Wait()
	var ok []candidate
	for i, info := range infos {
		if info != nil && !slices.ContainsFunc(ok, func(k candidate) bool { return k.info.GetShamirIndex() == info.GetShamirIndex() }) {
			ok = append(ok, candidate{client: c.cfg.Trustees[i], info: info})
		}
	}
	if len(ok) < key.Threshold {
		var why []string
		for _, r := range reasons {
			if r != "" {
				why = append(why, r)
			}
		}
		return nil, fmt.Errorf("%w: %d of %d can serve round %d, the threshold is %d (%s)",
			ErrNotEnoughTrustees, len(ok), len(c.cfg.Trustees), sum.Round, key.Threshold, strings.Join(why, "; "))
	}
	slices.SortFunc(ok, func(a, b candidate) int { return int(a.info.GetShamirIndex()) - int(b.info.GetShamirIndex()) })
	return ok[:key.Threshold], nil
}

// unfit says why a trustee cannot serve sum, or "".
func (c *Client) unfit(info *vigilv1.TrusteeInfoResponse, sum *he.Sum) string {
	key := c.cfg.Key
	switch {
	case info.GetParamsId() != key.Params().ID():
		return fmt.Sprintf("holds a share under parameters %q", info.GetParamsId())
	case info.GetKeyEpoch() != key.Epoch || !bytes.Equal(info.GetKeyDigest(), c.keyDigest[:]):
		return fmt.Sprintf("holds a share of another key (epoch %d)", info.GetKeyEpoch())
	case int(info.GetThreshold()) != key.Threshold:
		return fmt.Sprintf("has threshold %d, the key says %d", info.GetThreshold(), key.Threshold)
	case !slices.ContainsFunc(key.Trustees, func(t he.Trustee) bool {
		return t.Point == info.GetShamirIndex() && t.ID == info.GetTrusteeId()
	}):
		return fmt.Sprintf("is not trustee %q at point %d of the key", info.GetTrusteeId(), info.GetShamirIndex())
	case int(info.GetMinContributors()) > sum.Contributors:
		return fmt.Sprintf("requires %d contributors, the sum has %d", info.GetMinContributors(), sum.Contributors)
	case info.GetLastRound() >= sum.Round:
		return fmt.Sprintf("has already decrypted round %d", info.GetLastRound())
	}
	return ""
}

// share sends req to one trustee, resending it unchanged after transport failures.
func (c *Client) share(ctx context.Context, a candidate, req *vigilv1.DecryptionShareRequest) ([][]byte, error) {
	var err error
	for attempt := 0; attempt <= c.cfg.Retries; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		cctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
		var resp *vigilv1.DecryptionShareResponse
		resp, err = a.client.DecryptionShare(cctx, req, grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes))
		cancel()
		if err == nil {
			if resp.GetTrusteeId() != a.info.GetTrusteeId() {
				return nil, fmt.Errorf("trustee %s answered as %q", a.info.GetTrusteeId(), resp.GetTrusteeId())
			}
			return resp.GetShares(), nil
		}
		if code := status.Code(err); code != codes.Unavailable && code != codes.DeadlineExceeded && code != codes.Aborted {
			break
		}
	}
	return nil, fmt.Errorf("trustee %s: %w", a.info.GetTrusteeId(), err)
}
