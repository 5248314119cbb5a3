package trustee

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vigilauth/vigil/crypto/he"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// MaxMessageBytes bounds a trustee request or answer: one contribution of the largest update
// (128 c1 polynomials of 262,144 bytes for 2^20 parameters, 33.6 MB, with their digests), or
// the shares of the largest sum (128 of 131,160 bytes), plus framing.
const MaxMessageBytes = 40 << 20

// ServerOptions are the gRPC server options a trustee service needs (message size limits
// that fit the largest contribution and answer).
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.MaxRecvMsgSize(MaxMessageBytes), grpc.MaxSendMsgSize(MaxMessageBytes)}
}

// ErrNotEnoughTrustees reports that fewer trustees than the commit quorum or the threshold
// could take part.
var ErrNotEnoughTrustees = errors.New("trustee: not enough trustees available")

// Contributions are a closed round's contributions as the coordinator stored them, in the
// order their updates entered its sum.
type Contributions interface {
	// Len is the number of contributions.
	Len() int
	// All yields every contribution; each call is a new pass (one per trustee).
	All() iter.Seq2[*vigilv1.Contribution, error]
}

// ClientConfig configures a Client.
type ClientConfig struct {
	// Key is the key epoch the sums are encrypted under. Required.
	Key *he.KeyEpoch
	// Trustees are connections to all n trustees, in any order; up to n - Quorum(n, t) may be
	// down. At least Quorum(n, t) are required: a round needs commitments from that many.
	Trustees []vigilv1.TrusteeClient
	// IDs, if set, are the ids of the trustees that Trustees connect to, in the same order
	// (the coordinator's --trustee flags): a trustee that does not answer is named by its id,
	// not by its position, and one that answers with another id cannot serve. Each must be a
	// trustee of Key, none twice.
	IDs []string
	// ProbeTimeout bounds the Info call that finds which trustees are up (default 2s).
	ProbeTimeout time.Duration
	// CallTimeout bounds one CommitSum or DecryptionShare call (default 2m: CommitSum streams
	// every update of the round).
	CallTimeout time.Duration
	// Retries is how often a call that failed in transport is resent, unchanged, so the
	// trustee answers it from its journal (default 2).
	Retries int
}

func (c *ClientConfig) validate() error {
	if c.Key == nil {
		return errors.New("trustee: client has no key epoch")
	}
	if c.IDs != nil {
		if len(c.IDs) != len(c.Trustees) {
			return fmt.Errorf("trustee: %d ids for %d trustee connections", len(c.IDs), len(c.Trustees))
		}
		for i, id := range c.IDs {
			if !slices.ContainsFunc(c.Key.Trustees, func(t he.Trustee) bool { return t.ID == id }) {
				return fmt.Errorf("trustee: key epoch %d has no trustee %q", c.Key.Epoch, id)
			}
			if slices.Contains(c.IDs[:i], id) {
				return fmt.Errorf("trustee: trustee %q is given twice", id)
			}
		}
	}
	if need := c.need(); len(c.Trustees) < need {
		msg := fmt.Sprintf("trustee: %d trustee connections, but a round needs commitments from %d of key epoch %d's %d trustees (%d-of-%d)",
			len(c.Trustees), need, c.Key.Epoch, len(c.Key.Trustees), c.Key.Threshold, len(c.Key.Trustees))
		if missing := c.unconnected(); len(missing) > 0 {
			msg += "; not given: " + strings.Join(missing, ", ")
		}
		return errors.New(msg)
	}
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = 2 * time.Second
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = 2 * time.Minute
	}
	if c.Retries == 0 {
		c.Retries = 2
	}
	if c.ProbeTimeout < 0 || c.CallTimeout < 0 || c.Retries < 0 {
		return errors.New("trustee: negative timeout or retry count")
	}
	return nil
}

// need is how many trustees must commit to a round's set: Quorum(n, t), and at least t.
func (c *ClientConfig) need() int {
	return max(Quorum(len(c.Key.Trustees), c.Key.Threshold), c.Key.Threshold)
}

// unconnected are the ids of the key's trustees that no connection is configured for; nil
// without IDs (a connection's trustee is known only once it answers).
func (c *ClientConfig) unconnected() []string {
	if c.IDs == nil {
		return nil
	}
	var out []string
	for _, t := range c.Key.Trustees {
		if !slices.Contains(c.IDs, t.ID) {
			out = append(out, t.ID)
		}
	}
	return out
}

