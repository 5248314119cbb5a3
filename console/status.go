package console

import (
	"context"
	"net/http"
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
	// Ledgers carries the per-round history for the rounds page: the status has only the open
	// and the last round, the ledger has every round charged.
	Ledgers []ledgerView
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
		case page == "releases" && c.cfg.ReleaseStatus != nil:
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
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}
