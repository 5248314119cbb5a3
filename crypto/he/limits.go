package he

// Every size and range bound of the package, in one place. Decoders check them before they
// allocate, and the precision bound in params.go is stated for the worst case they allow.
const (
	// MaxDimension bounds the number of model parameters in one update or sum
	// (128 ciphertexts at N = 8192, 33,565,696 bytes).
	MaxDimension = 1 << 20

	// MaxContributors bounds the number of updates in one sum. Together with MaxAbsUnits and
	// the scale it keeps the sum inside (-Q/2, Q/2): 10,000 * 16 * 2^100 < 2^117.3, plus noise
	// below 2^79.1, < Q/2 = 2^119. It also bounds the encryption noise B of a sum that the
	// flooding noise must hide (see the package documentation).
	MaxContributors = 10_000

	// MaxAbsUnits bounds each coordinate of an update in units of the clip norm C: an encrypted
	// update may hold values in [-16 C, 16 C]. A clipped update has every coordinate in [-C, C];
	// the remaining room is for the device's share of the Gaussian noise, whose standard
	// deviation z C / sqrt(m_min) stays below C for any sensible noise multiplier z and m_min.
	MaxAbsUnits = 16

	// MinTrustees and MaxTrustees bound n, the number of trustees of a key epoch.
	MinTrustees = 2
	MaxTrustees = 16

	// MinThreshold is the smallest threshold t: with t = 1 any single trustee could decrypt
	// every device's update alone.
	MinThreshold = 2

	// MaxPoint bounds the trustees' public Shamir points (they are 1..n in rosters made by
	// NewRoster).
	MaxPoint = 1 << 16

	// MaxIDLen bounds trustee identifiers (the same rule as the API's identifiers).
	MaxIDLen = 64

	// MaxDealingBytes bounds one serialised ceremony dealing: the public-key share plus one
	// sealed Shamir share per trustee, each a polynomial of 131,072 bytes (two moduli), so
	// about 17 * 131,072 + 16 * 1,200 = 2.25 MB for MaxTrustees.
	MaxDealingBytes = 4 << 20

	// MaxKeyCheckBytes bounds one serialised test-decryption challenge or response (a
	// response holds one decryption share of one ciphertext, 131,120 bytes, per active set
	// with the responder: C(n-2, t-2), at most 55 for the rosters MaxKeyCheckSets allows, 7.2
	// MB), and each blob in it.
	MaxKeyCheckBytes = 16 << 20
)
