package main

import (
	"context"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/vigilauth/vigil/agent"
)

func TestUseCores(t *testing.T) {
	all := runtime.GOMAXPROCS(0)
	a, err := agent.New(agent.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		n    int
		env  string // GOMAXPROCS, when set
		want int
	}{
		{name: "one", n: 1, want: 1},
		{name: "the runtime's choice", n: 0, want: all},
		{name: "environment wins", n: 1, env: "2", want: all},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("GOMAXPROCS", tc.env)
			}
			restore := useCores(a, tc.n)
			got := runtime.GOMAXPROCS(0)
			restore()
			if got != tc.want {
				t.Errorf("useCores(%d) with GOMAXPROCS=%q: %d cores, want %d", tc.n, tc.env, got, tc.want)
			}
			if after := runtime.GOMAXPROCS(0); after != all {
				t.Errorf("after restore: %d cores, want %d", after, all)
			}
		})
	}
}

func TestAgentRefusesNegativeCores(t *testing.T) {
	err := runAgent(context.Background(), []string{"--dir", t.TempDir(), "--cores", "-1"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--cores -1") {
		t.Fatalf("runAgent --cores -1: %v, want an error naming the flag", err)
	}
}
