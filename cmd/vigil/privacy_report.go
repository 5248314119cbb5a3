package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/dp"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/sim"
	"github.com/vigilauth/vigil/store"
)

// reportSignatureContext is the ML-DSA context string of a signed privacy report, so that the
// signature cannot be taken for a signature on anything else.
const reportSignatureContext = "vigil privacy report v1"

// maxReportModels caps how many model ledgers one report reads.
const maxReportModels = 64

// privacyReport is what `vigil privacy report` says about a coordinator's models.
type privacyReport struct {
	Generated   string   `json:"generated"`
	Dir         string   `json:"dir"`
	Population  int      `json:"population"`
	Accounting  string   `json:"accounting"`
	Mechanism   string   `json:"mechanism"`
	Adjacency   string   `json:"adjacency"`
	Assumptions []string `json:"assumptions"`
	// StoreMissing: dir has no store/, so no round is checked against what it released.
	StoreMissing bool          `json:"store_missing"`
	Models       []modelReport `json:"models"`
	Composed     composed      `json:"composed"`
	Warnings     []string      `json:"warnings"`
}

// composed is the epsilon of every model's private rounds together. Unbounded: a round of one
// of them had no differential privacy, so no epsilon bounds the loss; Epsilon and Order, which
// count the private rounds only, are then null in JSON and shown nowhere.
type composed struct {
	Models    int     `json:"models"`
	Unbounded bool    `json:"unbounded"`
	Epsilon   float64 `json:"epsilon"`
	Order     float64 `json:"order"`
	Delta     float64 `json:"delta"`
}

// MarshalJSON writes epsilon and order as null when the composition is unbounded.
func (c composed) MarshalJSON() ([]byte, error) {
	type plain composed
	return json.Marshal(struct {
		plain
		Epsilon *float64 `json:"epsilon"`
		Order   *float64 `json:"order"`
	}{plain(c), bounded(c.Unbounded, c.Epsilon), bounded(c.Unbounded, c.Order)})
}

// bounded returns &v, or nil (JSON null) when the loss is unbounded and v says nothing of it.
func bounded(unbounded bool, v float64) *float64 {
	if unbounded {
		return nil
	}
	return &v
}

// modelReport is one ledger. Unbounded: a round had no differential privacy (Unprotected), so
// the model's privacy loss is unbounded; Spent, Order and Remaining, which count its private
// rounds only, are then null in JSON and shown nowhere.
type modelReport struct {
	Model       string        `json:"model"`
	Ledger      string        `json:"ledger"`
	Budget      dp.Budget     `json:"budget"`
	Unbounded   bool          `json:"unbounded"`
	Spent       float64       `json:"spent"`
	Order       float64       `json:"order"`
	Remaining   float64       `json:"remaining"`
	Unprotected []uint64      `json:"unprotected_rounds"`
	Versions    int           `json:"versions"`
	Rounds      []roundReport `json:"rounds"`
	// ByModel is the epsilon of each model's rounds alone, at the ledger's delta: what a
	// reviewer weighs a population against the autoencoder with. Spent composes them all.
	ByModel []modelShare `json:"by_model"`
}

// MarshalJSON writes spent, order and remaining as null when the loss is unbounded.
func (m modelReport) MarshalJSON() ([]byte, error) {
	type plain modelReport
	return json.Marshal(struct {
		plain
		Spent     *float64 `json:"spent"`
		Order     *float64 `json:"order"`
		Remaining *float64 `json:"remaining"`
	}{plain(m), bounded(m.Unbounded, m.Spent), bounded(m.Unbounded, m.Order), bounded(m.Unbounded, m.Remaining)})
}

// modelShare is the epsilon of the rounds of one model charged to a ledger; Unbounded (epsilon
// null in JSON) when one of them had no differential privacy.
type modelShare struct {
	Model     string  `json:"model"`
	Rounds    int     `json:"rounds"`
	Unbounded bool    `json:"unbounded"`
	Epsilon   float64 `json:"epsilon"`
}

// MarshalJSON writes epsilon as null when the share is unbounded.
func (s modelShare) MarshalJSON() ([]byte, error) {
	type plain modelShare
	return json.Marshal(struct {
		plain
		Epsilon *float64 `json:"epsilon"`
	}{plain(s), bounded(s.Unbounded, s.Epsilon)})
}

type roundReport struct {
	dp.LedgerEntry
	// EpsilonIncrease is what this round added to the model's epsilon.
	EpsilonIncrease float64 `json:"epsilon_increase"`
	// Model and Version name the stored version the round released (0: none in the store): of
	// the ledger's model, or of its population model, whose rounds the same ledger charges.
	Model   string `json:"model,omitempty"`
	Version uint64 `json:"version"`
	// Store says whether the store's version matches the ledger's hash.
	Store string `json:"store"`
}

