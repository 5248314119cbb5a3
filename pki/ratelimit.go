package pki

import (
	"container/list"
	"fmt"
	"math"
	"sync"
	"time"
)

// LimiterConfig configures a Limiter.
type LimiterConfig struct {
	// Rate is the sustained calls per second allowed to one key. Required.
	Rate float64
	// Burst is how many calls one key may make at once after being idle; zero means
	// max(1, ceil(Rate)).
	Burst int
	// MaxKeys bounds the keys tracked; the least recently seen key is forgotten beyond it. Zero
	// means 100,000.
	MaxKeys int
}

func (c *LimiterConfig) validate() error {
	if math.IsNaN(c.Rate) || c.Rate <= 0 || c.Rate > 1e6 {
		return fmt.Errorf("pki: rate %v calls/s is not in (0, 1e6]", c.Rate)
	}
	if c.Burst == 0 {
		c.Burst = max(1, int(math.Ceil(c.Rate)))
	}
	if c.MaxKeys == 0 {
		c.MaxKeys = 100_000
	}
	if c.Burst < 1 || c.Burst > 1e6 || c.MaxKeys < 1 {
		return fmt.Errorf("pki: burst %d or max keys %d out of range", c.Burst, c.MaxKeys)
	}
	return nil
}

// Limiter is a token bucket per key (a device identity, or the address of a caller without a
// certificate). Memory is bounded: keys idle long enough for their bucket to refill are dropped,
// since a full bucket and a forgotten one behave the same, and beyond MaxKeys the least recently
// seen key is dropped. It is safe for concurrent use; time comes from the caller.
type Limiter struct {
	cfg     LimiterConfig
	refill  time.Duration // time for an empty bucket to fill
	mu      sync.Mutex
	buckets map[string]*list.Element // of *bucket
	lru     list.List                // front: most recently seen
}

type bucket struct {
	key    string
	tokens float64
	last   time.Time
}

// NewLimiter returns a Limiter.
func NewLimiter(cfg LimiterConfig) (*Limiter, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Limiter{
		cfg:     cfg,
		refill:  time.Duration(float64(cfg.Burst) / cfg.Rate * float64(time.Second)),
		buckets: map[string]*list.Element{},
	}, nil
}

// Allow spends one call of key's budget at now. If the budget is spent it returns false and how
// long until the next call would be allowed.
func (l *Limiter) Allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b *bucket
	if e, ok := l.buckets[key]; ok {
		b = e.Value.(*bucket)
		if dt := now.Sub(b.last); dt > 0 {
			b.tokens = min(float64(l.cfg.Burst), b.tokens+dt.Seconds()*l.cfg.Rate)
			b.last = now
		}
		l.lru.MoveToFront(e)
	} else {
		b = &bucket{key: key, tokens: float64(l.cfg.Burst), last: now}
		l.buckets[key] = l.lru.PushFront(b)
	}
	l.evict(now)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.cfg.Rate * float64(time.Second))
}

// evict drops keys beyond MaxKeys and, a few per call, keys idle long enough to be full again.
func (l *Limiter) evict(now time.Time) {
	for l.lru.Len() > l.cfg.MaxKeys {
		l.remove(l.lru.Back())
	}
	for range 2 {
		e := l.lru.Back()
		if e == nil || e == l.lru.Front() || now.Sub(e.Value.(*bucket).last) < l.refill {
			return
		}
		l.remove(e)
	}
}

func (l *Limiter) remove(e *list.Element) {
	delete(l.buckets, e.Value.(*bucket).key)
	l.lru.Remove(e)
}

// Len returns the number of keys tracked.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