// name is how the trustee of connection i is named before it answers: its configured id, or
// "#i", its position among the connections.
func (c *ClientConfig) name(i int) string {
	if i < len(c.IDs) {
		return c.IDs[i]
	}
	return fmt.Sprintf("#%d", i)
}

// Client is the coordinator's side of threshold decryption. For each round it streams the
// round's contributions to every trustee that is up (CommitSum), needs commitments to the same
// participant set and c1 sum from a quorum of them, then asks t of those, rotating with the
// round, for their shares (DecryptionShare, with the commitments) and combines the shares with
// its own sum, whose c0 only it holds.
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
	// Committed are the ids of the trustees that committed to the set.
	Committed []string
	// Committing is how long finding the trustees that are up and their commitments took;
	// Decrypting, how long their decryption shares and combining them took: the operator's
	// status shows both as stages of the round.
	Committing, Decrypting time.Duration
}

// RoundPrivacy is what a sum's round promised its devices, as the trustees and the decoding
// need it.
type RoundPrivacy struct {
	// ClipNorm is C, which bounds each update: the decoding checks the sum against it.
	ClipNorm float64
	// MinParticipants is the round's m_min, which every device signed with its update: the
	// trustees decrypt no sum of fewer.
	MinParticipants uint32
}

// DecryptSum decrypts sum, the coordinator's sealed sum of exactly the updates in contribs.
// Once a trustee has committed to the set it will decrypt no other set of the round, and once
// the active set is asked it is never changed: if one of the t fails after retries the round
// cannot be decrypted and DecryptSum returns an error naming it.
func (c *Client) DecryptSum(ctx context.Context, sum *he.Sum, contribs Contributions, p RoundPrivacy) (*Result, error) {
	key := c.cfg.Key
	switch {
	case sum == nil || contribs == nil:
		return nil, errors.New("trustee: DecryptSum: nil sum or contributions")
	case sum.Epoch != key.Epoch:
		return nil, fmt.Errorf("trustee: DecryptSum: the sum is under key epoch %d, the client holds epoch %d", sum.Epoch, key.Epoch)
	case contribs.Len() != sum.Contributors:
		return nil, fmt.Errorf("trustee: DecryptSum: %d contributions for a sum of %d updates", contribs.Len(), sum.Contributors)
	}
	need := Quorum(len(key.Trustees), key.Threshold)
	began := time.Now()
	up, err := c.probe(ctx, sum.Round, sum.Contributors, need)
	if err != nil {
		return nil, err
	}
	hdr := &vigilv1.SumHeader{Round: sum.Round, KeyEpoch: sum.Epoch, ParamsId: key.Params().ID(),
		Dimension: uint64(sum.Dimension), Contributors: uint32(sum.Contributors), MinParticipants: p.MinParticipants}
	commitments := make([]*vigilv1.SumCommitment, len(up))
	errs := make([]error, len(up))
	var wg sync.WaitGroup
	for i, a := range up {
		wg.Go(func() { commitments[i], errs[i] = c.commit(ctx, a, hdr, contribs) })
	}
	wg.Wait()
	c1 := sum.C1Digest()
	var committed []candidate
	var agreed []*vigilv1.SumCommitment
	var why []string
	var set []byte
	for i, cm := range commitments {
		switch {
		case errs[i] != nil:
			why = append(why, errs[i].Error())
		case !bytes.Equal(cm.GetC1Digest(), c1[:]) || cm.GetContributors() != uint32(sum.Contributors) || cm.GetRound() != sum.Round:
			why = append(why, fmt.Sprintf("trustee %s committed to another sum than the coordinator's", up[i].info.GetTrusteeId()))
		case set != nil && !bytes.Equal(cm.GetSetDigest(), set):
			why = append(why, fmt.Sprintf("trustee %s computed another set digest", up[i].info.GetTrusteeId()))
		default:
			set = cm.GetSetDigest()
			committed = append(committed, up[i])
			agreed = append(agreed, cm)
		}
	}
	if len(committed) < need || len(committed) < key.Threshold {
		return nil, fmt.Errorf("%w: %d trustees committed to round %d, %d are needed (%s)",
			ErrNotEnoughTrustees, len(committed), sum.Round, max(need, key.Threshold), strings.Join(why, "; "))
	}
	committing := time.Since(began)
	active := rotate(committed, sum.Round, key.Threshold)
	points := make([]uint64, len(active))
	ids := make([]string, len(active))
	for i, a := range active {
		points[i], ids[i] = a.info.GetShamirIndex(), a.info.GetTrusteeId()
	}
	req := &vigilv1.DecryptionShareRequest{
		Round: sum.Round, KeyEpoch: sum.Epoch, ParamsId: key.Params().ID(), Contributors: uint32(sum.Contributors),
		ActiveShamirIndices: points, SetDigest: set, Commitments: agreed,
	}
	shares := make([][][]byte, len(active))
	errs = make([]error, len(active))
	for i, a := range active {
		wg.Go(func() { shares[i], errs[i] = c.share(ctx, a, req) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("trustee: decrypting round %d with %v: %w", sum.Round, ids, err)
	}
	values, err := he.Combine(key, sum, shares, p.ClipNorm)
	if err != nil {
		return nil, fmt.Errorf("trustee: combining the shares of %v: %w", ids, err)
	}
	res := &Result{Sum: values, Trustees: ids, Committing: committing, Decrypting: time.Since(began) - committing}
	for _, a := range committed {
		res.Committed = append(res.Committed, a.info.GetTrusteeId())
	}
	return res, nil
}

// rotate picks t of the committed trustees (sorted by Shamir point), starting at an offset
// that moves with the round so that the decryption work is spread over the trustees, and
// returns them sorted by point.
func rotate(committed []candidate, round uint64, t int) []candidate {
	start := int(round % uint64(len(committed)))
	out := make([]candidate, 0, t)
	for i := range t {
		out = append(out, committed[(start+i)%len(committed)])
	}
	slices.SortFunc(out, func(a, b candidate) int { return int(a.info.GetShamirIndex()) - int(b.info.GetShamirIndex()) })
	return out
}

type candidate struct {
	client vigilv1.TrusteeClient
	info   *vigilv1.TrusteeInfoResponse
}

// probe asks every trustee for Info concurrently and returns those that can serve a sum of
// contributors updates of round (contributors < 0: a part of one), by Shamir point, if there
// are at least need of them.
func (c *Client) probe(ctx context.Context, round uint64, contributors, need int) ([]candidate, error) {
	infos := make([]*vigilv1.TrusteeInfoResponse, len(c.cfg.Trustees))
	reasons := make([]string, len(c.cfg.Trustees))
	var wg sync.WaitGroup
	for i, tc := range c.cfg.Trustees {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, c.cfg.ProbeTimeout)
			defer cancel()
			info, err := tc.Info(pctx, &vigilv1.TrusteeInfoRequest{})
			if err != nil {
				reasons[i] = fmt.Sprintf("trustee %s: %v", c.cfg.name(i), err)
				return
			}
			if why := c.unfit(info, round, contributors); why != "" {
				reasons[i] = fmt.Sprintf("trustee %s: %s", c.cfg.name(i), why)
				return
			}
			if i < len(c.cfg.IDs) && info.GetTrusteeId() != c.cfg.IDs[i] {
				reasons[i] = fmt.Sprintf("trustee %s: %s", c.cfg.IDs[i], answersAs(info.GetTrusteeId()))
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
	need = max(need, c.cfg.Key.Threshold)
	if len(ok) < need {
		var why []string
		for _, r := range reasons {
			if r != "" {
				why = append(why, r)
			}
		}
		why = append(why, c.cfg.unconnectedReasons()...)
		return nil, fmt.Errorf("%w: %d of the key's %d trustees can serve round %d, %d must commit to it (%s)",
			ErrNotEnoughTrustees, len(ok), len(c.cfg.Key.Trustees), round, need, strings.Join(why, "; "))
	}
	slices.SortFunc(ok, func(a, b candidate) int { return int(a.info.GetShamirIndex()) - int(b.info.GetShamirIndex()) })
	return ok, nil
}

// unfit says why a trustee cannot serve a sum of contributors updates of round, or "";
// contributors < 0 is a part of a sum, which any number of updates may make.
func (c *Client) unfit(info *vigilv1.TrusteeInfoResponse, round uint64, contributors int) string {
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
	case contributors >= 0 && int(info.GetMinContributors()) > contributors:
		return fmt.Sprintf("requires %d contributors, the sum has %d", info.GetMinContributors(), contributors)
	case info.GetLastRound() >= round:
		return fmt.Sprintf("has already decrypted round %d", info.GetLastRound())
	}
	return ""
}

// retry runs call until it succeeds, fails other than in transport, or the retries are spent.
func (c *Client) retry(ctx context.Context, call func(ctx context.Context) error) error {
	var err error
	for attempt := 0; attempt <= c.cfg.Retries; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		cctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
		err = call(cctx)
		cancel()
		if code := status.Code(err); err == nil || code != codes.Unavailable && code != codes.DeadlineExceeded && code != codes.Aborted {
			return err
		}
	}
	return err
}

// commit streams the round's contributions to one trustee and returns its commitment. A
// trustee answers a repeated stream of the same set with the same commitment, so resending
// after a transport failure is safe. With contribs Parted, the header names the parts the
// trustee took and only the rest is streamed; a trustee that no longer holds a part (it
// restarted) is sent everything.
func (c *Client) commit(ctx context.Context, a candidate, hdr *vigilv1.SumHeader, contribs Contributions) (*vigilv1.SumCommitment, error) {
	id := a.info.GetTrusteeId()
	var out *vigilv1.SumCommitment
	call := func(hdr *vigilv1.SumHeader, contribs Contributions) error {
		return c.retry(ctx, func(ctx context.Context) error {
			stream, err := a.client.CommitSum(ctx, sumStreamOptions()...)
			if err != nil {
				return err
			}
			if err := sendContributions(stream, hdr, contribs); err != nil && !errors.Is(err, errEnded) {
				return err
			}
			out, err = stream.CloseAndRecv()
			return err
		})
	}
	parts, rest := [][]byte(nil), contribs
	if p, ok := contribs.(Parted); ok {
		parts, rest = p.For(id)
	}
	var err error
	if len(parts) > 0 {
		withParts := proto.CloneOf(hdr)
		withParts.Parts = parts
		err = call(withParts, rest)
	}
	// Without parts, or with one the trustee no longer holds (it restarted): everything.
	if len(parts) == 0 || status.Code(err) == codes.NotFound {
		err = call(hdr, contribs)
	}
	if err != nil {
		return nil, fmt.Errorf("trustee %s: %w", id, err)
	}
	if out.GetTrusteeId() != id {
		return nil, fmt.Errorf("trustee %s committed as %q", id, out.GetTrusteeId())
	}
	return out, nil
}

// errEnded is a send on a stream the trustee ended: CloseAndRecv returns its status, which
// says why.
var errEnded = errors.New("trustee: the trustee ended the stream")

// share sends req to one trustee, resending it unchanged after transport failures.
func (c *Client) share(ctx context.Context, a candidate, req *vigilv1.DecryptionShareRequest) ([][]byte, error) {
	var resp *vigilv1.DecryptionShareResponse
	err := c.retry(ctx, func(ctx context.Context) error {
		var err error
		resp, err = a.client.DecryptionShare(ctx, req, grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("trustee %s: %w", a.info.GetTrusteeId(), err)
	}
	if resp.GetTrusteeId() != a.info.GetTrusteeId() {
		return nil, fmt.Errorf("trustee %s answered as %q", a.info.GetTrusteeId(), resp.GetTrusteeId())
	}
	return resp.GetShares(), nil
}

// SliceContributions holds contributions in memory: for tests, and for a coordinator without
// a state directory.
type SliceContributions []*vigilv1.Contribution

// Len implements Contributions.
func (s SliceContributions) Len() int { return len(s) }

// From implements PartContributions.
func (s SliceContributions) From(n int) Contributions { return s[n:] }

// All implements Contributions.
func (s SliceContributions) All() iter.Seq2[*vigilv1.Contribution, error] {
	return func(yield func(*vigilv1.Contribution, error) bool) {
		for _, c := range s {
			if !yield(c, nil) {
				return
			}
		}
	}
}
