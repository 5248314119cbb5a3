package agent

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
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

func TestInBackground(t *testing.T) {
	for _, tc := range []struct {
		procs int
		niced bool
	}{{2, true}, {1, false}} {
		prev := runtime.GOMAXPROCS(tc.procs)
		runtime.LockOSThread()
		before := threadNice(t)
		got, err := inBackground(func() (int, error) { return threadNice(t), nil })
		after := threadNice(t)
		runtime.UnlockOSThread()
		runtime.GOMAXPROCS(prev)
		if err != nil {
			t.Fatal(err)
		}
		want := before
		if tc.niced {
			want = lowestNice
		}
		if got != want || after != before {
			t.Errorf("GOMAXPROCS %d: the fit ran at nice %d, want %d; the caller at %d before, %d after", tc.procs, got, want, before, after)
		}
	}
}
