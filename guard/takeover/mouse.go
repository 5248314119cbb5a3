package takeover

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/vigilauth/vigil/guard"
	"github.com/vigilauth/vigil/guard/behaviour"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/eval"
	"github.com/vigilauth/vigil/models/mouse"
)

// IdleGap is the longest pause counted as mouse use: a still pointer beyond it is someone away
// from the mouse, and the hours of use that false challenges are counted against leave it out.
const IdleGap = time.Minute

// Reasons a recorded session is left out of the mouse replay.
const (
	DropNoLabel        = "test session without a label"
	DropNoEvents       = "test session without usable pointer events"
	DropShortPrefix    = "user without a genuine session longer than a mouse window, to take over from"
	DropOtherNoGenuine = "other user without a genuine test session"
)

// MouseConfig sets a mouse takeover evaluation on the Balabit Mouse Dynamics Challenge data. The
// zero value of every field but Dir gives the default.
type MouseConfig struct {
	// Dir holds training_files/, test_files/ and public_labels.csv as the Balabit data does.
	Dir string
	// Impostors is the number of cross-user takeovers per user, each by another user drawn with
	// the seed (default: every other user).
	Impostors int
	// Seed fixes every random choice: takeover points, sessions drawn, model initialisations,
	// forests, federated sampling.
	Seed uint64
	// Start is where sessions start on the trust scale (default StartEstablished).
	Start Start
	// Workers bounds the parallelism (default GOMAXPROCS).
	Workers int
	// Guard configures the guard the sessions are replayed through; Scorers, Recorder and
	// Clock are set by the replay. Its MouseWindow and MouseHop are the live defaults unless set.
	Guard guard.Config `json:"-"`
	// Model, Fed and Privacy configure the models as eval.MouseConfig does (zero: what
	// 'vigil eval mouse' uses); Privacy.Fleet defaults to 500 there.
	Model   models.UserModelConfig `json:"-"`
	Fed     eval.FedConfig
	Privacy eval.PrivacyConfig
	// MaxRows bounds the action summaries each user's autoencoder and forest learn from (0:
	// eval.MouseConfig's default, what 'vigil eval mouse' uses); fewer train faster.
	MaxRows int
	// EnrolActions, when positive, enrols each user on their first EnrolActions training
	// actions, as the device agent does (eval.MouseConfig.EnrolActions); 0: every action.
	EnrolActions int
	// Progress, when set, is told of progress through each stage.
	Progress func(stage string, done, total int) `json:"-"`
}

func (c *MouseConfig) validate() error {
	if c.Dir == "" {
		return fmt.Errorf("takeover: no data directory")
	}
	if c.Start == "" {
		c.Start = StartEstablished
	}
	switch {
	case c.MaxRows < 0:
		return fmt.Errorf("takeover: max rows %d is negative", c.MaxRows)
	case c.EnrolActions < 0:
		return fmt.Errorf("takeover: %d enrolment actions is negative", c.EnrolActions)
	case c.Impostors < 0 || c.Impostors > 1000:
		return fmt.Errorf("takeover: %d impostors per user, want 0 (every other user) ..1000", c.Impostors)
	case c.Start != StartEstablished && c.Start != StartNew:
		return fmt.Errorf("takeover: start %q, want %q or %q", c.Start, StartEstablished, StartNew)
	}
	if err := startGuard(&c.Guard, c.Start); err != nil {
		return err
	}
	// The protocol and the takeover points need the window the guard will use.
	d := guard.DefaultConfig()
	c.Guard.MouseWindow = cmp.Or(c.Guard.MouseWindow, d.MouseWindow)
	c.Guard.MouseHop = cmp.Or(c.Guard.MouseHop, d.MouseHop)
	return nil
}

