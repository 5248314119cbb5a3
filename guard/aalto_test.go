package guard

// A stand-in behavioural scorer built from real typing in the Aalto 136M Keystrokes data set
// (Dhakal et al., CHI 2018), for the scenario tests and benchmarks until the models package
// provides the real per-user autoencoders. It is deliberately simple and honest:
//
//   - a user's baseline is the mean and standard deviation of log hold times per key and of
//     log press-to-press latencies per key pair, from the first half of their keystrokes;
//   - a window's distance is the mean |z| of its keystrokes against that baseline (falling back
//     from a key pair to the user's overall latency when the pair is rare);
//   - distance becomes a calibrated anomaly by logistic regression fitted on other
//     participants (population calibration: genuine windows from their own second halves,
//     impostor windows from someone else's), so no test user's data tunes the calibration.

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// aaltoDir is ../shared/datasets relative to the repository root.
const aaltoDir = "../../shared/datasets/aalto-keystrokes"

// typed is one keystroke of the data set.
type typed struct {
	press, release int64 // ms since the epoch
	code           uint16
}

// loadAalto reads one participant's keystrokes in press order, skipping malformed rows.
func loadAalto(tb testing.TB, id string) []typed {
	tb.Helper()
	f, err := os.Open(filepath.Join(aaltoDir, id+"_keystrokes.txt.gz"))
	if os.IsNotExist(err) {
		tb.Skipf("Aalto keystroke data not found at %s: skipping the real-typing part", aaltoDir)
	}
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	var out []typed
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for first := true; sc.Scan(); first = false {
		if first {
			continue // header
		}
		// SENTENCE and USER_INPUT may hold stray tabs; the last four fields are reliable.
		f := strings.Split(sc.Text(), "\t")
		if len(f) < 9 {
			continue
		}
		n := len(f)
		press, err1 := strconv.ParseInt(f[n-4], 10, 64)
		release, err2 := strconv.ParseInt(f[n-3], 10, 64)
		code, err3 := strconv.ParseUint(f[n-1], 10, 16)
		if err1 != nil || err2 != nil || err3 != nil || code == 0 || release < press || release-press > MaxKeyHold.Milliseconds() {
			continue
		}
		out = append(out, typed{press, release, uint16(code)})
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].press < out[j].press })
	return out
}

// aaltoIDs lists participants with at least minKeys keystrokes, in file-name order.
func aaltoIDs(tb testing.TB) []string {
	tb.Helper()
	names, err := filepath.Glob(filepath.Join(aaltoDir, "*_keystrokes.txt.gz"))
	if err != nil || len(names) == 0 {
		tb.Skipf("Aalto keystroke data not found at %s: skipping the real-typing part", aaltoDir)
	}
	var ids []string
	for _, n := range names {
		ids = append(ids, strings.TrimSuffix(filepath.Base(n), "_keystrokes.txt.gz"))
	}
	sort.Strings(ids)
	return ids
}

// events turns keystrokes into guard events for session, shifted so the first press is at start.
func events(session string, ks []typed, start time.Time) []KeystrokeEvent {
	out := make([]KeystrokeEvent, len(ks))
	base := ks[0].press
	for i, k := range ks {
		p := start.Add(time.Duration(k.press-base) * time.Millisecond)
		out[i] = KeystrokeEvent{Session: session, Press: p, Release: p.Add(time.Duration(k.release-k.press) * time.Millisecond), Key: k.code}
	}
	return out
}

// stat is a running mean and variance of log milliseconds.
type stat struct{ n, sum, sumSq float64 }

func (s *stat) add(v float64) { s.n++; s.sum += v; s.sumSq += v * v }
func (s stat) mean() float64  { return s.sum / s.n }
func (s stat) sd() float64 {
	v := (s.sumSq - s.sum*s.sum/s.n) / math.Max(1, s.n-1)
	return math.Sqrt(math.Max(v, 0.01)) // floor: 10% spread in log space
}

const (
	minSamples = 4    // a key or pair needs this many baseline samples to be used on its own
	maxFlight  = 1500 // ms; longer gaps are pauses, not typing rhythm
)

