package main

import (
	"math"
	"os"
	"testing"
	"time"
)

// TestProcessCPU: the load test's CPU reading of a process grows with the work it does.
func TestProcessCPU(t *testing.T) {
	before, err := processCPU(os.Getpid())
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	x := 0.0
	for start := time.Now(); time.Since(start) < 200*time.Millisecond; {
		x += math.Sqrt(x + 1)
	}
	after, err := processCPU(os.Getpid())
	if err != nil || after-before < 50*time.Millisecond {
		t.Fatalf("CPU time %v -> %v (%v) after 200 ms of work", before, after, err)
	}
	if _, err := processCPU(-1); err == nil {
		t.Fatal("a process that does not exist has a CPU time")
	}
}
