package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vigilauth/vigil/audit"
	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/siem"
)

// Limits of what one page reads and shows.
const (
	// MaxLogBytes bounds the decision log a page reads; a larger log is refused with a message.
	MaxLogBytes = 256 << 20
	// DefaultRows is how many entries the decisions page shows, newest first.
	DefaultRows = 200
)

// Config configures the console. LogPath and Verifier are required.
type Config struct {
	// LogPath is the decision log (JSON lines, package audit).
	LogPath string
	// Verifier checks the log's checkpoint signatures.
	Verifier audit.Verifier
	// SpoolDir is a SIEM exporter's spool to show; empty for none.
	SpoolDir string
	// Ledgers are privacy ledgers (package dp) to show privacy reviewers: the coordinator's
	// per model, a device's.
	Ledgers []string
	// Status reads the coordinator's status for the rounds, trustees, releases and devices
	// pages; nil: those pages say no coordinator was given.
	Status StatusFunc
	// StatusSource names where Status reads from, for the pages: an Admin API address or a
	// state directory.
	StatusSource string
	// StatusPartial says Status reads a state directory (coordinator.ReadStatus): what only a
	// running coordinator knows is then shown as unknown, not as zero.
	StatusPartial bool
	// ReleaseStatus checks the regions' releases as a device would (vigil release status) and
	// returns its report; an error says something does not verify, expired or expires soon.
	// nil: the releases page shows only what the status says.
	ReleaseStatus func(context.Context) (string, error)
	// PrivacyReport builds the signed privacy report (vigil privacy report --html --sign-key):
	// the page and its detached ML-DSA-65 signature. nil: the privacy page offers no download.
	PrivacyReport func(context.Context) (page, signature []byte, err error)
	// KeyEpochs are signed key-epoch documents to show on the key epochs page: the
	// organisation's key-epoch.json, a region's keyepochs/N.json.
	KeyEpochs []string
	// TrustRoot is the root of trust whose trustees role the key epochs' signatures are
	// checked against; nil: the page says they cannot be checked.
	TrustRoot *release.Root
	// Signers names the trustees role's keys (from the ceremony's roster), so the page says
	// which trustee signed; without it, signers are shown by key.
	Signers map[sig.KeyID]string
	// Tradeoff is the output of vigil privacy tradeoff --json (see Tradeoff), which the privacy
	// page plots against the ledgers' epsilon; empty: none.
	Tradeoff string
	// Rows bounds the decisions page (default DefaultRows).
	Rows int
}

type console struct {
	cfg  Config
	tmpl *template.Template
	// reading bounds the log reads at once: each holds the whole log (up to MaxLogBytes)
	// while it verifies it, and a few reviewers refreshing a large log's pages reached 2.4 GB.
	reading chan struct{}
}

// maxLogReads is how many requests read the log at once; the others wait their turn.
const maxLogReads = 2

// New returns the console's handler.
func New(cfg Config) (http.Handler, error) {
	switch {
	case cfg.LogPath == "":
		return nil, errors.New("console: Config.LogPath is required")
	case cfg.Verifier == nil:
		return nil, errors.New("console: Config.Verifier is required")
	case cfg.Rows < 0:
		return nil, errors.New("console: Config.Rows is negative")
	}
	if cfg.Rows == 0 {
		cfg.Rows = DefaultRows
	}
	t, err := template.New("").Funcs(template.FuncMap{"time": formatTime, "pbtime": pbTime, "seconds": seconds, "installed": installedList,
		"pages": navPages}).Parse(pages + statusPages)
	if err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	c := &console{cfg: cfg, tmpl: t, reading: make(chan struct{}, maxLogReads)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", c.overview)
	mux.HandleFunc("GET /decisions", c.decisions)
	mux.HandleFunc("GET /privacy", c.privacy)
	if cfg.PrivacyReport != nil {
		mux.HandleFunc("GET /privacy/report", c.privacyReport)
	}
	for _, page := range []string{"rounds", "trustees", "releases", "devices"} {
		mux.HandleFunc("GET /"+page, c.statusHandler(page))
	}
	mux.HandleFunc("GET /keyepochs", c.keyEpochs)
	mux.HandleFunc("GET /style.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Write([]byte(style))
	})
	return secure(mux), nil
}