// startGuard sets where g's sessions start and checks that a guard accepts g.
func startGuard(g *guard.Config, start Start) error {
	if start == StartEstablished {
		est := g.Trust.EstablishedTrust
		if est == 0 {
			est = guard.DefaultConfig().Trust.EstablishedTrust
		}
		g.Trust.InitialTrust = est
	}
	// New rejects a guard configuration out of range; try it once here rather than per session.
	r, err := newReplayer(*g)
	if err == nil {
		_, err = guard.New(r.cfg, r.policy)
	}
	if err != nil {
		return fmt.Errorf("takeover: %w", err)
	}
	return nil
}

func (c *MouseConfig) progress(stage string) func(done, total int) {
	if c.Progress == nil {
		return nil
	}
	return func(done, total int) { c.Progress(stage, done, total) }
}

// MouseResult is the outcome of a mouse takeover evaluation.
type MouseResult struct {
	Config MouseConfig
	// Protocol describes in words what was trained on what and what was replayed.
	Protocol string
	// Users is the number of users with a model; TrainActions the actions they enrolled with.
	Users, TrainActions int
	// Read counts the rows of the training and test sessions read and kept, and what was left
	// out, by reason (rows, actions, sessions).
	Read mouse.ReadStats
	// Genuine: every legal test session, replayed on its own.
	Genuine MouseGenuine
	// Account: the illegal test sessions, other people on the user's account, each after a
	// stretch of the owner's own genuine session. CrossUser: another user's legal test session
	// in their place. Control: another of the owner's own legal test sessions in their place,
	// no takeover at all: how soon the owner's own movement is challenged, which any takeover
	// figure is to be read against.
	Account, CrossUser, Control MouseTakeovers
	// Private reports the simulated DP rounds when Config.Privacy is enabled.
	Private                                            *eval.PrivateRounds `json:",omitempty"`
	LoadTime, FederationTime, TrainingTime, ReplayTime time.Duration
}

// MouseGenuine counts what the genuine sessions went through.
type MouseGenuine struct {
	Sessions int `json:"sessions"`
	// Events are the pointer events replayed; Actions the mouse actions in them (as the models
	// cut them); Hours the mouse use, pauses over IdleGap left out.
	Events  int     `json:"events"`
	Actions int     `json:"actions"`
	Hours   float64 `json:"hours"`
	// Challenges counts every challenge (each passed at once, as the owner would) and
	// termination; SessionsChallenged the sessions with at least one.
	Challenges         int `json:"challenges"`
	Terminations       int `json:"terminations"`
	SessionsChallenged int `json:"sessions_challenged"`
	// PerHour and Per1000 are Challenges per hour of mouse use and per 1,000 actions.
	PerHour float64 `json:"challenges_per_hour"`
	Per1000 float64 `json:"challenges_per_1000_actions"`
}

// MouseTakeovers says how fast one kind of takeover was challenged.
type MouseTakeovers struct {
	Sessions int `json:"sessions"`
	// Missed counts takeovers never challenged before the impostor's movement ran out.
	Missed      int     `json:"missed"`
	MissedShare float64 `json:"missed_share"`
	// MissedActions is the median of the actions the missed takeovers' impostor sessions hold
	// in all: how much movement went unchallenged (NaN without missed takeovers).
	MissedActions float64 `json:"-"`
	// Actions, Seconds and UseSeconds are the impostor's mouse actions completed, seconds of
	// their session and seconds of their mouse use (pauses over IdleGap left out) until the
	// session was challenged, over all takeovers with the missed counted as never (NaN
	// quantiles fall among them).
	Actions, Seconds, UseSeconds Quantiles `json:"-"`
	// Tiers counts the tier each challenged takeover reached first.
	Tiers map[string]int `json:"tiers"`
	// PrefixChallenges counts challenges of the owner's movement before the takeover (passed
	// at once); PrefixTerminated the sessions terminated before it, left out of Sessions.
	PrefixChallenges int `json:"prefix_challenges"`
	PrefixTerminated int `json:"prefix_terminated"`
	// ImpostorEvents, ImpostorActions and ImpostorHours are what the impostors' sessions held
	// in all (whether replayed to the end or not); ImpostorActions counts only usable actions.
	ImpostorEvents  int     `json:"impostor_events"`
	ImpostorActions int     `json:"impostor_actions"`
	ImpostorHours   float64 `json:"impostor_hours"`
	// ToChallengeActions and ToChallengeSeconds list every challenged takeover's figures, sorted.
	ToChallengeActions    []int     `json:"-"`
	ToChallengeSeconds    []float64 `json:"-"`
	ToChallengeUseSeconds []float64 `json:"-"`
}

