package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// TestAgentHeadIntervalFloor: a --head-interval under a second is refused, naming the flag.
// Before, 1ns kept an idle agent signing heads at 97% of a core, a negative one was refused
// without naming the flag, and 0 meant a minute.
func TestAgentHeadIntervalFloor(t *testing.T) {
	for _, v := range []string{"1ns", "999ms", "0", "-1s"} {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second) // an agent that started stops
		err := runAgent(ctx, []string{"--dir", t.TempDir(), "--grpc", "", "--http", "127.0.0.1:0", "--head-interval", v}, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "--head-interval") {
			t.Errorf("--head-interval %s: %v, want a refusal naming the flag", v, err)
		}
		cancel()
	}
}
