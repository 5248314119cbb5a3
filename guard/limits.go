package guard

import "time"

// Every size cap and hard bound of the guard, in one place.
const (
	// MaxIDBytes bounds session and user identifiers.
	MaxIDBytes = 128
	// MaxResourceBytes bounds resource names in policies and Authorize calls.
	MaxResourceBytes = 128
	// MaxFingerprintBytes bounds a device fingerprint; MaxNetworkBytes a network identifier.
	MaxFingerprintBytes = 256
	MaxNetworkBytes     = 256
	// MaxKnownDevices and MaxKnownNetworks bound what one user's baseline remembers; beyond
	// them the least recently seen entry is forgotten.
	MaxKnownDevices  = 32
	MaxKnownNetworks = 64
	// MaxReasons bounds the reasons a decision carries; MaxTrackedSignals the signals a session
	// keeps to choose them from.
	MaxReasons        = 5
	MaxTrackedSignals = 32
	// MaxDeviations bounds the per-feature deviations a behaviour score may carry, and
	// MaxFeatureBytes a feature's name and MaxUnitBytes its unit; explanations name the first
	// two.
	MaxDeviations       = 64
	MaxFeatureBytes     = 96
	MaxUnitBytes        = 16
	deviationsExplained = 2
	// MaxWindow bounds a keystroke or mouse window.
	MaxWindow = 4096
	// MaxPolicyBytes and MaxPolicyEntries bound a policy file.
	MaxPolicyBytes   = 1 << 20
	MaxPolicyEntries = 4096
	// MaxTrust is the top of the trust scale.
	MaxTrust = 100
	// MaxKeyHold bounds how long a key may be held; longer is a broken timestamp.
	MaxKeyHold = time.Minute
	// MaxMouseCoordinate bounds |x| and |y| of a mouse event, in pixels.
	MaxMouseCoordinate = 1 << 20
	// MaxAccuracyKm bounds a location's uncertainty radius: half the Earth's circumference.
	MaxAccuracyKm = 20_038
)

// Event times outside [minEventTime, maxEventTime] are absurd, whatever the clock says.
var (
	minEventTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxEventTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)