// Quantiles of a figure over takeovers, missed ones counted as never.
type Quantiles struct {
	P25, Median, P75, P90 float64
	// MedianDetected is the median over the challenged takeovers only.
	MedianDetected float64
}

// pointer is one recorded session's pointer events to replay, with the times at which its
// usable actions end.
type pointer struct {
	user, name string
	ev         []mouse.Event
	ends       []time.Duration
	active     time.Duration
}

func (p *pointer) len() int                   { return len(p.ev) }
func (p *pointer) offset(i int) time.Duration { return p.ev[i].T - p.ev[0].T }

// observe replays pointer event i at at, as the agent hands the guard a browser's event.
func (p *pointer) observe(s *session, i int, at time.Time) (guard.Status, error) {
	return p.observeAt(s, i, at, 0, 0)
}

// observeAt replays pointer event i at at, moved by (dx, dy) pixels.
func (p *pointer) observeAt(s *session, i int, at time.Time, dx, dy float64) (guard.Status, error) {
	e := p.ev[i]
	s.now = at
	return s.g.ObserveMouse(guard.MouseEvent{Session: s.id, At: at, X: int32(math.Round(e.X + dx)), Y: int32(math.Round(e.Y + dy)),
		Button: guardButton[e.Button], Action: guardAction[e.State]})
}

// moved is a session's pointer events moved by (dx, dy) pixels: an impostor's movement picking
// up the pointer where the owner left it, so that no jump across the screen at the takeover
// betrays it (the features describe movement, not where on the screen it happens).
type moved struct {
	*pointer
	dx, dy float64
}

func (m moved) observe(s *session, i int, at time.Time) (guard.Status, error) {
	return m.observeAt(s, i, at, m.dx, m.dy)
}

// Handover is the pause between the owner's last pointer event and the impostor's first in a
// takeover: someone else taking over the mouse takes at least that, and it is longer than the
// segmentation pause, so that no action of the owner's runs on into the impostor's.
const Handover = 3 * time.Second

// released is the first event count n >= from after which no button is held: a takeover cut
// there leaves no click or drag of the owner's open for the impostor's events to close.
func (p *pointer) released(from int) int {
	pressed := false
	for i, e := range p.ev {
		if i >= from && !pressed {
			return i
		}
		switch e.State {
		case mouse.Pressed:
			pressed = true
		case mouse.Released:
			pressed = false
		}
	}
	return len(p.ev)
}

// guardButton and guardAction translate the data set's events into the guard's, the inverse of
// behaviour.AppendMouseEvents.
var (
	guardButton = [...]guard.MouseButton{mouse.NoButton: guard.ButtonNone, mouse.Left: guard.ButtonLeft,
		mouse.Right: guard.ButtonRight, mouse.Middle: guard.ButtonMiddle, mouse.Scroll: guard.ButtonScroll, mouse.XButton: guard.ButtonOther}
	guardAction = [...]guard.MouseAction{mouse.Move: guard.ActionMove, mouse.Pressed: guard.ActionPress,
		mouse.Released: guard.ActionRelease, mouse.Drag: guard.ActionDrag, mouse.Down: guard.ActionScrollDown, mouse.Up: guard.ActionScrollUp}
)

// actionsBy is the number of the session's usable actions complete by the time of event i.
func (p *pointer) actionsBy(i int) int {
	t := p.ev[i].T
	n, _ := slices.BinarySearchFunc(p.ends, t, func(e, t time.Duration) int {
		if e <= t {
			return -1
		}
		return 1
	})
	return n
}