// secure sets the headers every answer carries and refuses anything but reading.
func secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			hd.Set("Allow", "GET, HEAD")
			http.Error(w, "the console is read-only", http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// navPage is a page of the header's navigation.
type navPage struct{ Path, Title string }

// navPages are the console's pages, in the header's order; each page's template names its
// Title.
func navPages() []navPage {
	return []navPage{
		{"/", "Overview"}, {"/rounds", "Rounds"}, {"/privacy", "Privacy"}, {"/trustees", "Trustees"},
		{"/keyepochs", "Key epochs"}, {"/releases", "Releases"}, {"/devices", "Devices"}, {"/decisions", "Decisions"},
	}
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000Z")
}

// logView is the decision log as a page shows it: verified, or why not.
type logView struct {
	Path    string
	Report  audit.Report
	Err     string
	Records []audit.Record
}

// readLog reads and verifies the log, then keeps the newest records that keep returns true
// for, at most rows of them. A log that does not verify yields no records: its contents are not
// evidence.
func (c *console) readLog(ctx context.Context, keep func(*audit.Record) bool, rows int) logView {
	v := logView{Path: c.cfg.LogPath}
	select {
	case c.reading <- struct{}{}:
		defer func() { <-c.reading }()
	case <-ctx.Done():
		v.Err = ctx.Err().Error() // the request is gone: nobody reads this
		return v
	}
	f, err := os.Open(c.cfg.LogPath)
	if err != nil {
		v.Err = err.Error()
		return v
	}
	defer f.Close()
	if info, err := f.Stat(); err == nil && info.Size() > MaxLogBytes {
		v.Err = fmt.Sprintf("the log is %d bytes, more than the console reads (%d); use vigil audit verify", info.Size(), MaxLogBytes)
		return v
	}
	var data bytes.Buffer
	if _, err := data.ReadFrom(f); err != nil {
		v.Err = err.Error()
		return v
	}
	if v.Report, err = audit.Verify(bytes.NewReader(data.Bytes()), c.cfg.Verifier); err != nil {
		v.Err = err.Error()
		return v
	}
	// As vigil audit verify refuses them: an emptied log, or one nobody signed, would show in
	// green to whoever could write it.
	if err := v.Report.Signed(); err != nil {
		v.Err = err.Error()
		return v
	}
	if rows == 0 {
		return v
	}
	for line := range bytes.Lines(data.Bytes()) {
		r, err := audit.DecodeRecord(line)
		if err != nil { // verified a moment ago; cannot happen
			v.Err = err.Error()
			return v
		}
		if keep(&r) {
			v.Records = append(v.Records, r)
			if len(v.Records) > 2*rows { // keep memory bounded by the newest
				v.Records = slices.Clone(v.Records[len(v.Records)-rows:])
			}
		}
	}
	if len(v.Records) > rows {
		v.Records = v.Records[len(v.Records)-rows:]
	}
	slices.Reverse(v.Records)
	return v
}

type overviewPage struct {
	Log      logView
	SpoolDir string
	Spool    *siem.SpoolStatus
	SpoolErr string
}

func (c *console) overview(w http.ResponseWriter, r *http.Request) {
	p := overviewPage{Log: c.readLog(r.Context(), nil, 0), SpoolDir: c.cfg.SpoolDir}
	if c.cfg.SpoolDir != "" {
		if st, err := siem.ReadSpoolStatus(c.cfg.SpoolDir); err != nil {
			p.SpoolErr = err.Error()
		} else {
			p.Spool = &st
		}
	}
	c.render(w, "overview", p)
}

// filter is the decisions page's query: each field, when set, must match exactly.
type filter struct {
	Session, User, Outcome string
}

func (f filter) keep(r *audit.Record) bool {
	switch {
	case r.Decision != nil:
		d := r.Decision
		return (f.Session == "" || f.Session == d.Session) && (f.User == "" || f.User == d.User) &&
			(f.Outcome == "" || f.Outcome == d.Outcome)
	case r.Session != nil:
		s := r.Session
		return (f.Session == "" || f.Session == s.Session) && (f.User == "" || f.User == s.User) &&
			(f.Outcome == "" || f.Outcome == s.Event)
	case r.Gap != nil:
		return f == filter{}
	}
	return false
}

type decisionsPage struct {
	Filter filter
	Log    logView
	Rows   int
}

func (c *console) decisions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := filter{Session: strings.TrimSpace(q.Get("session")), User: strings.TrimSpace(q.Get("user")),
		Outcome: strings.TrimSpace(q.Get("outcome"))}
	c.render(w, "decisions", decisionsPage{Filter: f, Log: c.readLog(r.Context(), f.keep, c.cfg.Rows), Rows: c.cfg.Rows})
}

func (c *console) render(w http.ResponseWriter, name string, data any) {
	var buf bytes.Buffer
	if err := c.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "console: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}
