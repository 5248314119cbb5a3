package mouse

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/vigilauth/vigil/models"
)

// The synthetic screen, in pixels.
const screenW, screenH = 1920, 1080

// Mover is a synthetic mouse user with a hand of their own, for simulated devices without
// recorded data. Each action aims at a target: its movement time follows Fitts' law,
// a + b log2(D/W+1), stretched per direction; the speed profile is minimum-jerk, warped so that
// the peak comes early or late; the path bows to one side; the first sub-movement under- or
// overshoots and corrections follow; the pointer rests before a click. All of it, the sampling
// interval, the hand's jitter and the share of moves, clicks and drags, is drawn once from the
// seed. Different seeds move measurably differently; the same seed always moves the same way.
// A Mover is not safe for concurrent use.
type Mover struct {
	rng   *rand.Rand
	clock time.Duration
	x, y  float64

	fittsA, fittsB      float64             // ms, ms per bit
	timeSigma           float64             // log-normal spread of movement times
	dirTime             [numSectors]float64 // movement time factor per compass sector
	distMu, distSigma   float64             // log px
	width               float64             // px, the typical target
	warp                float64             // exponent placing the speed peak
	bow, bowSigma       float64             // lateral deviation, as a share of distance
	reach, reachSigma   float64             // primary sub-movement amplitude, as a share of distance
	dwell               float64             // ms between sub-movements
	jitter              float64             // px
	sample              int                 // ms between pointer reports
	stopMu, stopSigma   float64             // log ms, rest before pressing
	clickMu, clickSigma float64             // log ms, button held for a click
	thinkMu             float64             // log ms between actions
	pMove, pDrag        float64             // shares of plain moves and drags; the rest are clicks
}

// NewMover returns the synthetic mouse user identified by seed.
func NewMover(seed uint64) *Mover {
	r := rand.New(rand.NewPCG(seed, 0x30053))
	u := func(lo, hi float64) float64 { return lo + (hi-lo)*r.Float64() }
	m := &Mover{
		fittsA:     u(40, 220),
		fittsB:     u(70, 220),
		timeSigma:  u(0.08, 0.25),
		distMu:     math.Log(u(120, 450)),
		distSigma:  u(0.4, 0.8),
		width:      u(16, 48),
		warp:       math.Log(0.5) / math.Log(u(0.32, 0.52)),
		bow:        u(0.03, 0.2) * float64(1-2*r.IntN(2)),
		bowSigma:   u(0.02, 0.08),
		reach:      u(0.88, 1.06),
		reachSigma: u(0.02, 0.08),
		dwell:      u(20, 120),
		jitter:     u(0.3, 2),
		sample:     8 + r.IntN(9),
		stopMu:     math.Log(u(15, 220)),
		stopSigma:  u(0.2, 0.6),
		clickMu:    math.Log(u(60, 170)),
		clickSigma: u(0.1, 0.35),
		thinkMu:    math.Log(u(250, 1200)),
		pMove:      u(0.15, 0.45),
		pDrag:      u(0.04, 0.2),
	}
	for i := range m.dirTime {
		m.dirTime[i] = math.Exp(0.12 * r.NormFloat64())
	}
	m.x, m.y = u(200, screenW-200), u(200, screenH-200)
	m.rng = rand.New(rand.NewPCG(r.Uint64(), r.Uint64()))
	return m
}

// Move returns the pointer events of the user's next n actions, in time order; successive calls
// continue the same session clock and pointer position. A move ends with the pointer still for
// longer than SegmentConfig's default pause, so that Segment cuts it off.
func (m *Mover) Move(n int) []Event {
	var evs []Event
	for i := 0; i < n; i++ {
		p := m.rng.Float64()
		switch {
		case p < m.pMove:
			evs = m.aim(evs, Move)
			m.wait(2200 + 3000*m.rng.Float64())
		case p < m.pMove+m.pDrag:
			m.wait(m.logNormal(m.stopMu, m.stopSigma, 1500))
			evs = m.event(evs, Left, Pressed)
			m.wait(m.logNormal(m.clickMu, m.clickSigma, 1000))
			evs = m.aim(evs, Drag)
			m.wait(m.logNormal(m.stopMu, m.stopSigma, 1500))
			evs = m.event(evs, Left, Released)
			m.wait(m.logNormal(m.thinkMu, 0.5, 1800))
		default:
			evs = m.aim(evs, Move)
			m.wait(m.logNormal(m.stopMu, m.stopSigma, 1500))
			evs = m.event(evs, Left, Pressed)
			m.wait(m.logNormal(m.clickMu, m.clickSigma, 1000))
			evs = m.event(evs, Left, Released)
			m.wait(m.logNormal(m.thinkMu, 0.5, 5000))
		}
	}
	return evs
}

