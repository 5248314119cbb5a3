package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigilauth/vigil/sim"
)

// TestProcessCPU: the load test's CPU reading of a process grows with the work it does.
func TestProcessCPU(t *testing.T) {
	before, err := processCPU(os.Getpid())
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	// 200 ms of CPU by the kernel's own account (getrusage), not 200 ms of wall time: on a
	// loaded machine this process may get a small share of a CPU in that time.
	self := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	x := 0.0
	start, wall := self(), time.Now()
	for self()-start < 200*time.Millisecond {
		for range 100000 {
			x += math.Sqrt(x + 1)
		}
		if time.Since(wall) > time.Minute {
			t.Fatalf("200 ms of CPU not used in a minute (%v)", self()-start)
		}
	}
	after, err := processCPU(os.Getpid())
	if err != nil || after-before < 100*time.Millisecond {
		t.Fatalf("CPU time %v -> %v (%v) after 200 ms of work", before, after, err)
	}
	if _, err := processCPU(-1); err == nil {
		t.Fatal("a process that does not exist has a CPU time")
	}
}

// TestLoadtestFrontends runs tiny load tests on real processes: the coordinator without its
// tier, with it, and with two aggregation frontends, which must take every update (the
// devices start at one of them, by their ID), none lost, the released average matching them.
func TestLoadtestFrontends(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a coordinator, trustees and frontends as processes")
	}
	for _, tc := range []struct {
		name      string
		args      []string
		frontends int
	}{
		{"tier off", nil, 0},
		{"tier", []string{"--tier"}, 0},
		{"two frontends", []string{"--frontends", "2"}, 2},
		{"two frontends, updates in the stream", []string{"--frontends", "2", "--tier-blobs", "off"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const devices, rounds = 6, 2
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
			defer cancel()
			args := append([]string{"loadtest", "--devices", fmt.Sprint(devices), "--params", "2000", "--rounds", fmt.Sprint(rounds),
				"--json", "--dir", t.TempDir()}, tc.args...)
			cmd := vigilCmd(ctx, args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("vigil %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
			}
			var rep sim.LoadReport
			if err := json.Unmarshal(out, &rep); err != nil {
				t.Fatalf("report: %v\n%s", err, out)
			}
			if rep.LostUpdates != 0 || len(rep.Rounds) != rounds || rep.MaxSumError > 1e-6 {
				t.Fatalf("lost %d, %d rounds, error of the average %g; want 0, %d, ~0\n%s", rep.LostUpdates, len(rep.Rounds), rep.MaxSumError, rounds, stderr.String())
			}
			if rep.Trustees == nil || rep.Trustees.CPUSec <= 0 || rep.Trustees.PeakMiB <= 0 {
				t.Errorf("trustees' load %+v; want their CPU and memory", rep.Trustees)
			}
			if len(rep.Frontends) != tc.frontends {
				t.Fatalf("%d frontends reported, want %d", len(rep.Frontends), tc.frontends)
			}
			took := rep.LeaderAccepted
			for i, fe := range rep.Frontends {
				if fe.Accepted == 0 || fe.PeakMiB == 0 {
					t.Errorf("frontend %d took %d updates, peak memory %d MiB; want some of each", i, fe.Accepted, fe.PeakMiB)
				}
				took += fe.Accepted
			}
			if tc.frontends > 0 && (rep.LeaderAccepted != 0 || took != devices*rounds) {
				t.Fatalf("the frontends took %d updates and the leader %d; want all %d at the frontends", took-rep.LeaderAccepted, rep.LeaderAccepted, devices*rounds)
			}
		})
	}
}
