package console

import (
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/vigilauth/vigil/dp"
)

// privacyPage is the privacy page: the ledgers, and whether the signed report can be downloaded.
type privacyPage struct {
	Ledgers []ledgerView
	Report  bool
	// Composed is the epsilon of every private round of the models' ledgers together, at
	// the smallest of their deltas (dp.ComposeLedgers, as vigil privacy report composes);
	// ComposedErr why it could not be computed, and Unbounded that a round of one was
	// released without differential privacy. Devices' own ledgers are left out.
	Composed, ComposedDelta float64
	ComposedErr             string
	Unbounded               bool
	Composable              int
	// Tradeoff is accuracy against epsilon (Config.Tradeoff), plotted.
	Tradeoff tradeoffView
}

// compose fills Composed from the models' ledgers, unless one of them does not read: a sum
// without it would understate what was spent.
func (p *privacyPage) compose() {
	var snaps []*dp.LedgerSnapshot
	for _, v := range p.Ledgers {
		if v.Device {
			continue
		}
		if v.snap == nil {
			p.ComposedErr = fmt.Sprintf("not computed, since %s does not read", v.Path)
			return
		}
		snaps = append(snaps, v.snap)
		p.Unbounded = p.Unbounded || len(v.Unprotected) > 0
	}
	if len(snaps) == 0 {
		return
	}
	p.Composable, p.ComposedDelta = len(snaps), snaps[0].Budget.Delta
	for _, s := range snaps {
		p.ComposedDelta = min(p.ComposedDelta, s.Budget.Delta)
	}
	var err error
	if p.Composed, _, err = dp.ComposeLedgers(p.ComposedDelta, snaps...); err != nil {
		p.ComposedErr = err.Error()
	}
}

// ledgerView is one privacy ledger as the privacy page shows it.
type ledgerView struct {
	Path        string
	Err         string
	Subject     string
	Budget      dp.Budget
	Spent       float64
	Percent     float64
	Remaining   float64
	Unprotected []uint64
	// Device is a device's own ledger (dp.DeviceLedgerFile), not a model's.
	Device bool
	Rounds []roundView
	snap   *dp.LedgerSnapshot
}

type roundView struct {
	dp.LedgerEntry
	ThisRound float64
}

// privacy shows each configured ledger: budget, spent, remaining, every round with its
// parameters, and a warning for any round released without differential privacy.
func (c *console) privacy(w http.ResponseWriter, r *http.Request) {
	p := privacyPage{Ledgers: c.readLedgers(), Report: c.cfg.PrivacyReport != nil}
	p.compose()
	if path := c.cfg.Tradeoff; path != "" {
		// Read on each load, as the ledgers are: a new evaluation shows without a restart.
		if t, err := ReadTradeoff(path); err != nil {
			p.Tradeoff = tradeoffView{Path: path, Err: err.Error()}
		} else {
			p.Tradeoff = newTradeoffView(path, t, r.URL.Query().Get("metric"), p.Ledgers)
		}
	}
	c.render(w, "privacy", p)
}

// readLedgers reads each configured ledger; one that does not read says why.
func (c *console) readLedgers() []ledgerView {
	views := make([]ledgerView, 0, len(c.cfg.Ledgers))
	for _, path := range c.cfg.Ledgers {
		v := ledgerView{Path: path, Device: filepath.Base(path) == dp.DeviceLedgerFile}
		snap, err := dp.ReadLedger(path)
		if err != nil {
			v.Err = err.Error()
			views = append(views, v)
			continue
		}
		v.Subject, v.Budget, v.snap = snap.Subject, snap.Budget, snap
		v.Spent, _ = snap.Spent()
		v.Remaining = snap.Budget.Epsilon - v.Spent
		if snap.Budget.Epsilon > 0 {
			v.Percent = 100 * v.Spent / snap.Budget.Epsilon
		}
		v.Unprotected = snap.Unprotected()
		prev := 0.0
		for _, e := range snap.Entries {
			v.Rounds = append(v.Rounds, roundView{e, e.Epsilon - prev})
			prev = e.Epsilon
		}
		views = append(views, v)
	}
	return views
}
