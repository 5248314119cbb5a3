package he

import "errors"

// Errors callers branch on. Every error the package returns wraps one of them (or reports a
// misuse such as a nil argument) and says in its text which field or value is at fault.
var (
	// ErrMalformed reports bytes that do not decode: wrong size, magic, version, a field out of
	// range, or a coefficient not reduced modulo Q.
	ErrMalformed = errors.New("he: malformed encoding")
	// ErrParams reports an object made under another parameter set.
	ErrParams = errors.New("he: parameter set mismatch")
	// ErrEpoch reports an object made under another key epoch.
	ErrEpoch = errors.New("he: key epoch mismatch")
	// ErrBinding reports a ciphertext or share bound to another round, device, sum or set of
	// trustees than the one it was presented for.
	ErrBinding = errors.New("he: bound to another context")
	// ErrReplay reports a ciphertext whose body is already in the sum.
	ErrReplay = errors.New("he: ciphertext replayed")
	// ErrDimension reports an update or sum of another length than expected.
	ErrDimension = errors.New("he: dimension mismatch")
	// ErrRange reports a value that cannot be encoded: not finite, or beyond MaxAbsUnits clip
	// norms.
	ErrRange = errors.New("he: value out of range")
	// ErrFull reports a sum that already holds MaxContributors updates.
	ErrFull = errors.New("he: sum is full")
	// ErrSealed reports an Add to a sum that was already sealed for decryption.
	ErrSealed = errors.New("he: sum is sealed")
	// ErrThreshold reports a wrong set of trustees: too few or too many shares, an unknown or
	// repeated Shamir point, or a trustee that is not part of the active set.
	ErrThreshold = errors.New("he: invalid trustee set")
	// ErrCeremony reports a key-ceremony message that does not verify: another roster, a bad
	// signature, a missing or duplicate commitment, dealing or response, a dealing that does not
	// match its dealer's commitment, or a share that does not open. Errors about one trustee's
	// message are a *TrusteeError that names it.
	ErrCeremony = errors.New("he: key ceremony failed")
)

// errChecker is a checker (NewChecker) asked for the sum it does not keep: a bug in the caller.
var errChecker = errors.New("he: a checker keeps no sum")
