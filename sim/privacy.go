package sim

import (
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/dp"
)

// The differential-privacy settings shared by `vigil coordinator`, `vigil client`, `vigil
// agent` and the demo: on by default, off only with a flag that says what it does.

// PrivacyLine describes the rounds' privacy in one line for the operator.
func PrivacyLine(p coordinator.Privacy, mMin int) string {
	if p.InsecureNoDP {
		return fmt.Sprintf("INSECURE: rounds are released WITHOUT differential privacy (--insecure-no-dp); updates clipped to L2 norm %g", p.ClipNorm)
	}
	tDev := p.ToleratedDevices
	if tDev == 0 {
		tDev = dp.DefaultToleratedDevices(mMin)
	}
	sigma := math.NaN()
	if tDev < mMin {
		sigma = p.NoiseMultiplier * p.ClipNorm / math.Sqrt(float64(mMin-tDev))
	}
	return fmt.Sprintf("differential privacy of the training rounds (the population rounds' is in `vigil privacy report`): clip norm C = %g, noise multiplier z = %g, m_min = %d, tolerating t_dev = %d malicious devices "+
		"(each device adds noise of stddev zC/sqrt(m_min - t_dev) = %.4g); budget epsilon %g at delta %g",
		p.ClipNorm, p.NoiseMultiplier, mMin, tDev, sigma, p.Budget.Epsilon, p.Budget.Delta)
}

// DeviceLedger opens (or creates) a device's privacy ledger in its state directory.
func DeviceLedger(dir, id string, epsilon, delta float64) (*dp.Ledger, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return dp.OpenLedger(filepath.Join(dir, dp.DeviceLedgerFile), id, dp.Budget{Epsilon: epsilon, Delta: delta})
}

// CoordinatorPrivacy is the coordinator's privacy configuration from its flags, with the
// ledger in stateDir.
func CoordinatorPrivacy(noDP bool, clip, z, epsilon, delta float64, tolerated int, stateDir string) coordinator.Privacy {
	p := coordinator.Privacy{ClipNorm: clip, ToleratedDevices: tolerated, LedgerPath: filepath.Join(stateDir, "model.ledger")}
	if noDP {
		p.InsecureNoDP = true
		return p
	}
	p.NoiseMultiplier, p.Budget = z, dp.Budget{Epsilon: epsilon, Delta: delta}
	return p
}
