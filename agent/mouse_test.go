package agent_test

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vigilauth/vigil/agent"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
	"github.com/vigilauth/vigil/models/modelstest"
	"github.com/vigilauth/vigil/models/mouse"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// mouser is a synthetic pointer user: movements between random targets at their own speed,
// with their own bow and pause before each click.
type mouser struct {
	rng               *rand.Rand
	speed, bow, dwell float64
	x, y              float64
}

func newMouser(seed uint64) *mouser {
	r := rand.New(rand.NewPCG(seed, 0x30))
	return &mouser{rng: r, speed: 300 + 900*r.Float64(), bow: 0.3 * (r.Float64() - 0.5), dwell: 0.05 + 0.3*r.Float64(), x: 500, y: 400}
}

// moves returns n point-and-clicks as pointer samples from start (moves every 16 ms), and the
// time after them.
func (m *mouser) moves(n int, start time.Time) ([]*vigilv1.PointerSample, time.Time) {
	var out []*vigilv1.PointerSample
	at := start
	ms := func(t time.Time) float64 { return float64(t.UnixNano()) / 1e6 }
	for range n {
		tx, ty := 100+1000*m.rng.Float64(), 100+700*m.rng.Float64()
		dist := math.Hypot(tx-m.x, ty-m.y)
		steps := max(8, int(dist/m.speed/0.016))
		for i := 1; i <= steps; i++ {
			f := float64(i) / float64(steps)
			ease := f * f * (3 - 2*f)
			bow := m.bow * dist * math.Sin(math.Pi*f)
			px := m.x + (tx-m.x)*ease - bow*(ty-m.y)/dist
			py := m.y + (ty-m.y)*ease + bow*(tx-m.x)/dist
			at = at.Add(16 * time.Millisecond)
			out = append(out, &vigilv1.PointerSample{AtMs: ms(at), X: int32(px), Y: int32(py), Button: "none", Action: "move"})
		}
		at = at.Add(time.Duration(m.dwell * float64(time.Second) * (0.8 + 0.4*m.rng.Float64())))
		out = append(out, &vigilv1.PointerSample{AtMs: ms(at), X: int32(tx), Y: int32(ty), Button: "left", Action: "press"})
		at = at.Add(time.Duration(60+40*m.rng.Float64()) * time.Millisecond)
		out = append(out, &vigilv1.PointerSample{AtMs: ms(at), X: int32(tx), Y: int32(ty), Button: "left", Action: "release"})
		m.x, m.y = tx, ty
	}
	return out, at.Add(time.Second)
}

// sendPointer sends samples in batches of 200 and returns the last status.
func sendPointer(tb testing.TB, c vigilv1.AgentClient, ctx context.Context, session string, ps []*vigilv1.PointerSample) *vigilv1.SessionStatus {
	tb.Helper()
	var st *vigilv1.SessionStatus
	for i := 0; i < len(ps); i += 200 {
		r, err := c.SendEvents(ctx, &vigilv1.SendEventsRequest{Session: session, Pointer: ps[i:min(i+200, len(ps))]})
		if err != nil {
			tb.Fatal(err)
		}
		st = r.Status
		if st.Revoked {
			return st // the guard terminated the session: no more events
		}
		if r.Rejected > 0 {
			tb.Fatalf("%d events rejected: %s", r.Rejected, r.RejectedReason)
		}
	}
	return st
}

// enrolMia starts an agent with cfg and sends 80 point-and-clicks of user mia's (newMouser(1))
// in a session in good standing, waiting for the enrolment they make; it returns the agent,
// mia's mouse and the time after her movement.
func enrolMia(t *testing.T, cfg agent.Config) (*running, *mouser, time.Time) {
	t.Helper()
	r := startAgentConfig(t, cfg, "", false)
	ctx := as(context.Background(), r.secret)
	owner := newMouser(1)
	if _, err := r.grpc.StartSession(ctx, &vigilv1.StartSessionRequest{Session: "enrol", User: "mia"}); err != nil {
		t.Fatal(err)
	}
	ps, next := owner.moves(80, time.Now())
	sendPointer(t, r.grpc, ctx, "enrol", ps)
	r.a.WaitEnrolments()
	return r, owner, next
}

