package pki

import (
	"fmt"
	"testing"
	"time"
)

func TestLimiterTokenBucket(t *testing.T) {
	l, err := NewLimiter(LimiterConfig{Rate: 2, Burst: 4})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1000, 0)
	for i := range 4 {
		if ok, _ := l.Allow("a", t0); !ok {
			t.Fatalf("call %d of the burst refused", i)
		}
	}
	ok, retry := l.Allow("a", t0)
	if ok || retry != 500*time.Millisecond {
		t.Fatalf("fifth call: ok=%v retry=%v; want refused, retry 500ms", ok, retry)
	}
	if ok, _ := l.Allow("a", t0.Add(499*time.Millisecond)); ok {
		t.Fatal("allowed before a token refilled")
	}
	if ok, _ := l.Allow("a", t0.Add(500*time.Millisecond)); !ok {
		t.Fatal("refused after a token refilled")
	}
	// Time going backwards refills nothing and breaks nothing.
	if ok, _ := l.Allow("a", t0.Add(-time.Hour)); ok {
		t.Fatal("a clock step back refilled the bucket")
	}
	// A long pause refills to the burst, not beyond.
	later := t0.Add(time.Hour)
	for i := range 4 {
		if ok, _ := l.Allow("a", later); !ok {
			t.Fatalf("after a pause, call %d refused", i)
		}
	}
	if ok, _ := l.Allow("a", later); ok {
		t.Fatal("refilled beyond the burst")
	}
}

func TestLimiterMemoryIsBounded(t *testing.T) {
	l, _ := NewLimiter(LimiterConfig{Rate: 1, Burst: 1, MaxKeys: 100})
	t0 := time.Unix(1000, 0)
	for i := range 1000 {
		l.Allow(fmt.Sprint("k", i), t0)
	}
	if l.Len() != 100 {
		t.Fatalf("%d keys tracked, want the cap 100", l.Len())
	}
	// Idle keys whose buckets refilled are dropped as new calls come in.
	later := t0.Add(time.Minute)
	for range 60 {
		l.Allow("busy", later)
	}
	if l.Len() != 1 {
		t.Fatalf("%d keys tracked after the idle ones refilled; want only the busy one", l.Len())
	}
	for _, bad := range []LimiterConfig{{}, {Rate: -1}, {Rate: 1, Burst: -1}, {Rate: 1, MaxKeys: -1}} {
		if _, err := NewLimiter(bad); err == nil {
			t.Errorf("NewLimiter(%+v) succeeded", bad)
		}
	}
}
