package console

import (
	"net/http"

	"github.com/vigilauth/vigil/dp"
)

// privacyPage is the privacy page: the ledgers, and whether the signed report can be downloaded.
type privacyPage struct {
	Ledgers []ledgerView
	Report  bool
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
	Rounds      []roundView
}

type roundView struct {
	dp.LedgerEntry
	ThisRound float64
}

// privacy shows each configured ledger: budget, spent, remaining, every round with its
// parameters, and a warning for any round released without differential privacy.
func (c *console) privacy(w http.ResponseWriter, r *http.Request) {
	c.render(w, "privacy", privacyPage{Ledgers: c.readLedgers(), Report: c.cfg.PrivacyReport != nil})
}

// readLedgers reads each configured ledger; one that does not read says why.
func (c *console) readLedgers() []ledgerView {
	views := make([]ledgerView, 0, len(c.cfg.Ledgers))
	for _, path := range c.cfg.Ledgers {
		v := ledgerView{Path: path}
		snap, err := dp.ReadLedger(path)
		if err != nil {
			v.Err = err.Error()
			views = append(views, v)
			continue
		}
		v.Subject, v.Budget = snap.Subject, snap.Budget
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
