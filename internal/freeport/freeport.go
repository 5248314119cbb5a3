// Package freeport finds TCP ports on 127.0.0.1 for servers that tests start as processes and
// restart on the same address. It takes them from below the kernel's ephemeral range: a port
// from that range, freed when its server is killed, may meanwhile become the local end of any
// outgoing connection on the machine, and the restart then fails to bind (it did in CI).
package freeport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

const (
	// low is the lowest port handed out: above the registered services most machines run.
	low = 10000
	// minSpan is the fewest ports below the ephemeral range worth drawing from; with fewer,
	// the kernel chooses.
	minSpan = 1000
	// tries bounds the draws per port, for a machine where most of the span is in use.
	tries = 100
)

// Ports returns n distinct ports on 127.0.0.1 that were free a moment ago. They are held open
// together while they are chosen, so none is returned twice.
func Ports(n int) ([]int, error) {
	hi := ephemeralLow()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := listen(hi)
		if err != nil {
			return nil, fmt.Errorf("freeport: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// listen listens on a random port in [low, hi), or on one the kernel chooses when that span is
// too small.
func listen(hi int) (net.Listener, error) {
	if hi-low < minSpan {
		return net.Listen("tcp", "127.0.0.1:0")
	}
	var errs []error
	for range tries {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(low+rand.IntN(hi-low))))
		if err == nil {
			return l, nil
		}
		if len(errs) < 3 {
			errs = append(errs, err)
		}
	}
	return nil, fmt.Errorf("no free port in [%d, %d) after %d tries: %w", low, hi, tries, errors.Join(errs...))
}

// ephemeralLow is the first port of Linux's ephemeral range, or the IANA range's elsewhere.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 49152
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 49152
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil {
		return 49152
	}
	return lo
}
