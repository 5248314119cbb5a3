package keystroke

import (
	"math"
	"math/rand/v2"
	"time"
)

// Typist is a synthetic user with a rhythm of their own: log-normal hold times and key-to-key
// intervals whose centres, spreads, per-key and per-digraph offsets, error rate and pauses are
// drawn once from the typist's seed. Different seeds type measurably differently; the same seed
// always types the same way.
type Typist struct {
	rng               *rand.Rand
	holdMu, holdSigma float64
	ddMu, ddSigma     float64
	keyOffset         [128]float64
	digraphSeed       uint64
	digraphSpread     float64
	backspaceRate     float64
	pauseRate         float64
	capitalRate       float64
	clock             time.Duration
}

// NewTypist returns the synthetic typist identified by seed.
func NewTypist(seed uint64) *Typist {
	r := rand.New(rand.NewPCG(seed, 0x7e57))
	t := &Typist{
		holdMu:        math.Log(70+70*r.Float64()) + 0.0*r.NormFloat64(),
		holdSigma:     0.15 + 0.15*r.Float64(),
		ddMu:          math.Log(130 + 170*r.Float64()),
		ddSigma:       0.25 + 0.25*r.Float64(),
		digraphSeed:   r.Uint64(),
		digraphSpread: 0.1 + 0.25*r.Float64(),
		backspaceRate: 0.01 + 0.06*r.Float64(),
		pauseRate:     0.005 + 0.03*r.Float64(),
		capitalRate:   0.02 + 0.08*r.Float64(),
	}
	for i := range t.keyOffset {
		t.keyOffset[i] = 0.12 * r.NormFloat64()
	}
	t.rng = rand.New(rand.NewPCG(r.Uint64(), r.Uint64()))
	return t
}

var words = []string{
	"the", "of", "and", "to", "in", "is", "you", "that", "it", "he", "was", "for", "on", "are", "as",
	"with", "his", "they", "at", "be", "this", "have", "from", "or", "one", "had", "by", "word", "but",
	"not", "what", "all", "were", "we", "when", "your", "can", "said", "there", "use", "each", "which",
	"she", "do", "how", "their", "if", "will", "up", "other", "about", "out", "many", "then", "them",
	"these", "so", "some", "her", "would", "make", "like", "him", "into", "time", "has", "look", "two",
	"more", "write", "go", "see", "number", "no", "way", "could", "people", "my", "than", "first",
	"water", "been", "call", "who", "oil", "its", "now", "find", "long", "down", "day", "did", "get",
	"come", "made", "may", "part", "over", "new", "sound", "take", "only", "little", "work", "know",
	"place", "year", "live", "me", "back", "give", "most", "very", "after", "thing", "our", "just",
	"name", "good", "sentence", "man", "think", "say", "great", "where", "help", "through", "much",
}

// Type returns the next n keystrokes of the typist's stream; successive calls continue the
// same session clock.
func (t *Typist) Type(n int) []Keystroke {
	ks := make([]Keystroke, 0, n)
	prev := CodeSpace
	for len(ks) < n {
		w := words[t.rng.IntN(len(words))]
		if t.rng.Float64() < t.capitalRate {
			ks = t.press(ks, prev, CodeShift)
			prev = CodeShift
		}
		for i := 0; i < len(w) && len(ks) < n; i++ {
			code := int(w[i]-'a') + 'A'
			ks = t.press(ks, prev, code)
			prev = code
			if t.rng.Float64() < t.backspaceRate && len(ks) < n {
				ks = t.press(ks, prev, CodeBackspace)
				ks = t.press(ks, CodeBackspace, code)
			}
		}
		if len(ks) < n {
			ks = t.press(ks, prev, CodeSpace)
			prev = CodeSpace
		}
	}
	return ks[:n]
}

func (t *Typist) press(ks []Keystroke, prev, code int) []Keystroke {
	dd := math.Exp(t.ddMu + t.digraphOffset(prev, code) + t.ddSigma*t.rng.NormFloat64())
	if t.rng.Float64() < t.pauseRate {
		dd += 500 + 3000*t.rng.Float64()
	}
	hold := math.Exp(t.holdMu + t.keyOffset[code&127] + t.holdSigma*t.rng.NormFloat64())
	t.clock += time.Duration(dd * float64(time.Millisecond))
	// Whole milliseconds, as browsers and most operating systems report key events.
	press := t.clock.Round(time.Millisecond)
	release := press + time.Duration(hold*float64(time.Millisecond)).Round(time.Millisecond)
	return append(ks, Keystroke{Code: code, Press: press, Release: release})
}

// digraphOffset is a fixed pseudo-random offset per (typist, key pair): some finger transitions
// are faster than others, differently for every typist.
func (t *Typist) digraphOffset(a, b int) float64 {
	h := t.digraphSeed ^ uint64(a)*0x9e3779b97f4a7c15 ^ uint64(b)*0xc2b2ae3d27d4eb4f
	h ^= h >> 29
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 32
	u := float64(h>>11) / (1 << 53)
	return t.digraphSpread * (2*u - 1)
}
