package he

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// Challenge is one trustee's test-decryption challenge (see NewKeyCheck): the nonce that, with
// the rest of the challenge, fixes the c1 of the test ciphertext (see Challenge.testSum). The challenger alone knows the c0 that goes with it.
// It is public.
type Challenge struct {
	KeyDigest [32]byte
	Epoch     uint64
	From      uint64   // the challenger's Shamir point; KeyCheckSets gives the sets that decrypt
	Nonce     [32]byte // drawn by the challenger from crypto/rand
	Signature []byte   // ML-DSA-65 by the challenger over everything above

	params Params
}

// Response is one trustee's decryption shares of another's challenge. It is public.
type Response struct {
	ChallengeDigest [32]byte // Challenge.Digest of the challenge answered
	From            uint64   // the responder's Shamir point
	Shares          [][]byte // serialised decryption shares, one per active set with the responder (KeyCheckSets order)
	Signature       []byte   // ML-DSA-65 by the responder over everything above

	params Params
}

// Approval is a trustee's statement that its own test decryption of a key epoch succeeded:
// its ML-DSA-65 identity key's signature of the key epoch's Digest under ApprovalContext. Only
// KeyCheck.Approve makes one (Identity.Sign refuses the context). Anyone holding the roster
// checks it with Verify, or with crypto/sig directly: the key is the roster member's
// PublicIdentity.Sign, the message the 32-byte digest.
type Approval struct {
	KeyDigest [32]byte
	Trustee   string
	Signature []byte
}

// Encodings (little-endian), each a magic, a version (2 for challenges, responses and key
// checks, whose version 1 carried a ciphertext of the challenger's choosing and tested one
// active set; 1 for approvals) and the fields in
// the order declared above; lists are a 2-byte count then, for byte strings, a 4-byte length before each;
// challenges and responses start with the parameter digest (16) and end with the fixed-size
// ML-DSA-65 signature over everything before it; an approval's trustee id has a 1-byte length.
// A key check is the seed (32) and its challenge (4-byte length), then a SHA-256 checksum.
const (
	challengeMagic   = "VGHQ"
	challengeVersion = 2
	challengeContext = "vigil/he/challenge/v2"
	responseMagic    = "VGHN"
	responseVersion  = 2
	responseContext  = "vigil/he/response/v2"
	approvalMagic    = "VGHV"
	approvalVersion  = 1
	keyCheckMagic    = "VGHT"
	keyCheckVersion  = 2

	// maxKeyCheckBlobs bounds the decryption shares of a response: one for each active set
	// of the challenge that holds the responder (a challenge's message is one ciphertext's
	// worth, Params.N values).
	maxKeyCheckBlobs = MaxKeyCheckSets

	// ApprovalContext is the FIPS 204 context string of Approval signatures.
	ApprovalContext = "vigil/he/key-approval/v1"
)

func (c *Challenge) signedPart() []byte {
	out := append([]byte(challengeMagic), challengeVersion)
	out = append(out, c.params.digest[:]...)
	out = append(out, c.KeyDigest[:]...)
	out = binary.LittleEndian.AppendUint64(out, c.Epoch)
	out = binary.LittleEndian.AppendUint64(out, c.From)
	return append(out, c.Nonce[:]...)
}

// MarshalBinary returns the canonical encoding of c.
func (c *Challenge) MarshalBinary() ([]byte, error) {
	if err := c.check(c.params); err != nil {
		return nil, err
	}
	return append(c.signedPart(), c.Signature...), nil
}

// Digest is the SHA-256 of the canonical encoding; responses name the challenge by it.
func (c *Challenge) Digest() [32]byte {
	return sha256.Sum256(append(c.signedPart(), c.Signature...))
}

// ParseChallenge decodes a challenge made under p, strictly. Respond verifies its signature.
func ParseChallenge(p Params, data []byte) (*Challenge, error) {
	if err := p.valid(); err != nil {
		return nil, err
	}
	if len(data) > MaxKeyCheckBytes {
		return nil, fmt.Errorf("%w: challenge of %d bytes, the limit is %d", ErrMalformed, len(data), MaxKeyCheckBytes)
	}
	r := reader{b: data, what: "challenge"}
	if string(r.take(4)) != challengeMagic || r.u8() != challengeVersion {
		return nil, fmt.Errorf("%w: not a version %d challenge", ErrMalformed, challengeVersion)
	}
	if dg := r.take(16); r.err == nil && string(dg) != string(p.digest[:]) {
		return nil, fmt.Errorf("%w: challenge made under parameters %x, want %s", ErrParams, dg[:8], p.ID())
	}
	c := &Challenge{params: p}
	copy(c.KeyDigest[:], r.take(32))
	c.Epoch = r.u64()
	c.From = r.u64()
	copy(c.Nonce[:], r.take(32))
	c.Signature = clone(r.take(mldsa65.SignatureSize))
	if err := r.finish(); err != nil {
		return nil, err
	}
	if err := c.check(p); err != nil {
		return nil, err
	}
	return c, nil
}