// typingBaseline is one user's typing profile.
type typingBaseline struct {
	hold, flight       map[uint32]*stat // by key code; by pair (first<<16 | second)
	holdAll, flightAll stat
}

func logMs(d int64) float64 { return math.Log(math.Max(float64(d), 1)) }

func newBaseline(ks []typed) *typingBaseline {
	b := &typingBaseline{hold: map[uint32]*stat{}, flight: map[uint32]*stat{}}
	get := func(m map[uint32]*stat, k uint32) *stat {
		if m[k] == nil {
			m[k] = &stat{}
		}
		return m[k]
	}
	for i, k := range ks {
		if !typingKey(k.code) || i > 0 && !typingKey(ks[i-1].code) {
			continue
		}
		h := logMs(k.release - k.press)
		get(b.hold, uint32(k.code)).add(h)
		b.holdAll.add(h)
		if i > 0 && k.press-ks[i-1].press <= maxFlight {
			f := logMs(k.press - ks[i-1].press)
			get(b.flight, uint32(ks[i-1].code)<<16|uint32(k.code)).add(f)
			b.flightAll.add(f)
		}
	}
	return b
}

// zs returns the |z| of every timing in a window, and per feature the mean z, for explanations.
func (b *typingBaseline) distance(w []KeystrokeEvent) (float64, []Deviation) {
	type acc struct{ sum, n float64 }
	feats := map[string]*acc{}
	var total, n float64
	note := func(name string, z float64) {
		z = math.Max(-3, math.Min(3, z))
		total += math.Abs(z)
		n++
		if feats[name] == nil {
			feats[name] = &acc{}
		}
		feats[name].sum += z
		feats[name].n++
	}
	for i, ev := range w {
		if !typingKey(ev.Key) || i > 0 && !typingKey(w[i-1].Key) {
			continue
		}
		h := logMs(ev.Release.Sub(ev.Press).Milliseconds())
		if s := b.hold[uint32(ev.Key)]; s != nil && s.n >= minSamples {
			note("hold time of "+keyName(ev.Key), (h-s.mean())/s.sd())
		} else {
			note("hold time (all keys)", (h-b.holdAll.mean())/b.holdAll.sd())
		}
		if i == 0 {
			continue
		}
		gap := ev.Press.Sub(w[i-1].Press).Milliseconds()
		if gap > maxFlight {
			continue
		}
		f := logMs(gap)
		if s := b.flight[uint32(w[i-1].Key)<<16|uint32(ev.Key)]; s != nil && s.n >= minSamples {
			note("latency from "+keyName(w[i-1].Key)+" to "+keyName(ev.Key), (f-s.mean())/s.sd())
		} else {
			note("latency between keys (all pairs)", (f-b.flightAll.mean())/b.flightAll.sd())
		}
	}
	var devs []Deviation
	for name, a := range feats {
		if a.n >= 2 {
			devs = append(devs, Deviation{Feature: name, Z: a.sum / a.n})
		}
	}
	sort.Slice(devs, func(i, j int) bool {
		if math.Abs(devs[i].Z) != math.Abs(devs[j].Z) {
			return math.Abs(devs[i].Z) > math.Abs(devs[j].Z)
		}
		return devs[i].Feature < devs[j].Feature
	})
	if n == 0 {
		return 0, nil
	}
	return total / n, devs
}

// typingKey reports whether a key carries typing rhythm: letters, digits, space, comma and
// period. Navigation, editing and modifier keys reflect what is being edited, not who types.
func typingKey(code uint16) bool {
	return code >= 'A' && code <= 'Z' || code >= '0' && code <= '9' || code == 32 || code == 188 || code == 190
}

func keyName(code uint16) string {
	switch {
	case code >= 'A' && code <= 'Z':
		return strings.ToLower(string(rune(code)))
	case code >= '0' && code <= '9':
		return string(rune(code))
	}
	switch code {
	case 8:
		return "backspace"
	case 16:
		return "shift"
	case 32:
		return "space"
	case 188:
		return "comma"
	case 190:
		return "period"
	}
	return fmt.Sprintf("key %d", code)
}

