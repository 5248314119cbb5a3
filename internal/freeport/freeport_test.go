package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestPortsBelowEphemeralRange(t *testing.T) {
	ports, err := Ports(8)
	if err != nil {
		t.Fatal(err)
	}
	hi := ephemeralLow()
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Errorf("port %d returned twice", p)
		}
		seen[p] = true
		if hi-low >= minSpan && (p < low || p >= hi) {
			t.Errorf("port %d outside [%d, %d)", p, low, hi)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Errorf("port %d not free after Ports returned: %v", p, err)
			continue
		}
		l.Close()
	}
}
