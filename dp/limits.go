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

	// MaxLedgerBytes caps the size of a ledger file read from disk.
	MaxLedgerBytes = 32 << 20

	// MaxLedgerEntries caps the number of rounds a ledger records.
	MaxLedgerEntries = 100000

	// MaxCurveRounds caps EpsilonCurve: one conversion per round and order,
	// and one float per round, so 10^5 rounds cost about a second and
	// 0.8 MB. No federated model trains for more rounds than a ledger holds.
	MaxCurveRounds = MaxLedgerEntries

	// MaxSubjectLen caps the length of a ledger subject in bytes.
	MaxSubjectLen = 256

	// minPlanNoise and maxPlanNoise bound Plan's search for z.
	minPlanNoise = 0.01
	maxPlanNoise = 1e4
)