// check validates the shape of c; verifyChallenge checks it against the roster.
func (c *Challenge) check(p Params) error {
	if err := p.valid(); err != nil {
		return err
	}
	if c.params.digest != p.digest {
		return fmt.Errorf("%w: challenge under %s, want %s", ErrParams, c.params.ID(), p.ID())
	}
	if c.From == 0 || c.From > MaxPoint {
		return fmt.Errorf("%w: challenger's Shamir point %d", ErrMalformed, c.From)
	}
	if len(c.Signature) != mldsa65.SignatureSize {
		return fmt.Errorf("%w: signature of %d bytes, want %d", ErrMalformed, len(c.Signature), mldsa65.SignatureSize)
	}
	return nil
}

func (r *Response) signedPart() []byte {
	out := append([]byte(responseMagic), responseVersion)
	out = append(out, r.params.digest[:]...)
	out = append(out, r.ChallengeDigest[:]...)
	out = binary.LittleEndian.AppendUint64(out, r.From)
	return appendByteList(out, r.Shares)
}

// MarshalBinary returns the canonical encoding of r.
func (r *Response) MarshalBinary() ([]byte, error) {
	if err := r.check(r.params); err != nil {
		return nil, err
	}
	return append(r.signedPart(), r.Signature...), nil
}

// ParseResponse decodes a response made under p, strictly. Approve verifies its signature.
func ParseResponse(p Params, data []byte) (*Response, error) {
	if err := p.valid(); err != nil {
		return nil, err
	}
	if len(data) > MaxKeyCheckBytes {
		return nil, fmt.Errorf("%w: response of %d bytes, the limit is %d", ErrMalformed, len(data), MaxKeyCheckBytes)
	}
	rd := reader{b: data, what: "response"}
	if string(rd.take(4)) != responseMagic || rd.u8() != responseVersion {
		return nil, fmt.Errorf("%w: not a version %d response", ErrMalformed, responseVersion)
	}
	if dg := rd.take(16); rd.err == nil && string(dg) != string(p.digest[:]) {
		return nil, fmt.Errorf("%w: response made under parameters %x, want %s", ErrParams, dg[:8], p.ID())
	}
	r := &Response{params: p}
	copy(r.ChallengeDigest[:], rd.take(32))
	r.From = rd.u64()
	r.Shares = readByteList(&rd)
	r.Signature = clone(rd.take(mldsa65.SignatureSize))
	if err := rd.finish(); err != nil {
		return nil, err
	}
	if err := r.check(p); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Response) check(p Params) error {
	if err := p.valid(); err != nil {
		return err
	}
	if r.params.digest != p.digest {
		return fmt.Errorf("%w: response under %s, want %s", ErrParams, r.params.ID(), p.ID())
	}
	if r.From == 0 || r.From > MaxPoint {
		return fmt.Errorf("%w: responder's Shamir point %d", ErrMalformed, r.From)
	}
	if err := checkByteList("decryption share", r.Shares, p); err != nil {
		return err
	}
	if len(r.Signature) != mldsa65.SignatureSize {
		return fmt.Errorf("%w: signature of %d bytes, want %d", ErrMalformed, len(r.Signature), mldsa65.SignatureSize)
	}
	return nil
}

// MarshalBinary returns the canonical encoding of a.
func (a *Approval) MarshalBinary() ([]byte, error) {
	if err := validID(a.Trustee); err != nil {
		return nil, fmt.Errorf("%w: approval by trustee %v", ErrMalformed, err)
	}
	if len(a.Signature) != mldsa65.SignatureSize {
		return nil, fmt.Errorf("%w: signature of %d bytes, want %d", ErrMalformed, len(a.Signature), mldsa65.SignatureSize)
	}
	out := append([]byte(approvalMagic), approvalVersion)
	out = append(out, a.KeyDigest[:]...)
	out = append(out, byte(len(a.Trustee)))
	out = append(out, a.Trustee...)
	return append(out, a.Signature...), nil
}

// ParseApproval decodes an approval, strictly. Verify checks its signature.
func ParseApproval(data []byte) (*Approval, error) {
	r := reader{b: data, what: "approval"}
	if string(r.take(4)) != approvalMagic || r.u8() != approvalVersion {
		return nil, fmt.Errorf("%w: not a version %d approval", ErrMalformed, approvalVersion)
	}
	a := &Approval{}
	copy(a.KeyDigest[:], r.take(32))
	a.Trustee = string(r.take(int(r.u8())))
	a.Signature = clone(r.take(mldsa65.SignatureSize))
	if err := r.finish(); err != nil {
		return nil, err
	}
	if _, err := a.MarshalBinary(); err != nil {
		return nil, err
	}
	return a, nil
}

