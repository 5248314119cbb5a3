package he

import (
	"encoding/binary"
	"fmt"
)

// Wire format of ciphertexts, sums and decryption shares ("blobs"). One decoder checks all
// three, so that nothing a device or trustee sends reaches lattigo unchecked. All integers
// are little-endian; a blob is exactly blobHeaderSize + polys*2*N*8 bytes:
//
//	off size field
//	  0    4 magic "VGHE"
//	  4    1 version (1)
//	  5    1 kind: 1 device update ciphertext, 2 sum ciphertext, 3 decryption share
//	  6    1 degree: 1 for ciphertexts (two polynomials c0, c1), 0 for shares (one polynomial)
//	  7    1 level: 1 (lattigo's numbering: two RNS primes, q0 and q1)
//	  8   16 parameter digest
//	 24    8 key epoch
//	 32   32 binding (see binding.go)
//	 64    4 index of this blob among the blobs of its update, sum or share set
//	 68    4 count of those blobs: ceil(dimension / N)
//	 72    8 dimension: the number of model parameters the whole vector carries
//	 80    8 Shamir point of the trustee (shares), zero otherwise
//	 88  ... polynomials in the coefficient domain, each in the flat RNS layout of rns.go:
//	         N residues modulo q0, then N modulo q1, each reduced modulo its prime
const (
	blobMagic      = "VGHE"
	blobVersion    = 1
	blobHeaderSize = 88
)

type blobKind byte

const (
	kindUpdate blobKind = 1
	kindSum    blobKind = 2
	kindShare  blobKind = 3
)

func (k blobKind) String() string {
	switch k {
	case kindUpdate:
		return "update ciphertext"
	case kindSum:
		return "sum ciphertext"
	case kindShare:
		return "decryption share"
	}
	return fmt.Sprintf("kind %d", byte(k))
}

// polys is the number of polynomials a blob of kind k carries.
func (k blobKind) polys() int {
	if k == kindShare {
		return 1
	}
	return 2
}

type blobHeader struct {
	kind    blobKind
	epoch   uint64
	binding Binding
	index   uint32
	count   uint32
	dim     uint64
	point   uint64
}

// blobSize is the exact size of a blob with polys polynomials.
func blobSize(p Params, polys int) int { return blobHeaderSize + polys*p.polyBytes() }

// maxBlobs is the most blobs one vector may take.
func maxBlobs(p Params) int { return p.Ciphertexts(MaxDimension) }

// appendBlob serialises a blob. Each polynomial is given as its residues per prime (lattigo's
// Coeffs), which must be reduced; a residue that is not means a bug in this package or
// lattigo, and is reported rather than sent.
func appendBlob(dst []byte, p Params, h blobHeader, polys ...[][]uint64) ([]byte, error) {
	if len(polys) != h.kind.polys() {
		return nil, fmt.Errorf("he: internal error: %v with %d polynomials", h.kind, len(polys))
	}
	var hdr [blobHeaderSize]byte
	copy(hdr[0:4], blobMagic)
	hdr[4] = blobVersion
	hdr[5] = byte(h.kind)
	hdr[6] = byte(len(polys) - 1)
	hdr[7] = levels - 1
	copy(hdr[8:24], p.digest[:])
	binary.LittleEndian.PutUint64(hdr[24:], h.epoch)
	copy(hdr[32:64], h.binding[:])
	binary.LittleEndian.PutUint32(hdr[64:], h.index)
	binary.LittleEndian.PutUint32(hdr[68:], h.count)
	binary.LittleEndian.PutUint64(hdr[72:], h.dim)
	binary.LittleEndian.PutUint64(hdr[80:], h.point)
	dst = append(dst, hdr[:]...)
	for _, poly := range polys {
		if len(poly) != levels {
			return nil, fmt.Errorf("he: internal error: polynomial with %d levels", len(poly))
		}
		for l, residues := range poly {
			if len(residues) != p.N() {
				return nil, fmt.Errorf("he: internal error: polynomial of %d coefficients", len(residues))
			}
			for i, c := range residues {
				if c >= p.q[l] {
					return nil, fmt.Errorf("he: internal error: coefficient %d not reduced modulo q%d", i, l)
				}
				dst = binary.LittleEndian.AppendUint64(dst, c)
			}
		}
	}
	return dst, nil
}

// parseBlob checks everything a blob says about itself and returns its header and the raw
// little-endian coefficients. It does not check the epoch or binding (the caller knows which
// ones it expects) and never allocates for the coefficients.
func parseBlob(p Params, b []byte) (blobHeader, []byte, error) {
	var h blobHeader
	if len(b) < blobHeaderSize {
		return h, nil, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrMalformed, len(b), blobHeaderSize)
	}
	if string(b[0:4]) != blobMagic {
		return h, nil, fmt.Errorf("%w: bad magic %q", ErrMalformed, b[0:4])
	}
	if b[4] != blobVersion {
		return h, nil, fmt.Errorf("%w: version %d, want %d", ErrMalformed, b[4], blobVersion)
	}
	h.kind = blobKind(b[5])
	if h.kind != kindUpdate && h.kind != kindSum && h.kind != kindShare {
		return h, nil, fmt.Errorf("%w: unknown blob kind %d", ErrMalformed, b[5])
	}
	if int(b[6]) != h.kind.polys()-1 {
		return h, nil, fmt.Errorf("%w: %v of degree %d, want %d", ErrMalformed, h.kind, b[6], h.kind.polys()-1)
	}
	if b[7] != levels-1 {
		return h, nil, fmt.Errorf("%w: level %d, the parameter set has level %d", ErrMalformed, b[7], levels-1)
	}
	if string(b[8:24]) != string(p.digest[:]) {
		return h, nil, fmt.Errorf("%w: %v made under parameters %x, want %s", ErrParams, h.kind, b[8:16], p.ID())
	}
	h.epoch = binary.LittleEndian.Uint64(b[24:])
	copy(h.binding[:], b[32:64])
	h.index = binary.LittleEndian.Uint32(b[64:])
	h.count = binary.LittleEndian.Uint32(b[68:])
	h.dim = binary.LittleEndian.Uint64(b[72:])
	h.point = binary.LittleEndian.Uint64(b[80:])
	if want := blobSize(p, h.kind.polys()); len(b) != want {
		return h, nil, fmt.Errorf("%w: %v is %d bytes, want %d", ErrMalformed, h.kind, len(b), want)
	}
	if h.dim == 0 || h.dim > MaxDimension {
		return h, nil, fmt.Errorf("%w: dimension %d outside [1, %d]", ErrMalformed, h.dim, MaxDimension)
	}
	if want := uint32(p.Ciphertexts(int(h.dim))); h.count != want {
		return h, nil, fmt.Errorf("%w: count %d, a dimension of %d takes %d", ErrMalformed, h.count, h.dim, want)
	}
	if h.index >= h.count {
		return h, nil, fmt.Errorf("%w: index %d of %d", ErrMalformed, h.index, h.count)
	}
	if (h.kind == kindShare) != (h.point != 0) {
		return h, nil, fmt.Errorf("%w: %v with Shamir point %d", ErrMalformed, h.kind, h.point)
	}
	coeffs := b[blobHeaderSize:]
	if i := firstUnreduced(p, coeffs); i >= 0 {
		return h, nil, fmt.Errorf("%w: residue %d is not reduced modulo its prime", ErrMalformed, i)
	}
	return h, coeffs, nil
}

// readCoeffs copies little-endian coefficients from b into dst.
func readCoeffs(dst []uint64, b []byte) {
	for i := range dst {
		dst[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
}
