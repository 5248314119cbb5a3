package agent

import (
	"context"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/vigilauth/vigil/agent/attest"
	"github.com/vigilauth/vigil/audit"
	"github.com/vigilauth/vigil/guard"
	"github.com/vigilauth/vigil/guard/behaviour"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/siem"
)

// Agent is the device agent: the session guard behind the local API, with the users'
// enrolments and baselines persisted, and its decisions in a signed audit log. Its methods are
// the API's calls (it implements vigilv1.AgentServer); the gRPC and HTTP faces authenticate
// the caller and call them. Run owns the loops (audit log, saving, challenge deadlines).
type Agent struct {
	vigilv1.UnimplementedAgentServer

	cfg     Config
	g       *guard.Guard
	scorers *behaviour.Source
	queue   *guard.AuditQueue
	log     *audit.Log
	signer  *audit.MLDSA65Signer
	secret  string
	key     []byte
	layout  *models.Layout
	sites   map[string]*attest.Signer // Config.Sites by origin, with the device's key for each
	// siteLimits are the allowances each listed site's pages share, by origin; like sites,
	// fixed by New.
	siteLimits map[string]*siteLimits

	// mu guards the persisted state and the users' enrolment; smu the live sessions. Neither
	// is held while the state is written to disk (saveMu serialises the writers), so a slow
	// disk never delays the API.
	mu     sync.Mutex
	state  *State
	dirty  bool
	users  map[string]*userRT
	closed bool

	smu      sync.RWMutex
	sessions map[string]*session
	tokens   map[string]*session
	// dropped explains, by session ID, why a session open at the last shutdown was not
	// restored; filled by New only, so bounded by MaxSessions.
	dropped map[string]string

	saveMu sync.Mutex

	cores cores

	heads    chan chan headResult
	exported audit.Head    // the head last written to AuditHeadFile; Run's goroutine owns it
	opened   chan struct{} // a session started: Run's tick must run
	fitting  sync.WaitGroup
	done     chan struct{} // closed when the agent shuts down: watchers end

	// active is when the local API last saw a session start or end or events (Unix ns): the
	// device is idle (Idle) when it is long enough ago.
	active atomic.Int64
	// shadow carries normalised windows of sessions in good standing to the autoencoder
	// updater, while FollowReleases runs (shadowing).
	shadow    chan []float64
	shadowing atomic.Bool
	// saveNow asks Run's loop to write the changed state now (saveSoon).
	saveNow chan struct{}
}

// userRT is what the agent holds in memory for a user besides their persisted state.
type userRT struct {
	fitting, fittingMouse bool // under a.mu

	// What the API reports and checks on every batch, published from the state (publish) so
	// that the hot path reads it without a.mu, which a Save holds while it seals the state.
	enrolled, mouseEnrolled atomic.Bool
	windows                 atomic.Int32
	norm                    atomic.Pointer[models.Normaliser] // of the keystroke model, for shadow windows
}

// publish makes us's enrolment progress visible to the API. a.mu must be held.
func (rt *userRT) publish(us *UserState) {
	rt.enrolled.Store(us.Enrolled)
	rt.mouseEnrolled.Store(us.MouseEnrolled)
	rt.windows.Store(int32(len(us.Enrolment.Windows)))
}

// New opens (or creates) the agent in cfg.Dir: keys, state, audit log. Users enrolled in an
// earlier run get their model fitted again from the stored summaries and their baseline back,
// and the sessions open at the last save continue (restoreSessions).
func New(cfg Config) (*Agent, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	a := &Agent{cfg: cfg, scorers: behaviour.NewSource(), queue: guard.NewAuditQueue(0), layout: keystroke.NewLayout(),
		users: map[string]*userRT{}, sessions: map[string]*session{}, tokens: map[string]*session{}, dropped: map[string]string{}, heads: make(chan chan headResult), opened: make(chan struct{}, 1), done: make(chan struct{}),
		shadow: make(chan []float64, 16), saveNow: make(chan struct{}, 1)}
	a.touch(time.Now()) // a device just started is not idle yet
	// Looked at before anything is created: with an earlier start's state there, a key file
	// missing is lost, not to be made afresh.
	held, err := heldState(cfg.Dir)
	if err != nil {
		return nil, err
	}
	if a.secret, err = loadSecret(cfg.Dir); err != nil {
		return nil, err
	}
	if a.key, err = loadDeviceKey(cfg.Dir, held); err != nil {
		return nil, err
	}
	if a.sites, err = loadSites(a.key, cfg.Sites); err != nil {
		return nil, err
	}
	a.siteLimits = make(map[string]*siteLimits, len(a.sites))
	for o := range a.sites {
		now := time.Now()
		a.siteLimits[o] = &siteLimits{ask: newBucket(PageAuthorizePerSecond, PageAuthorizeBurst, now), start: newBucket(SiteStartsPerSecond, SiteStartBurst, now)}
	}
	if a.signer, err = loadAuditSigner(cfg.Dir, held); err != nil {
		return nil, err
	}
	if a.state, err = loadState(cfg.Dir, a.key); err != nil {
		return nil, err
	}
	if a.state.forgetOrder() {
		a.dirty = true // written without the order at the next save
	}
	gc := cfg.Guard
	gc.Scorers, gc.Recorder, gc.Clock = a.scorers, a.queue, cfg.Clock
	if cfg.Export != nil {
		gc.Recorder = siem.Tee(a.queue, cfg.Export)
	}
	if a.g, err = guard.New(gc, cfg.Policy); err != nil {
		return nil, err
	}
	if err := a.refitAll(); err != nil {
		return nil, err
	}
	for user, us := range a.state.Users {
		if us.Enrolled {
			a.setNormaliser(user, cfg.Global, us.Enrolment)
		}
		if us.Baseline != nil {
			if err := a.g.RestoreBaseline(*us.Baseline); err != nil {
				return nil, fmt.Errorf("agent: restoring %q: %w", user, err)
			}
		}
	}
	a.restoreSessions()
	// The log is written through a buffer and synced at checkpoints, so a crash can cut its
	// last record short; what it cut was never synced, let alone in a signed head.
	// The same holds for the file of exported heads, which a new head would otherwise extend
	// into a line that is not one.
	for _, name := range []string{AuditLogFile, AuditHeadsFile} {
		if cut, err := audit.CutTornTail(cfg.Dir + "/" + name); err != nil {
			return nil, err
		} else if cut > 0 {
			cfg.Logger.Warn("removed the end of a line a crash cut short", "file", name, "bytes", cut)
		}
	}
	if err := a.checkAuditLog(); err != nil {
		return nil, err
	}
	if a.log, err = audit.Open(cfg.Dir+"/"+AuditLogFile, audit.Config{Signer: a.signer}); err != nil {
		return nil, err
	}
	cfg.Logger.Info("agent ready", "dir", cfg.Dir, "users", len(a.state.Users), "sites", cfg.Sites)
	return a, nil
}