// Verify checks that a is an approval of key by a member of roster, signed with that member's
// identity key. Callers collecting approvals must also count distinct trustees.
func (a *Approval) Verify(roster *Roster, key *KeyEpoch) error {
	if a == nil {
		return fmt.Errorf("he: Verify: nil approval")
	}
	if err := checkRosterKey(roster, key); err != nil {
		return err
	}
	k := roster.index(a.Trustee)
	if k < 0 {
		return fmt.Errorf("%w: approval by %q, who is not on the roster", ErrCeremony, a.Trustee)
	}
	m := roster.Members[k]
	digest, err := key.Digest()
	if err != nil {
		return err
	}
	if a.KeyDigest != digest {
		return trusteeErr(m, ErrCeremony, "%q approved key %x, not this key epoch %x", m.ID, a.KeyDigest[:8], digest[:8])
	}
	if !verifyAs(m, a.KeyDigest[:], ApprovalContext, a.Signature) {
		return trusteeErr(m, ErrCeremony, "the approval by %q is not signed by %q's identity key", m.ID, m.ID)
	}
	return nil
}

// MarshalBinary encodes the key check for the challenger to keep, secret, between its
// challenge and Approve (a file with mode 0600).
func (kc *KeyCheck) MarshalBinary() ([]byte, error) {
	cb, err := kc.challenge.MarshalBinary()
	if err != nil {
		return nil, err
	}
	out := append([]byte(keyCheckMagic), keyCheckVersion)
	out = append(out, kc.seed[:]...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(cb)))
	out = append(out, cb...)
	sum := sha256.Sum256(out)
	return append(out, sum[:]...), nil
}

// ParseKeyCheck decodes a key check made by NewKeyCheck for key, the outcome of roster.
func ParseKeyCheck(roster *Roster, key *KeyEpoch, data []byte) (*KeyCheck, error) {
	if err := checkRosterKey(roster, key); err != nil {
		return nil, err
	}
	if len(data) < sha256.Size {
		return nil, fmt.Errorf("%w: key check of %d bytes", ErrMalformed, len(data))
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	want := sha256.Sum256(body)
	if subtle.ConstantTimeCompare(sum, want[:]) != 1 {
		return nil, fmt.Errorf("%w: key check checksum mismatch (file damaged?)", ErrMalformed)
	}
	r := reader{b: body, what: "key check"}
	if string(r.take(4)) != keyCheckMagic || r.u8() != keyCheckVersion {
		return nil, fmt.Errorf("%w: not a version %d key check", ErrMalformed, keyCheckVersion)
	}
	kc := &KeyCheck{roster: roster, key: key}
	copy(kc.seed[:], r.take(32))
	cb := r.take(int(r.u32()))
	if err := r.finish(); err != nil {
		return nil, err
	}
	c, err := ParseChallenge(key.params, cb)
	if err != nil {
		return nil, fmt.Errorf("key check: %w", err)
	}
	if digest, err := key.Digest(); err != nil || c.KeyDigest != digest {
		return nil, fmt.Errorf("%w: the key check is of another key epoch", ErrCeremony)
	}
	kc.challenge = c
	return kc, nil
}

func appendByteList(out []byte, list [][]byte) []byte {
	out = binary.LittleEndian.AppendUint16(out, uint16(len(list)))
	for _, b := range list {
		out = binary.LittleEndian.AppendUint32(out, uint32(len(b)))
		out = append(out, b...)
	}
	return out
}

func readByteList(r *reader) [][]byte {
	n := int(r.u16())
	if r.err == nil && n > maxKeyCheckBlobs {
		r.err = fmt.Errorf("%w: %s: %d blobs, at most %d", ErrMalformed, r.what, n, maxKeyCheckBlobs)
		return nil
	}
	var out [][]byte
	for i := 0; i < n && r.err == nil; i++ {
		size := int(r.u32())
		if r.err == nil && size > MaxKeyCheckBytes {
			r.err = fmt.Errorf("%w: %s: blob %d of %d bytes", ErrMalformed, r.what, i, size)
			return nil
		}
		out = append(out, clone(r.take(size)))
	}
	return out
}

// checkByteList checks the shape of a response's shares: their contents are checked by
// Combine, which knows the blob format.
func checkByteList(what string, list [][]byte, p Params) error {
	if len(list) < 1 || len(list) > maxKeyCheckBlobs {
		return fmt.Errorf("%w: %d %ss, want 1 to %d", ErrMalformed, len(list), what, maxKeyCheckBlobs)
	}
	for i, b := range list {
		if len(b) == 0 || len(b) > MaxKeyCheckBytes {
			return fmt.Errorf("%w: %s %d of %d bytes", ErrMalformed, what, i, len(b))
		}
	}
	return nil
}