// newPointer prepares a session's events: the actions the models would cut from them, and its
// time of mouse use.
func newPointer(user, name string, ev []mouse.Event, st *mouse.ReadStats) (*pointer, error) {
	p := &pointer{user: user, name: name, ev: ev}
	actions, short, err := mouse.Segment(ev, mouse.SegmentConfig{})
	if err != nil {
		return nil, err
	}
	if short > 0 {
		st.Drop(mouse.DropShortAction, short)
	}
	var ex mouse.Extractor
	f := make([]float64, mouse.NumFeatures)
	for _, a := range actions {
		if err := ex.Extract(f, a); err != nil {
			if errors.Is(err, mouse.ErrActionTooShort) {
				st.Drop(eval.DropActionNoShape, 1)
				continue
			}
			return nil, err
		}
		p.ends = append(p.ends, a.Points[len(a.Points)-1].T)
	}
	slices.Sort(p.ends)
	for i := 1; i < len(ev); i++ {
		if d := ev[i].T - ev[i-1].T; d <= IdleGap {
			p.active += d
		}
	}
	return p, nil
}

// mouseUser is one user's model and recorded test sessions.
type mouseUser struct {
	id           string
	model        *models.UserModel
	legal, taken []*pointer
}

// RunMouse runs the mouse takeover evaluation. The protocol, fixed in code and repeated
// exactly by the seed:
//
//   - Every user's mouse model is fitted as 'vigil eval mouse' fits it (eval.FitMouseModels):
//     from all that user's training sessions, with the federation's population (deployable at
//     Privacy.Epsilon, or the plaintext simulation). No test session is used in any training.
//   - Genuine: each legal test session (is_illegal = 0) of a user, replayed through a real guard
//     with the user's model as the mouse scorer (behaviour.Scorer.SetMouseModel), every pointer
//     event at its recorded time; every challenge is passed at once, as the owner would.
//     Figures: challenges per hour of mouse use and per 1,000 mouse actions.
//   - Account takeovers: each illegal test session (another person on the user's account) is
//     replayed after the first P events of one of the owner's legal test sessions, drawn with
//     the seed (P uniform in MouseWindow..3*MouseWindow, below that session's length, moved on
//     to where no button is held), Handover after the owner's last event, moved to start where
//     the owner left the pointer. Cross-user takeovers: the same with a legal test session of
//     another user (Impostors other users per user); control: with another of the owner's own
//     legal test sessions, no takeover at all. Figures: the impostor's mouse actions and
//     seconds until the session is challenged (soft challenge or above), and the share never
//     challenged before the impostor's movement runs out.
//
// Context is constant and benign, so only mouse movement moves trust; no typing is replayed.
// Every session has a guard and a scorer of its own; the mouse model does not learn from passed
// challenges, so sessions do not influence each other.
func RunMouse(ctx context.Context, cfg MouseConfig) (*MouseResult, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	labels, err := mouse.BalabitLabels(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("takeover: %w", err)
	}
	testFiles, err := mouse.BalabitSessions(cfg.Dir, "test_files")
	if err != nil {
		return nil, fmt.Errorf("takeover: %w", err)
	}
	fit, err := eval.FitMouseModels(ctx, eval.MouseConfig{Dir: cfg.Dir, Seed: cfg.Seed, Workers: cfg.Workers,
		Model: cfg.Model, Fed: cfg.Fed, Privacy: cfg.Privacy, MaxRows: cfg.MaxRows, EnrolActions: cfg.EnrolActions, Progress: cfg.Progress})
	res := &MouseResult{Config: cfg}
	if fit != nil {
		res.Read, res.TrainActions, res.Private = fit.Read, fit.TrainActions, fit.Private
		res.Config.Fed, res.Config.Privacy, res.Config.MaxRows = fit.Config.Fed, fit.Config.Privacy, fit.Config.MaxRows
		res.LoadTime, res.FederationTime, res.TrainingTime = fit.LoadTime, fit.FederationTime, fit.TrainingTime
	}
	if err != nil {
		return res, fmt.Errorf("takeover: %w", err)
	}
	res.Users = len(fit.Users)

	start := time.Now()
	us := make([]mouseUser, len(fit.Users))
	index := map[string]int{}
	for i, u := range fit.Users {
		us[i] = mouseUser{id: u, model: fit.Models[i]}
		index[u] = i
	}
	type loaded struct {
		p   *pointer
		st  mouse.ReadStats
		bad bool
	}
	var files []mouse.Session
	for _, s := range testFiles {
		if _, ok := index[s.User]; !ok {
			continue
		}
		if _, ok := labels[s.Name]; !ok {
			res.Read.Drop(DropNoLabel, 1)
			continue
		}
		files = append(files, s)
	}
	ls := make([]loaded, len(files))
	err = forEach(ctx, len(files), cfg.Workers, cfg.progress("read test"), func(i int) error {
		ev, st, err := mouse.ReadBalabitFile(files[i].Path)
		if err != nil {
			return fmt.Errorf("takeover: %w", err)
		}
		ls[i].st = st
		if len(ev) < 2 {
			ls[i].bad = true
			return nil
		}
		ls[i].p, err = newPointer(files[i].User, files[i].Name, ev, &ls[i].st)
		return err
	})
	if err != nil {
		return res, err
	}
	for i, l := range ls {
		res.Read.Add(l.st)
		if l.bad {
			res.Read.Drop(DropNoEvents, 1)
			continue
		}
		u := &us[index[files[i].User]]
		if labels[files[i].Name] {
			u.taken = append(u.taken, l.p)
		} else {
			u.legal = append(u.legal, l.p)
		}
	}
	res.LoadTime += time.Since(start)
	res.Protocol = mouseProtocol(res.Config, fit.Protocol)

	start = time.Now()
	rp, err := newReplayer(cfg.Guard)
	if err != nil {
		return res, err
	}
	total := 0
	for _, u := range us {
		total += 2*len(u.legal) + len(u.taken) + min(cfg.impostors(len(us)), len(us)-1)
	}
	var mu sync.Mutex
	done := 0
	tick := func() {
		if cfg.Progress == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		done++
		cfg.Progress("replay", done, total)
	}
	outs := make([]mouseRuns, len(us))
	err = forEach(ctx, len(us), cfg.Workers, nil, func(i int) error {
		var err error
		outs[i], err = replayMouseUser(rp, us, i, &cfg, tick)
		return err
	})
	if err != nil {
		return res, err
	}
	res.ReplayTime = time.Since(start)
	for _, o := range outs {
		if o.noPrefix > 0 {
			res.Read.Drop(DropShortPrefix, o.noPrefix)
		}
		if o.noOther > 0 {
			res.Read.Drop(DropOtherNoGenuine, o.noOther)
		}
	}
	summariseMouse(res, us, outs)
	return res, nil
}

