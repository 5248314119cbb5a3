package trustee

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/vigilauth/vigil/crypto/sig"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
)

// CommitmentContext is the ML-DSA context string of a trustee's signed SumCommitment.
const CommitmentContext = "vigil/trustee/commitment/v1"

// ErrCommitment reports a commitment that does not count: not signed by a trustee key, or
// naming another round, key epoch, participant set, count or c1 sum.
var ErrCommitment = errors.New("trustee: invalid commitment")

// commitmentMessage is the canonical encoding a commitment's signature covers: every field
// but the signature, length-prefixed, under a domain string.
func commitmentMessage(c *vigilv1.SumCommitment) []byte {
	var b []byte
	field := func(p []byte) {
		b = binary.BigEndian.AppendUint64(b, uint64(len(p)))
		b = append(b, p...)
	}
	field([]byte(CommitmentContext))
	field([]byte(c.GetTrusteeId()))
	b = binary.BigEndian.AppendUint64(b, c.GetRound())
	b = binary.BigEndian.AppendUint64(b, c.GetKeyEpoch())
	field(c.GetSetDigest())
	b = binary.BigEndian.AppendUint64(b, uint64(c.GetContributors()))
	field(c.GetC1Digest())
	return b
}

// signCommitment fills in c's signature with key.
func signCommitment(c *vigilv1.SumCommitment, key *sig.PrivateKey) error {
	s, err := key.Sign(commitmentMessage(c), CommitmentContext)
	if err != nil {
		return fmt.Errorf("trustee: signing the commitment: %w", err)
	}
	c.Signature = s
	return nil
}

// TrusteeKeys returns the keys of root's trustees role: the keys whose commitments a trustee
// counts.
func TrusteeKeys(root *release.Root) []*sig.PublicKey {
	var keys []*sig.PublicKey
	for _, id := range root.Roles.Trustees.KeyIDs {
		if k := root.PublicKey(id); k != nil {
			keys = append(keys, k)
		}
	}
	return keys
}

// Quorum is how many trustees must commit to one participant set before any of them decrypts
// it: q = ceil((n + t) / 2) for n trustees and threshold t. Two quorums of q among n trustees
// share at least 2q - n >= t of them; with at most t - 1 trustees colluding with the
// coordinator, at least one shared trustee is honest, and an honest trustee commits to one set
// per round. So two different sets of the same round can never both gather a quorum, and the
// coordinator cannot have one honest trustee decrypt set S and another S plus one device,
// whose difference would be that device's update. The price is liveness: decryption needs q
// trustees up for the commit, not only t.
func Quorum(n, t int) int { return (n + t + 1) / 2 }

// quorumCheck is what a trustee checks of the commitments in a decryption request: at least
// need of them, from distinct keys of keys, all to want (every field but the trustee and the
// signature), its own among them. It returns how many counted.
func quorumCheck(commitments []*vigilv1.SumCommitment, want *vigilv1.SumCommitment, keys []*sig.PublicKey, own *sig.PublicKey, need int) (int, error) {
	signed := map[sig.KeyID]bool{}
	for i, c := range commitments {
		switch {
		case c.GetRound() != want.GetRound() || c.GetKeyEpoch() != want.GetKeyEpoch():
			return 0, fmt.Errorf("%w: commitment %d (%s) is for round %d of epoch %d, not round %d of epoch %d",
				ErrCommitment, i, c.GetTrusteeId(), c.GetRound(), c.GetKeyEpoch(), want.GetRound(), want.GetKeyEpoch())
		case !bytes.Equal(c.GetSetDigest(), want.GetSetDigest()) || c.GetContributors() != want.GetContributors():
			return 0, fmt.Errorf("%w: commitment %d (%s) is to another participant set than this trustee's", ErrCommitment, i, c.GetTrusteeId())
		case !bytes.Equal(c.GetC1Digest(), want.GetC1Digest()):
			return 0, fmt.Errorf("%w: commitment %d (%s) names another c1 sum than this trustee computed", ErrCommitment, i, c.GetTrusteeId())
		}
		msg := commitmentMessage(c)
		var by *sig.PublicKey
		for _, k := range keys {
			if k.Verify(msg, c.GetSignature(), CommitmentContext) == nil {
				by = k
				break
			}
		}
		if by == nil {
			return 0, fmt.Errorf("%w: commitment %d (%s) is not signed by a trustee key of the root", ErrCommitment, i, c.GetTrusteeId())
		}
		signed[by.ID()] = true
	}
	if !signed[own.ID()] {
		return 0, fmt.Errorf("%w: this trustee's own commitment is not among them", ErrCommitment)
	}
	if len(signed) < need {
		return len(signed), fmt.Errorf("%w: %d distinct trustees committed to the set, %d are needed so that no other set of the round can be decrypted",
			ErrCommitment, len(signed), need)
	}
	return len(signed), nil
}
