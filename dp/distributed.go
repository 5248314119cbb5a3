package dp

import (
	"fmt"
	"math"
)

// DeviceNoiseStd returns the standard deviation each device adds to every
// coordinate of its clipped update in distributed DP:
// z·C/sqrt(mMin - tDev).
//
// A round releases only a sum of at least mMin updates, and at most tDev of
// the devices in it are assumed malicious: they may send anything,
// including an update without noise or one that subtracts the noise they
// were asked to add. The at least mMin - tDev honest devices left carry
// Gaussian noise of variance (mMin - tDev)·σ² = (z·C)², the noise the
// accountant assumes for noise multiplier z. More honest devices only add
// noise. This is the one place the device-side calibration is computed, so
// that a privacy policy can check the four numbers a task carries.
func DeviceNoiseStd(z, c float64, mMin, tDev int) (float64, error) {
	if !(z > 0) || math.IsInf(z, 1) {
		return 0, paramErr("noise multiplier z", z, "a finite number > 0")
	}
	if !(c > 0) || math.IsInf(c, 1) {
		return 0, paramErr("clip norm C", c, "a finite number > 0")
	}
	if mMin < 1 {
		return 0, paramErr("m_min", mMin, ">= 1")
	}
	if tDev < 0 || tDev >= mMin {
		return 0, paramErr("tolerated devices t_dev", tDev, fmt.Sprintf("in [0, m_min = %d)", mMin))
	}
	return z * c / math.Sqrt(float64(mMin-tDev)), nil
}

// DefaultToleratedDevices is the t_dev used when none is configured:
// ceil(mMin/10), at least 1 once mMin > 1, so that one colluding device
// never breaks the budget, and 0 for mMin = 1, where any tolerance would
// leave no honest device.
func DefaultToleratedDevices(mMin int) int {
	if mMin <= 1 {
		return 0
	}
	return (mMin + 9) / 10
}

// GuaranteedNoiseMultiplier returns the noise multiplier that the honest
// devices of a round guarantee when the devices add DeviceNoiseStd(z, C,
// mMin, tDev) and colluders, of whom there are some number, take their own
// noise out of a sum of exactly mMin updates: z·sqrt((mMin - colluders)/(mMin - tDev)).
// It is z when colluders = tDev and below z beyond, which is why t_dev is
// stated in every task, ledger entry and report.
func GuaranteedNoiseMultiplier(z float64, mMin, tDev, colluders int) float64 {
	honest := max(mMin-colluders, 0)
	return z * math.Sqrt(float64(honest)/float64(mMin-tDev))
}