func (c *MouseConfig) impostors(users int) int {
	if c.Impostors == 0 {
		return users - 1
	}
	return c.Impostors
}

// mouseTakeover is one replayed takeover and whose movement took over.
type mouseTakeover struct {
	run   takeoverRun
	other *pointer
}

// mouseRuns are the sessions replayed for one user.
type mouseRuns struct {
	genuine                 []genuineRun
	account, cross, control []mouseTakeover
	noPrefix, noOther       int
}

// replayMouseUser replays user i's genuine sessions and the takeovers of their account, one
// session at a time: the user's model is not safe for concurrent use.
func replayMouseUser(rp *replayer, us []mouseUser, i int, cfg *MouseConfig, tick func()) (mouseRuns, error) {
	var out mouseRuns
	u := us[i]
	scorer := func() (*behaviour.Scorer, error) {
		sc, err := behaviour.NewScorer(nil)
		if err == nil {
			err = sc.SetMouseModel(u.model)
		}
		if err != nil {
			return nil, fmt.Errorf("takeover: %s: %w", u.id, err)
		}
		return sc, nil
	}
	for _, p := range u.legal {
		sc, err := scorer()
		if err != nil {
			return out, err
		}
		g, err := rp.genuine(u.id+"/"+p.name, sc, p)
		if err != nil {
			return out, err
		}
		out.genuine = append(out.genuine, g)
		tick()
	}
	// The owner's sessions a takeover can start from: longer than a window, so that the guard
	// has judged the owner before the impostor comes.
	w := cfg.Guard.MouseWindow
	var owners []*pointer
	for _, p := range u.legal {
		if p.len() > w+1 {
			owners = append(owners, p)
		}
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6d0e0000+uint64(i)))
	takeover := func(kind string, k int, other *pointer) (mouseTakeover, error) {
		own := owners[rng.IntN(len(owners))]
		for own == other {
			own = owners[rng.IntN(len(owners))]
		}
		prefix := own.released(min(w+rng.IntN(2*w+1), own.len()-1))
		sc, err := scorer()
		if err != nil {
			return mouseTakeover{}, err
		}
		last, first := own.ev[prefix-1], other.ev[0]
		id := fmt.Sprintf("%s/%s-%d/%s-then-%s/%s", u.id, kind, k+1, own.name, other.user, other.name)
		t, err := rp.takeover(id, sc, own, prefix, moved{other, last.X - first.X, last.Y - first.Y}, own.offset(prefix-1)+Handover)
		return mouseTakeover{run: t, other: other}, err
	}
	nCross := min(cfg.impostors(len(us)), len(us)-1)
	if len(owners) == 0 {
		out.noPrefix = 1
		for range len(u.legal) + len(u.taken) + nCross {
			tick()
		}
		return out, nil
	}
	for k, p := range u.taken {
		t, err := takeover("account", k, p)
		if err != nil {
			return out, err
		}
		out.account = append(out.account, t)
		tick()
	}
	for k, j := range impostors(rng, len(us), i, nCross) {
		tick()
		if len(us[j].legal) == 0 {
			out.noOther++
			continue
		}
		other := us[j].legal[rng.IntN(len(us[j].legal))]
		t, err := takeover("cross", k, other)
		if err != nil {
			return out, err
		}
		out.cross = append(out.cross, t)
	}
	for k, p := range u.legal {
		tick()
		if len(owners) == 1 && owners[0] == p {
			continue // no other session of the owner's to start from
		}
		t, err := takeover("control", k, p)
		if err != nil {
			return out, err
		}
		out.control = append(out.control, t)
	}
	return out, nil
}

