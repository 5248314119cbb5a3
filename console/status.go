package console

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// StatusFunc reads a coordinator's status: through the Admin API with an operator's
// certificate, or from its state directory (coordinator.ReadStatus), which holds less.
type StatusFunc func(context.Context) (*vigilv1.StatusResponse, error)

// statusTimeout bounds one read of the status, so a coordinator that does not answer costs a
// page a message, not a hung request.
const statusTimeout = 10 * time.Second

// statusPage is what the rounds, trustees, releases and devices pages show.
type statusPage struct {
	Source string
	// Partial: the status is from a state directory; see Config.StatusPartial.
	Partial bool
	Err     string
	St      *vigilv1.StatusResponse
	Now     time.Time
	// Releases is the release check's report, ReleasesErr why it failed.
	Releases, ReleasesErr string
	// Ledgers carries the per-round history for the rounds page: the status has the rounds
	// ended since the coordinator started, the ledger has every round charged.
	Ledgers []ledgerView
	// Recent is the status's recent rounds with the time of each stage, for the rounds page.
	Recent recentRounds
	// Fleet is which versions the devices run, for the releases page.
	Fleet fleetVersions
}

// fleetVersions is which model versions the enrolled devices reported running, each beside the
// regions that publish it.
type fleetVersions struct {
	Rows []fleetVersion
	// Silent counts the enrolled devices that reported nothing since the coordinator started.
	Silent int
}

type fleetVersion struct {
	*vigilv1.InstalledCount
	// Published names the regions whose published version this is (only for the
	// coordinator's own model, the one regions publish).
	Published []string
}

func newFleetVersions(st *vigilv1.StatusResponse) fleetVersions {
	var f fleetVersions
	counts := slices.Clone(st.GetInstalled())
	// A published version no device runs yet (devices still shadow-scoring it, or that
	// rejected it) is a row too, with no devices: what is published, beside what runs.
	for _, r := range st.GetRegions() {
		if !slices.ContainsFunc(counts, func(n *vigilv1.InstalledCount) bool {
			return n.GetModel() == st.GetModel() && n.GetVersion() == r.GetPublishedVersion()
		}) && r.GetPublishedVersion() != 0 {
			counts = append(counts, &vigilv1.InstalledCount{Model: st.GetModel(), Version: r.GetPublishedVersion()})
		}
	}
	slices.SortFunc(counts, func(a, b *vigilv1.InstalledCount) int {
		if c := strings.Compare(a.GetModel(), b.GetModel()); c != 0 {
			return c
		}
		return cmp.Compare(a.GetVersion(), b.GetVersion())
	})
	for _, n := range counts {
		row := fleetVersion{InstalledCount: n}
		if n.GetModel() == st.GetModel() {
			for _, r := range st.GetRegions() {
				if r.GetPublishedVersion() == n.GetVersion() {
					row.Published = append(row.Published, r.GetName())
				}
			}
		}
		f.Rows = append(f.Rows, row)
	}
	for _, d := range st.GetDevices() {
		if len(d.GetInstalled()) == 0 {
			f.Silent++
		}
	}
	return f
}

// installedList formats a device's report of what it runs, "keystroke-ae v4, ...", sorted.
func installedList(inst map[string]uint64) string {
	parts := make([]string, 0, len(inst))
	for _, m := range slices.Sorted(maps.Keys(inst)) {
		parts = append(parts, fmt.Sprintf("%s v%d", m, inst[m]))
	}
	return strings.Join(parts, ", ")
}

// recentRounds lays out the status's recent rounds as a table: one column per stage any of
// them went through, in the order rounds go through them.
type recentRounds struct {
	Stages []string
	Rows   []recentRound
}

type recentRound struct {
	*vigilv1.LastRoundStatus
	// Took holds the time of each of recentRounds.Stages, "" for a stage the round did not
	// reach.
	Took []string
}

// stageOrder is the order of the coordinator's stages (coordinator.Stage*); a stage it does not
// list goes after them.
var stageOrder = []string{"collecting updates", "trustees committing", "decryption", "charging and storing", "publishing", "until the failure"}

func newRecentRounds(rounds []*vigilv1.LastRoundStatus) recentRounds {
	var v recentRounds
	for _, r := range rounds {
		for _, s := range r.GetStages() {
			if !slices.Contains(v.Stages, s.GetName()) {
				v.Stages = append(v.Stages, s.GetName())
			}
		}
	}
	rank := func(name string) int {
		if i := slices.Index(stageOrder, name); i >= 0 {
			return i
		}
		return len(stageOrder)
	}
	slices.SortStableFunc(v.Stages, func(a, b string) int { return rank(a) - rank(b) })
	for _, r := range rounds {
		row := recentRound{LastRoundStatus: r, Took: make([]string, len(v.Stages))}
		for _, s := range r.GetStages() {
			row.Took[slices.Index(v.Stages, s.GetName())] = seconds(s.GetSeconds())
		}
		v.Rows = append(v.Rows, row)
	}
	return v
}

func (c *console) readStatus(r *http.Request) statusPage {
	p := statusPage{Source: c.cfg.StatusSource, Partial: c.cfg.StatusPartial, Now: time.Now()}
	if c.cfg.Status == nil {
		p.Err = "no coordinator given (--operator and --coordinator for the Admin API, or --state for its state directory)"
		return p
	}
	ctx, cancel := context.WithTimeout(r.Context(), statusTimeout)
	defer cancel()
	st, err := c.cfg.Status(ctx)
	if err != nil {
		p.Err = err.Error()
		return p
	}
	p.St = st
	return p
}

func (c *console) statusHandler(page string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := c.readStatus(r)
		switch {
		case page == "rounds":
			p.Ledgers = c.readLedgers()
			p.Recent = newRecentRounds(p.St.GetRecentRounds())
		case page == "releases":
			p.Fleet = newFleetVersions(p.St)
			if c.cfg.ReleaseStatus == nil {
				break
			}
			ctx, cancel := context.WithTimeout(r.Context(), statusTimeout)
			defer cancel()
			var err error
			if p.Releases, err = c.cfg.ReleaseStatus(ctx); err != nil {
				p.ReleasesErr = err.Error()
			}
		}
		c.render(w, page, p)
	}
}

// pbTime formats a protobuf timestamp, "-" when unset.
func pbTime(t *timestamppb.Timestamp) string {
	if !t.IsValid() {
		return "-"
	}
	return formatTime(t.AsTime())
}

// seconds formats a duration given in seconds, rounded to the millisecond.
func seconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	if d > 0 && d < time.Millisecond {
		return d.Round(time.Microsecond).String() // not "0s" for a trustee answering fast
	}
	return d.Round(time.Millisecond).String()
}