func assumptions() []string {
	return []string{
		"The coordinator is honest but curious: it follows the protocol, sees who sends an update in each round, and learns only the decrypted sum.",
		"Fewer than the threshold of trustees collude with the coordinator, so no single encrypted update is ever decrypted, and trustees refuse sums of fewer than m_min updates.",
		"At most t_dev devices in a round are malicious; each honest device clips its update to C and adds discrete Gaussian noise of stddev zC/sqrt(m_min - t_dev), so the at least m_min - t_dev honest shares of a released sum carry noise zC.",
		"Each user has one device, and a device is drawn for a round independently with probability K/N, the draw repeated while it holds fewer than m_min; q is the chance of being in a kept draw. Rounds that fail for too few answers, or that the operator aborts, are charged too.",
		"Epsilon is for the adjacency stated above; extra noise from more honest participants only lowers the real loss.",
	}
}

// runPrivacyReport is `vigil privacy report`: per model, every charged round with its parameters,
// the epsilon spent, the epsilon composed across models, the assumptions, and warnings.
func runPrivacyReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("privacy report", stdout)
	var (
		dir, model, htmlPath, keyPath string
		population                    int
		delta                         float64
		asJSON                        bool
	)
	fs.StringVar(&dir, "dir", "", "the coordinator's directory (--dir of `vigil coordinator` or `vigil demo`), with state/ and store/ (required)")
	fs.StringVar(&model, "model", "", "report on this model only (default: every model with a ledger)")
	fs.IntVar(&population, "population", 0, "enrolled devices N (default: read from the coordinator's state)")
	fs.Float64Var(&delta, "delta", 0, "delta of the composition across models (default the smallest ledger delta)")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
	fs.StringVar(&htmlPath, "html", "", "also write the report as HTML to this file")
	fs.StringVar(&keyPath, "sign-key", "", "sign the HTML with this ML-DSA-65 private key (`vigil release keygen`); the signature goes to FILE.sig")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case dir == "":
		return errors.New("missing required flag --dir")
	case keyPath != "" && htmlPath == "":
		return errors.New("--sign-key signs the HTML: give --html too")
	case population < 0:
		return fmt.Errorf("--population %d is negative", population)
	}
	// buildReport takes delta 0 for the ledgers' smallest: a --delta of 0, or one that parses to
	// 0 (1e-400), must not become that default.
	if setFlags(fs)["delta"] {
		if err := (dp.Budget{Epsilon: 1, Delta: delta}).Validate(); err != nil {
			return blameFlag(err, map[string]string{"delta": "delta"})
		}
	}
	rep, err := buildReport(ctx, dir, model, population, delta)
	if err != nil {
		return err
	}
	if htmlPath != "" {
		if err := writeReportHTML(htmlPath, keyPath, rep); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote %s\n", htmlPath)
	}
	if asJSON {
		return writeJSON(stdout, rep)
	}
	writeReportText(stdout, rep)
	return nil
}