// calibration maps a window distance to P(not the owner) at even odds: 1/(1+exp(-(a+b*d))).
type calibration struct{ a, b float64 }

func (c calibration) anomaly(d float64) float64 { return 1 / (1 + math.Exp(-(c.a + c.b*d))) }

// fitCalibration fits the logistic map by gradient descent on genuine and impostor distances,
// weighting the classes equally.
func fitCalibration(genuine, impostor []float64) calibration {
	var c calibration
	wg, wi := 0.5/float64(len(genuine)), 0.5/float64(len(impostor))
	for it := 0; it < 4000; it++ {
		var ga, gb float64
		for _, d := range genuine {
			p := c.anomaly(d)
			ga += wg * p
			gb += wg * p * d
		}
		for _, d := range impostor {
			p := c.anomaly(d)
			ga += wi * (p - 1)
			gb += wi * (p - 1) * d
		}
		c.a -= 2 * ga
		c.b -= 2 * gb
	}
	return c
}

// typingScorer is the stand-in BehaviourScorer: one user's baseline and the shared calibration.
type typingScorer struct {
	base     *typingBaseline
	cal      calibration
	feedback []Feedback
}

var _ BehaviourScorer = (*typingScorer)(nil)

func (s *typingScorer) ScoreKeystrokes(w []KeystrokeEvent) (BehaviourScore, error) {
	d, devs := s.base.distance(w)
	if len(devs) > MaxDeviations {
		devs = devs[:MaxDeviations]
	}
	return BehaviourScore{Anomaly: s.cal.anomaly(d), Deviations: devs}, nil
}

func (s *typingScorer) ScoreMouse([]MouseEvent) (BehaviourScore, error) {
	return BehaviourScore{}, ErrNotScored
}

func (s *typingScorer) Feedback(f Feedback) { s.feedback = append(s.feedback, f) }

// typingPopulation holds the calibration and the participants reserved for tests.
type typingPopulation struct {
	cal  calibration
	test []string // participants not used for calibration
}

var (
	populationOnce sync.Once
	population     typingPopulation
	populationSkip string
)

// Calibration participants: the first calibrationUsers IDs in sorted order; test users come after.
const (
	calibrationUsers = 40
	windowSize       = 50
	windowHop        = 25
)

// loadPopulation fits the calibration once per test binary.
func loadPopulation(tb testing.TB) typingPopulation {
	tb.Helper()
	if _, err := os.Stat(aaltoDir); err != nil {
		tb.Skipf("Aalto keystroke data not found at %s: skipping the real-typing part", aaltoDir)
	}
	populationOnce.Do(func() {
		ids := aaltoIDs(tb)
		var genuine, impostor []float64
		cal := ids[:calibrationUsers]
		for i, id := range cal {
			own := loadAalto(tb, id)
			other := loadAalto(tb, cal[(i+1)%len(cal)])
			half, otherHalf := len(own)/2, len(other)/2
			b := newBaseline(own[:half])
			genuine = append(genuine, windowDistances(b, own[half:])...)
			impostor = append(impostor, windowDistances(b, other[otherHalf:])...)
		}
		population = typingPopulation{cal: fitCalibration(genuine, impostor), test: ids[calibrationUsers:]}
	})
	return population
}

func windowDistances(b *typingBaseline, ks []typed) []float64 {
	evs := events("cal", ks, time.Unix(0, 0))
	var out []float64
	for end := windowSize; end <= len(evs); end += windowHop {
		d, _ := b.distance(evs[end-windowSize : end])
		out = append(out, d)
	}
	return out
}

// typist is a test participant: a scorer from the first half of their typing and the second
// half, unseen by the scorer, to replay.
type typist struct {
	id     string
	scorer *typingScorer
	unseen []typed
}

func newTypist(tb testing.TB, pop typingPopulation, id string) typist {
	ks := loadAalto(tb, id)
	half := len(ks) / 2
	return typist{id: id, scorer: &typingScorer{base: newBaseline(ks[:half]), cal: pop.cal}, unseen: ks[half:]}
}