// A user's pointer movement enrols their mouse model on the device: the actions' features are
// stored (no positions), the model is fitted again from them after a restart, and the guard
// then scores mouse windows with it: the owner's movement keeps the session trusted, another
// person's on the same account lowers trust.
func TestMouseEnrolment(t *testing.T) {
	cfg := agent.Config{Dir: t.TempDir(), MouseEnrolActions: 60}
	r, owner, next := enrolMia(t, cfg)
	if !r.a.MouseEnrolled("mia") {
		t.Fatal("80 point-and-clicks in good standing did not enrol a mouse model (60 actions)")
	}
	if r.a.Enrolled("mia") {
		t.Fatal("pointer movement enrolled a keystroke model")
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}

	r = startAgentConfig(t, cfg, "", false)
	ctx := as(context.Background(), r.secret)
	if !r.a.MouseEnrolled("mia") {
		t.Fatal("the mouse enrolment did not survive a restart")
	}
	trust := func(session string, u *mouser, start time.Time) float64 {
		if _, err := r.grpc.StartSession(ctx, &vigilv1.StartSessionRequest{Session: session, User: "mia"}); err != nil {
			t.Fatal(err)
		}
		ps, _ := u.moves(40, start)
		return sendPointer(t, r.grpc, ctx, session, ps).Trust
	}
	own := trust("own", owner, next)
	other := trust("other", newMouser(2), next)
	t.Logf("after 40 point-and-clicks: owner's trust %.1f, another person's %.1f", own, other)
	if !(other < own-10) {
		t.Fatalf("the mouse model does not tell the owner (trust %.1f) from another person (%.1f)", own, other)
	}
}

// The federation's mouse population reaches users' mouse models: the agent offers the
// population rounds its users' mouse windows (features, one per action), and a mouse
// population installed refits every mouse model on it, which still tells the owner from
// someone else; a typing population is refused as a mouse one.
func TestMousePopulationInstalled(t *testing.T) {
	r, owner, next := enrolMia(t, agent.Config{Dir: t.TempDir(), MouseEnrolActions: 60})
	ctx := as(context.Background(), r.secret)
	if got := len(r.a.WindowsOf(mouse.FeatureSet)); got != 60 {
		t.Fatalf("%d mouse windows offered to the rounds, want the 60 enrolled", got)
	}
	if got := len(r.a.WindowsOf(keystroke.TimingFeatureSet)); got != 0 {
		t.Fatalf("%d typing windows offered for a user who has not typed", got)
	}
	var seeds []uint64
	for u := range uint64(30) {
		seeds = append(seeds, 500+u)
	}
	pop, _ := modelstest.MousePopulation(t, models.PopulationStatsConfig{Clip: 100}, modelstest.MouseUsers(100, seeds...))
	if err := r.a.SetMouseGlobal(context.Background(), &models.Global{Population: pop}); err != nil {
		t.Fatal(err)
	}
	typing, err := models.DecodePopulation(keystroke.NewLayout(), models.EncodePopulation(&models.Population{Layout: keystroke.NewLayout(),
		Mean: nanSlice(keystroke.NewLayout().NumBuckets()), Within: make([]float64, keystroke.NewLayout().NumBuckets()),
		Between: make([]float64, keystroke.NewLayout().NumBuckets()), Freq: make([]float64, keystroke.NewLayout().NumBuckets())}))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.a.SetMouseGlobal(context.Background(), &models.Global{Population: typing}); err == nil {
		t.Fatal("a typing population installed as the mouse one")
	}
	trust := func(session string, u *mouser) float64 {
		if _, err := r.grpc.StartSession(ctx, &vigilv1.StartSessionRequest{Session: session, User: "mia"}); err != nil {
			t.Fatal(err)
		}
		ps, _ := u.moves(40, next)
		return sendPointer(t, r.grpc, ctx, session, ps).Trust
	}
	own, other := trust("own", owner), trust("other", newMouser(2))
	t.Logf("on the federation's mouse population, after 40 point-and-clicks: owner's trust %.1f, another person's %.1f", own, other)
	if !(other < own-10) {
		t.Fatalf("the refitted mouse model does not tell the owner (trust %.1f) from another person (%.1f)", own, other)
	}
}

func nanSlice(n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = math.NaN()
	}
	return s
}