// buildReport reads the ledgers in dir/state and checks them against the store in dir/store.
func buildReport(ctx context.Context, dir, only string, population int, delta float64) (*privacyReport, error) {
	stateDir := filepath.Join(dir, "state")
	paths, err := filepath.Glob(filepath.Join(stateDir, "*.ledger"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("--dir: no privacy ledger in %s: %w", stateDir, fs.ErrNotExist)
	}
	if len(paths) > maxReportModels {
		return nil, fmt.Errorf("--dir: %d ledgers in %s, at most %d per report", len(paths), stateDir, maxReportModels)
	}
	rep := &privacyReport{
		Generated: time.Now().UTC().Format(time.RFC3339), Dir: dir, Population: population,
		Accounting: dp.LedgerAccounting, Mechanism: dp.KnownParticipation.String(), Adjacency: coordinator.Adjacency,
		Assumptions: assumptions(), Warnings: []string{},
	}
	if rep.Population == 0 {
		if s, err := coordinator.ReadStateSummary(stateDir); err == nil {
			rep.Population = s.Enrolled
		} else {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("population unknown (%v): give --population to check delta against it", err))
		}
	}
	// A report only reads: store.NewFS would create a missing store, and an empty store would
	// make every released round look unreleased. Without one the rounds are not checked.
	var st store.Store
	storeDir := filepath.Join(dir, "store")
	switch fi, err := os.Stat(storeDir); {
	case errors.Is(err, fs.ErrNotExist):
		rep.StoreMissing = true
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("no model store at %s (--dir): no round is checked against the models it released, "+
			"and the models a ledger's rounds released are not known", storeDir))
	case err != nil:
		return nil, fmt.Errorf("--dir: %w", err)
	case !fi.IsDir():
		return nil, fmt.Errorf("--dir: %s is not a directory", storeDir)
	default:
		if st, err = store.NewFS(storeDir); err != nil {
			return nil, fmt.Errorf("--dir: %w", err)
		}
	}
	var snaps []*dp.LedgerSnapshot
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		snap, err := dp.ReadLedger(p)
		if err != nil {
			return nil, fmt.Errorf("ledger: %w", err)
		}
		if only != "" && snap.Subject != only {
			continue
		}
		m, warnings, err := modelReportOf(ctx, st, p, snap)
		if err != nil {
			return nil, err
		}
		rep.Models = append(rep.Models, m)
		rep.Warnings = append(rep.Warnings, warnings...)
		snaps = append(snaps, snap)
	}
	if len(rep.Models) == 0 {
		return nil, fmt.Errorf("--model: no ledger in %s belongs to %q", stateDir, only)
	}
	if delta == 0 {
		delta = snaps[0].Budget.Delta
		for _, s := range snaps {
			delta = min(delta, s.Budget.Delta)
		}
	}
	eps, order, err := dp.ComposeLedgers(delta, snaps...)
	if err != nil {
		return nil, blameFlag(err, map[string]string{"delta": "delta"})
	}
	rep.Composed = composed{Models: len(snaps), Epsilon: eps, Order: order, Delta: delta}
	for _, m := range rep.Models {
		rep.Composed.Unbounded = rep.Composed.Unbounded || m.Unbounded
	}
	if rep.Population > 0 {
		for _, m := range rep.Models {
			if m.Budget.Delta > 1/float64(rep.Population) {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s: delta %g is not small against the population: it exceeds 1/N = %.3g (N = %d); "+
					"an (epsilon, delta) guarantee then allows revealing some user's data outright with probability delta", m.Model, m.Budget.Delta, 1/float64(rep.Population), rep.Population))
			}
		}
	}
	return rep, nil
}

// modelReportOf reports one ledger and checks every round against the store's versions; st nil
// is a missing store, against which nothing is checked.
func modelReportOf(ctx context.Context, st store.Store, path string, snap *dp.LedgerSnapshot) (modelReport, []string, error) {
	spent, order := snap.Spent()
	m := modelReport{Model: snap.Subject, Ledger: path, Budget: snap.Budget, Spent: spent, Order: order,
		Remaining: snap.Budget.Epsilon - spent, Unprotected: snap.Unprotected()}
	if m.Unprotected == nil {
		m.Unprotected = []uint64{}
	}
	m.Unbounded = len(m.Unprotected) > 0
	var warnings []string
	warn := func(format string, args ...any) {
		warnings = append(warnings, m.Model+": "+fmt.Sprintf(format, args...))
	}
	var versions []models.Meta
	// The population rounds (and the mouse population's reference round) are charged to the
	// same ledger and release, or keep, their own models.
	for _, name := range []string{snap.Subject, sim.PopulationModel, sim.MousePopulationModel, sim.MouseReferenceModel} {
		if st == nil {
			break
		}
		stored, err := coordinator.ListVersions(ctx, st, name)
		if err != nil {
			return m, nil, fmt.Errorf("store: %w", err)
		}
		versions = append(versions, stored...)
	}
	m.Versions = len(versions)
	// In round order, named by model: the population rounds release models of their own.
	slices.SortFunc(versions, func(a, b models.Meta) int { return cmp.Compare(a.Round, b.Round) })
	byRound := map[uint64]models.Meta{}
	for _, v := range versions {
		if v.Round == 0 {
			continue
		}
		byRound[v.Round] = v
		if v.Privacy == nil || !v.Privacy.DifferentialPrivacy {
			warn("%s v%d (round %d) was released WITHOUT differential privacy", v.Name, v.Version, v.Round)
		}
	}
	prev := 0.0
	inLedger := map[uint64]bool{}
	for _, e := range snap.Entries {
		inLedger[e.Round] = true
		r := roundReport{LedgerEntry: e, EpsilonIncrease: e.Epsilon - prev, Store: "no version in the store (round charged, not released)"}
		prev = e.Epsilon
		v, ok := byRound[e.Round]
		switch {
		case st == nil && e.ModelSHA256 != "":
			r.Store = "not checked (no model store): the ledger records a release"
		case st == nil:
			r.Store = "not checked (no model store): the ledger records no release"
		case !ok && e.ModelSHA256 != "":
			r.Store = "MISSING: the ledger records a release the store does not hold"
			warn("round %d: the ledger records a release (model SHA-256 %s) of which the store has no version", e.Round, e.ModelSHA256)
		}
		if ok {
			r.Model, r.Version = v.Name, v.Version
			switch {
			case e.ModelSHA256 == "":
				r.Store = "released; the ledger has no hash yet (recorded at the coordinator's next start)"
			case e.ModelSHA256 == v.ParamsSHA256:
				r.Store = "matches the store"
			default:
				r.Store = "MISMATCH: the store's parameters differ from the released hash"
				warn("round %d: the store's v%d does not match the hash the ledger recorded", e.Round, v.Version)
			}
		}
		if e.Private() && e.ToleratedDevices == 0 && e.MinParticipants > 1 {
			warn("round %d tolerates no malicious device (t_dev = 0): one colluder lowers the noise", e.Round)
		}
		m.Rounds = append(m.Rounds, r)
	}
	if m.Rounds == nil {
		m.Rounds = []roundReport{}
	}
	var err2 error
	if m.ByModel, err2 = sharesByModel(m.Rounds, snap.Budget.Delta, st != nil); err2 != nil {
		return m, nil, err2
	}
	rounds := make([]uint64, 0, len(byRound))
	for r := range byRound {
		if !inLedger[r] {
			rounds = append(rounds, r)
		}
	}
	sort.Slice(rounds, func(i, j int) bool { return rounds[i] < rounds[j] })
	for _, r := range rounds {
		warn("version %d was released by round %d, which the ledger does not record: its privacy loss is not accounted", byRound[r].Version, r)
	}
	if len(m.Unprotected) > 0 {
		warn("differential privacy was OFF in round(s) %v: the model's privacy loss is unbounded whatever epsilon says", m.Unprotected)
	}
	if spent >= 0.9*snap.Budget.Epsilon {
		warn("budget almost spent: epsilon %.4g of %g (%.0f%%)", spent, snap.Budget.Epsilon, 100*spent/snap.Budget.Epsilon)
	}
	return m, warnings, nil
}