// summariseMouse fills res's outcomes from the users' sessions.
func summariseMouse(res *MouseResult, us []mouseUser, outs []mouseRuns) {
	g := &res.Genuine
	for i, o := range outs {
		for k, r := range o.genuine {
			p := us[i].legal[k]
			g.Sessions++
			g.Events += r.events
			// A session terminated early counts only the actions and time replayed.
			g.Actions += p.actionsBy(r.events - 1)
			g.Hours += activeUntil(p, r.events-1).Hours()
			g.Challenges += r.stepUps
			g.Terminations += r.revoked
			if r.stepUps > 0 {
				g.SessionsChallenged++
			}
		}
	}
	if g.Hours > 0 {
		g.PerHour = float64(g.Challenges) / g.Hours
	}
	if g.Actions > 0 {
		g.Per1000 = 1000 * float64(g.Challenges) / float64(g.Actions)
	}
	var account, cross, control []mouseTakeover
	for _, o := range outs {
		account = append(account, o.account...)
		cross = append(cross, o.cross...)
		control = append(control, o.control...)
	}
	res.Account, res.CrossUser, res.Control = summariseTakeovers(account), summariseTakeovers(cross), summariseTakeovers(control)
}

// activeUntil is a session's mouse use up to event i.
func activeUntil(p *pointer, i int) time.Duration {
	if i == p.len()-1 {
		return p.active
	}
	var d time.Duration
	for k := 1; k <= i; k++ {
		if gap := p.ev[k].T - p.ev[k-1].T; gap <= IdleGap {
			d += gap
		}
	}
	return d
}

