package agent

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/vigilauth/vigil/models"
)

// threadNice is the nice value of the calling OS thread, from /proc.
func threadNice(t *testing.T) int {
	t.Helper()
	raw, err := os.ReadFile("/proc/thread-self/stat")
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command's closing parenthesis, from the third (state) on; nice is
	// the 19th field of the line.
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	n, err := strconv.Atoi(fields[19-3])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestInBackground fits on a thread at nice 19 with a P lent to it, and gives the P back after:
// on an agent serving on one P of two, the fit runs on the second; on a device with one core
// it runs as it is, on the only P.
func TestInBackground(t *testing.T) {
	all := runtime.GOMAXPROCS(0)
	if all < 2 {
		t.Skip("lending a P needs two cores")
	}
	for _, tc := range []struct {
		name       string
		most       int // the runtime's choice when the agent started
		serving    int
		niced      bool
		procsInFit int
	}{
		{"every core serves", all, all, true, all},
		{"one core serves", all, 1, true, 2},
		{"one core in all", 1, 1, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer runtime.GOMAXPROCS(all)
			a := &Agent{cores: cores{most: tc.most, serving: tc.most}}
			defer a.ServeOn(tc.serving)()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			before := threadNice(t)
			var nice, procs int
			if _, err := a.inBackground(func() (*models.UserModel, error) {
				nice, procs = threadNice(t), runtime.GOMAXPROCS(0)
				return nil, nil
			}); err != nil {
				t.Fatal(err)
			}
			want := before
			if tc.niced {
				want = lowestNice
			}
			if nice != want || threadNice(t) != before {
				t.Errorf("the fit ran at nice %d, want %d; the caller at %d before, %d after", nice, want, before, threadNice(t))
			}
			if procs != tc.procsInFit || runtime.GOMAXPROCS(0) != tc.serving {
				t.Errorf("%d Ps during the fit, want %d; %d after, want %d", procs, tc.procsInFit, runtime.GOMAXPROCS(0), tc.serving)
			}
		})
	}
}