// sharesByModel composes the private rounds of each model alone, in the order the models first
// appear. A round without a stored version counts as "not released", or, when the ledger
// records a release, "released, not in the store"; without a store (stored false) no round's
// model is known. A model with a round without differential privacy has an unbounded share.
func sharesByModel(rounds []roundReport, delta float64, stored bool) ([]modelShare, error) {
	events := map[string][]dp.Event{}
	unbounded := map[string]bool{}
	counts := map[string]int{}
	var order []string
	for _, r := range rounds {
		name := r.Model
		switch {
		case name != "":
		case !stored:
			name = "model unknown (no model store)"
		case r.ModelSHA256 != "":
			name = "released, not in the store"
		default:
			name = "not released"
		}
		if _, ok := counts[name]; !ok {
			order = append(order, name)
		}
		counts[name]++
		if !r.Private() {
			unbounded[name] = true
			continue
		}
		events[name] = append(events[name], r.Event())
	}
	out := []modelShare{}
	for _, name := range order {
		s := modelShare{Model: name, Rounds: counts[name], Unbounded: unbounded[name]}
		if !s.Unbounded {
			eps, _, err := dp.Epsilon(events[name], delta, dp.Options{})
			if err != nil {
				return nil, fmt.Errorf("epsilon of %s's rounds: %w", name, err)
			}
			s.Epsilon = eps
		}
		out = append(out, s)
	}
	return out, nil
}

// writeReportHTML writes the report as one self-contained HTML page, and, with a key, its
// detached ML-DSA-65 signature to path.sig.
func writeReportHTML(path, keyPath string, rep *privacyReport) error {
	var key *sig.PrivateKey
	if keyPath != "" {
		var err error
		if key, err = sig.ReadPrivateKeyFile(keyPath); err != nil {
			return fmt.Errorf("--sign-key: %w", err)
		}
	}
	var b strings.Builder
	if err := reportHTML.Execute(&b, rep); err != nil {
		return fmt.Errorf("--html: %w", err)
	}
	page := []byte(b.String())
	if err := os.WriteFile(path, page, 0o644); err != nil {
		return fmt.Errorf("--html: %w", err)
	}
	if key == nil {
		return nil
	}
	signature, err := key.Sign(page, reportSignatureContext)
	if err != nil {
		return fmt.Errorf("--sign-key: %w", err)
	}
	if err := os.WriteFile(path+".sig", signature, 0o644); err != nil {
		return fmt.Errorf("--html: %w", err)
	}
	return nil
}