func summariseTakeovers(ts []mouseTakeover) MouseTakeovers {
	t := MouseTakeovers{Tiers: map[string]int{}}
	var missed []int
	for _, m := range ts {
		r := m.run
		t.PrefixChallenges += r.prefixStepUps
		if r.prefixRevoked {
			t.PrefixTerminated++
			continue
		}
		t.Sessions++
		t.ImpostorEvents += m.other.len()
		t.ImpostorActions += len(m.other.ends)
		t.ImpostorHours += m.other.active.Hours()
		if r.toChallenge == 0 {
			t.Missed++
			missed = append(missed, len(m.other.ends))
			continue
		}
		j := r.toChallenge - 1
		t.ToChallengeActions = append(t.ToChallengeActions, m.other.actionsBy(j))
		t.ToChallengeSeconds = append(t.ToChallengeSeconds, m.other.offset(j).Seconds())
		t.ToChallengeUseSeconds = append(t.ToChallengeUseSeconds, activeUntil(m.other, j).Seconds())
		t.Tiers[r.tier.String()]++
	}
	if t.Sessions > 0 {
		t.MissedShare = float64(t.Missed) / float64(t.Sessions)
	}
	slices.Sort(missed)
	t.MissedActions = rank(missed, len(missed), 0.5)
	slices.Sort(t.ToChallengeActions)
	slices.Sort(t.ToChallengeSeconds)
	slices.Sort(t.ToChallengeUseSeconds)
	t.Actions = quantiles(t.ToChallengeActions, t.Sessions)
	t.Seconds = quantiles(t.ToChallengeSeconds, t.Sessions)
	t.UseSeconds = quantiles(t.ToChallengeUseSeconds, t.Sessions)
	return t
}

func quantiles[T int | float64](detected []T, n int) Quantiles {
	return Quantiles{
		P25: rank(detected, n, 0.25), Median: rank(detected, n, 0.5), P75: rank(detected, n, 0.75), P90: rank(detected, n, 0.9),
		MedianDetected: rank(detected, len(detected), 0.5),
	}
}

func mouseProtocol(cfg MouseConfig, models string) string {
	cross := "every other user"
	if cfg.Impostors > 0 {
		cross = fmt.Sprintf("%d other users drawn with the seed", cfg.Impostors)
	}
	w := cfg.Guard.MouseWindow
	return fmt.Sprintf("%s No test session is used in any training. Sessions are replayed through a real guard (mouse "+
		"window %d events, hop %d, sessions start at %s trust) with the user's mouse model as its mouse scorer, every "+
		"pointer event at its recorded time, with constant, benign context and no typing (no data set has typing and mouse "+
		"of the same people), so only mouse movement moves trust. Genuine: each legal test session (is_illegal = 0) on "+
		"its own; every challenge is passed at once; hours of mouse use leave out pauses over %v. Account takeovers: "+
		"each illegal test session (is_illegal = 1: another person on the user's account) replayed after the first P "+
		"events of one of the owner's legal test sessions drawn with the seed (P uniform in %d..%d, below its length, "+
		"moved on to where no button is held), %v after the owner's last event and moved to start where the owner "+
		"left the pointer, until the session is challenged (soft challenge or above) or the impostor's movement runs "+
		"out (missed). "+
		"Cross-user takeovers: the same with a legal test session of %s in place of the illegal one. Control (no "+
		"takeover): the same with each of the owner's other legal test sessions in place of the illegal one, so that "+
		"its figures are what the owner's own movement gives by chance. Every session has its own guard; the mouse "+
		"model does not learn from passed challenges.",
		models, w, cfg.Guard.MouseHop, cfg.Start, IdleGap, w, 3*w, Handover, cross)
}
