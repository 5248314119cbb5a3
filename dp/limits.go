package dp

// Every size cap and iteration limit of the package, in one place.
const (
	// MaxOrder is the largest RDP order accepted. Integer orders cost one
	// term per unit of order, so the cap bounds the work of one RDP value.
	MaxOrder = 10000

	// MaxOrders caps the length of an order list.
	MaxOrders = 200000

	// maxStepsBoundSeries is the iteration cap of the conservative
	// fractional-order series. It equals dp_accounting's
	// _MAX_STEPS_LOG_A_FRAC: an order whose series has not converged by
	// then is excluded (its RDP is +Inf), as dp_accounting does.
	maxStepsBoundSeries = 1000

	// maxStepsSignedSeries is the iteration cap of the signed series. The
	// Opacus / TF-Privacy loop has no cap; it needs up to ~20,000 terms for
	// q near 1/2 with large z and orders near 1, so the cap sits well above.
	maxStepsSignedSeries = 200000

	// MaxLedgerBytes caps the size of a ledger file read from disk. It follows from
	// MaxLedgerEntries, so that a ledger that reaches its entry cap can still be read:
	// a fixed part (format, subject, budget, accounting, MAC) and the entries, each at most
	// maxLedgerEntryBytes (about 61 MiB in all).
	MaxLedgerBytes = maxLedgerHeaderBytes + MaxLedgerEntries*maxLedgerEntryBytes

	// MaxLedgerEntries caps the number of rounds a ledger records.
	MaxLedgerEntries = 100000

	// maxLedgerEntryBytes bounds one entry in a ledger file with its separating comma. The
	// longest an entry can encode to is 512 bytes (every integer at 20 characters, every float
	// at 23, the longest mechanism, a time and a hash; TestLedgerSizeBounds); a coordinator's
	// entry is about 350. The rest is margin.
	maxLedgerEntryBytes = 640

	// maxLedgerHeaderBytes bounds the rest of a ledger file: at most 1,851 bytes, with a
	// subject of MaxSubjectLen characters that JSON escapes to six bytes each.
	maxLedgerHeaderBytes = 4096

	// MaxCurveRounds caps EpsilonCurve: one conversion per round and order,
	// and one float per round, so 10^5 rounds cost about a second and
	// 0.8 MB. No federated model trains for more rounds than a ledger holds.
	MaxCurveRounds = MaxLedgerEntries

	// MaxSubjectLen caps the length of a ledger subject in bytes.
	MaxSubjectLen = 256

	// minPlanNoise and maxPlanNoise bound Plan's search for z, which doubles
	// or halves z from 1: it tries z from 2^-6 to 2^13.
	minPlanNoise = 0.01
	maxPlanNoise = 1e4
)