// refitAll fits every enrolled user's keystroke and mouse models again from their stored
// enrolments, on all cores: the agent serves no one until they are done, and on a shared host
// one after another took 60 ms a user (BenchmarkRestart8Users). Each fit is seeded by its user,
// so the order changes nothing.
func (a *Agent) refitAll() error {
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for user, us := range a.state.Users {
		if us.Enrolled {
			g.Go(func() error {
				m, err := a.fitOn(a.cfg.Global, us.Enrolment, us.Seed, us.Learnt)
				if err != nil {
					return fmt.Errorf("agent: refitting %q from the stored enrolment: %w", user, err)
				}
				return a.scorers.SetModel(user, m)
			})
		}
		if us.MouseEnrolled {
			g.Go(func() error {
				m, err := a.fitMouse(a.cfg.MouseGlobal, us.MouseEnrolment, userSeed(user))
				if err != nil {
					return fmt.Errorf("agent: refitting %q's mouse model from the stored enrolment: %w", user, err)
				}
				return a.scorers.SetMouseModel(user, m)
			})
		}
	}
	return g.Wait()
}

// Guard returns the agent's session guard, for in-process applications (Authorize costs no
// allocation there).
func (a *Agent) Guard() *guard.Guard { return a.g }

// Secret returns the install secret applications present.
func (a *Agent) Secret() string { return a.secret }

func (a *Agent) fit(e models.Enrolment, seed uint64) (*models.UserModel, error) {
	a.mu.Lock()
	g := a.cfg.Global
	a.mu.Unlock()
	return a.fitOn(g, e, seed, nil)
}

// fitOn fits a personal model on global g (nil: the device learns alone) and teaches it the
// windows verdicts taught the user's previous model.
func (a *Agent) fitOn(g *models.Global, e models.Enrolment, seed uint64, learnt []models.Window) (*models.UserModel, error) {
	l := a.layout
	if g != nil && g.Population != nil {
		l = nil // the population's layout
	}
	m, err := a.inBackground(func() (*models.UserModel, error) {
		return behaviour.FitKeystrokes(context.Background(), l, g, e, models.UserModelConfig{Train: models.TrainConfig{Seed: seed}})
	})
	if err != nil {
		return nil, err
	}
	for _, w := range learnt {
		if err := m.Feedback(w, true); err != nil {
			return nil, fmt.Errorf("agent: replaying a learnt window: %w", err)
		}
	}
	return m, nil
}

// learn records that a verdict taught the model a session's windows, so a refit replays them.
func (a *Agent) learn(s *session) {
	w := s.takeWindows()
	if len(w) == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	us, _ := a.userState(s.user)
	if !us.Enrolled {
		return
	}
	us.Learnt = append(us.Learnt, w...)
	if n := len(us.Learnt); n > MaxLearntWindows {
		us.Learnt = slices.Delete(us.Learnt, 0, n-MaxLearntWindows)
	}
	a.dirty = true
}

// Learnt returns how many windows verdicts have taught user's model and the agent keeps.
func (a *Agent) Learnt(user string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if us := a.state.Users[user]; us != nil {
		return len(us.Learnt)
	}
	return 0
}