// Windows returns the models' view of the user's next n actions that have features: the events
// cut into actions, each action's features and window, as the agent's mouse enroller makes them.
func (m *Mover) Windows(n int) []models.Window {
	out := make([]models.Window, 0, n)
	var ex Extractor
	var actions []Action
	f := make([]float64, NumFeatures)
	for pass := 0; len(out) < n && pass < 100; pass++ {
		var err error
		actions, _, err = AppendSegments(actions[:0], m.Move(n-len(out)), SegmentConfig{})
		if err != nil {
			panic(err) // the default configuration is valid
		}
		for _, a := range actions {
			if len(out) == n || ex.Extract(f, a) != nil {
				continue
			}
			var w models.Window
			Window(&w, a.Type, f)
			out = append(out, w)
		}
	}
	return out
}

// aim moves the pointer to a new target: a primary sub-movement, then corrections until the
// pointer is on the target. Events carry state st (Move, or Drag with the button held).
func (m *Mover) aim(evs []Event, st State) []Event {
	d := min(math.Exp(m.distMu+m.distSigma*m.rng.NormFloat64()), 1200)
	d = max(d, 30)
	w := m.width * math.Exp(0.3*m.rng.NormFloat64())
	var tx, ty float64
	for try := 0; ; try++ {
		th := 2 * math.Pi * m.rng.Float64()
		tx, ty = m.x+d*math.Cos(th), m.y+d*math.Sin(th)
		if tx >= 0 && tx < screenW && ty >= 0 && ty < screenH {
			break
		}
		if try == 8 { // towards the middle of the screen
			dx, dy := screenW/2-m.x, screenH/2-m.y
			k := min(d/math.Hypot(dx, dy), 1)
			tx, ty = m.x+k*dx, m.y+k*dy
			break
		}
	}
	amp := m.reach + m.reachSigma*m.rng.NormFloat64()
	bow := m.bow + m.bowSigma*m.rng.NormFloat64()
	evs = m.stroke(evs, tx, ty, amp, bow, w, 1, st)
	for k := 0; k < 3 && math.Hypot(tx-m.x, ty-m.y) > w/2; k++ {
		m.wait(m.dwell * math.Exp(0.3*m.rng.NormFloat64()))
		evs = m.stroke(evs, tx, ty, 1+0.3*m.reachSigma*m.rng.NormFloat64(), 0.3*bow, w, 0.6, st)
	}
	return evs
}

// stroke is one sub-movement from the pointer towards (tx, ty), covering amp of the distance,
// bowing sideways by bow of it, timed by Fitts' law for a target of width w scaled by share.
func (m *Mover) stroke(evs []Event, tx, ty, amp, bow, w, share float64, st State) []Event {
	x0, y0 := m.x, m.y
	dx, dy := (tx-x0)*amp, (ty-y0)*amp
	d := math.Hypot(dx, dy)
	if d < 1 {
		return evs
	}
	sector := int(math.Mod(math.Atan2(dy, dx)+2*math.Pi, 2*math.Pi)/(math.Pi/4)+0.5) % numSectors
	ms := share * (m.fittsA + m.fittsB*math.Log2(d/w+1)) * m.dirTime[sector] * math.Exp(m.timeSigma*m.rng.NormFloat64())
	ms = math.Round(max(ms, float64(3*m.sample)))
	start := m.clock
	lastX, lastY := math.Round(x0), math.Round(y0)
	var ex, ey float64 // the hand's tremor: slow, correlated noise
	for t := 0.0; t < ms; {
		t = min(t+float64(m.sample)+float64(m.rng.IntN(3)-1), ms)
		tau := math.Pow(t/ms, m.warp)
		s := tau * tau * tau * (10 - 15*tau + 6*tau*tau) // minimum jerk
		side := bow * d * math.Sin(math.Pi*s)
		ex = 0.85*ex + 0.53*m.jitter*m.rng.NormFloat64()
		ey = 0.85*ey + 0.53*m.jitter*m.rng.NormFloat64()
		x := x0 + s*dx - side*dy/d + ex
		y := y0 + s*dy + side*dx/d + ey
		x, y = math.Round(math.Max(0, math.Min(x, screenW-1))), math.Round(math.Max(0, math.Min(y, screenH-1)))
		m.clock = start + time.Duration(t)*time.Millisecond
		if x == lastX && y == lastY {
			continue // a still pointer reports nothing
		}
		lastX, lastY = x, y
		evs = append(evs, Event{T: m.clock, Button: NoButton, State: st, X: x, Y: y})
	}
	m.x, m.y = lastX, lastY
	return evs
}

// event appends a button event at the pointer, a millisecond after the last.
func (m *Mover) event(evs []Event, b Button, st State) []Event {
	m.clock += time.Millisecond
	return append(evs, Event{T: m.clock, Button: b, State: st, X: m.x, Y: m.y})
}

// wait lets ms milliseconds pass, to whole milliseconds.
func (m *Mover) wait(ms float64) {
	m.clock += time.Duration(math.Round(ms)) * time.Millisecond
}

// logNormal draws exp(mu + sigma N), capped at top.
func (m *Mover) logNormal(mu, sigma, top float64) float64 {
	return min(math.Exp(mu+sigma*m.rng.NormFloat64()), top)
}