// userState returns user's persisted state, creating it. a.mu must be held.
func (a *Agent) userState(user string) (*UserState, *userRT) {
	us := a.state.Users[user]
	if us == nil {
		us = &UserState{}
		a.state.Users[user] = us
	}
	rt := a.users[user]
	if rt == nil {
		rt = &userRT{}
		rt.publish(us)
		a.users[user] = rt
	}
	return us, rt
}

func (a *Agent) windowSize() int {
	if a.cfg.Guard.KeystrokeWindow > 0 {
		return a.cfg.Guard.KeystrokeWindow
	}
	return guard.DefaultConfig().KeystrokeWindow
}

// enrolKeystrokes feeds accepted keystrokes of session s, in good standing, to its user's
// enrolment (each session cuts its own windows, so none spans two sessions), and fits the
// user's model once it has enough windows. s.mu and a.mu must be held, in that order.
func (a *Agent) enrolKeystrokes(s *session, evs []guard.KeystrokeEvent) {
	user := s.user
	us, rt := a.userState(user)
	if us.Enrolled || rt.fitting {
		return
	}
	for _, ev := range evs {
		s.enr.push(ev, &us.Enrolment)
	}
	a.dirty = true
	if len(us.Enrolment.Windows) < a.cfg.EnrolWindows {
		rt.publish(us)
		return
	}
	us.Enrolment.Windows = us.Enrolment.Windows[:a.cfg.EnrolWindows]
	rt.publish(us)
	rt.fitting = true
	s.enr.reset()
	seed := userSeed(user)
	enrol := models.Enrolment{Windows: slices.Clone(us.Enrolment.Windows), Summaries: slices.Clone(us.Enrolment.Summaries)}
	a.fitting.Add(1)
	go func() {
		defer a.fitting.Done()
		start := time.Now()
		m, err := a.fit(enrol, seed)
		a.mu.Lock()
		rt.fitting = false
		if err == nil {
			err = a.scorers.SetModel(user, m)
		}
		if err != nil {
			us.Enrolment = models.Enrolment{}
			rt.publish(us)
			a.mu.Unlock()
			a.cfg.Logger.Warn("enrolment failed; collecting more typing", "user", user, "err", err)
			return
		}
		us.Enrolled, us.Seed = true, seed
		rt.publish(us)
		g := a.cfg.Global
		a.mu.Unlock()
		a.setNormaliser(user, g, enrol)
		a.cfg.Logger.Info("user enrolled", "user", user, "windows", len(enrol.Windows), "summaries", len(enrol.Summaries), "fit", time.Since(start).Round(time.Millisecond))
		if err := a.Save(); err != nil {
			a.cfg.Logger.Error("saving state", "err", err)
		}
	}()
}

// Save writes the state now, with every user's current guard baseline and the open sessions'
// standing. The state is sealed under mu and written outside it.
func (a *Agent) Save() error {
	a.saveMu.Lock()
	defer a.saveMu.Unlock()
	open := a.saveSessions() // before mu: it takes the sessions' locks
	a.mu.Lock()
	for user, us := range a.state.Users {
		if b, ok := a.g.Baseline(user); ok {
			us.Baseline = &b
		}
	}
	// A session that ended since saveSessions is in its user's history, not open.
	a.smu.RLock()
	a.state.Sessions = slices.DeleteFunc(open, func(ss SavedSession) bool { return a.sessions[ss.Standing.ID] == nil })
	a.smu.RUnlock()
	a.state.SavedAt = a.cfg.Clock()
	data, err := sealState(a.key, a.state)
	a.state.Sessions = nil // live in a.sessions until the next save
	a.dirty = false
	a.mu.Unlock()
	if err != nil {
		return err
	}
	return writeState(a.cfg.Dir, data)
}

// saveSoon asks Run's loop to write the changed state now, without waiting for it.
func (a *Agent) saveSoon() {
	select {
	case a.saveNow <- struct{}{}:
	default: // a save is already due
	}
}

// saveIfDirty writes the state if it changed since the last write, or if sessions are open
// (their standing changes without marking the state dirty).
func (a *Agent) saveIfDirty() error {
	a.mu.Lock()
	dirty := a.dirty
	a.mu.Unlock()
	a.smu.RLock()
	live := len(a.sessions)
	a.smu.RUnlock()
	if !dirty && live == 0 {
		return nil
	}
	return a.Save()
}

// WaitEnrolments waits until no model is being fitted.
func (a *Agent) WaitEnrolments() { a.fitting.Wait() }

// History returns a copy of user's trust history, newest last.
func (a *Agent) History(user string) []SessionSummary {
	a.mu.Lock()
	defer a.mu.Unlock()
	if us := a.state.Users[user]; us != nil {
		return slices.Clone(us.History)
	}
	return nil
}

// Enrolled reports whether user has a fitted model.
func (a *Agent) Enrolled(user string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	us := a.state.Users[user]
	return us != nil && us.Enrolled
}

// userSeed fixes the training seed of a user's model, so a model fitted on the same
// enrolment is the same model, on this device or in a test replaying the same typing.
func userSeed(user string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(user))
	return h.Sum64()
}

func newToken() (string, error) {
	b, err := randomBytes(secretBytes)
	return hex.EncodeToString(b), err
}
