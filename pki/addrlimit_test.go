package pki

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

func TestRemoteHost(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 443}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 443}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), Port: 443}, "2001:db8:1:2::/64"},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 443, Zone: "eth0"}, "fe80::/64"},
		{&net.UDPAddr{IP: net.ParseIP("2001:db8:1:2::9"), Port: 443}, "2001:db8:1:2::/64"},
		{&net.UnixAddr{Name: "/run/vigil.sock", Net: "unix"}, "/run/vigil.sock"},
		{nil, "unknown"},
	} {
		if got := remoteHost(tc.addr); got != tc.want {
			t.Errorf("remoteHost(%v) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

// TestAttackIPv6AddressesEscapeLimits: a caller given a /64, as IPv6 subscribers are, calls the
// unauthenticated Enroll from a fresh address each time. The per-address limit counts the /64,
// so it is refused once the /64's allowance is spent; another /64 and IPv4 callers keep theirs.
func TestAttackIPv6AddressesEscapeLimits(t *testing.T) {
	revs, err := OpenRevocations(filepath.Join(t.TempDir(), "revoked.json"))
	if err != nil {
		t.Fatal(err)
	}
	lim, err := NewLimiter(LimiterConfig{Rate: 1, Burst: 3})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	g, err := NewGuard(GuardConfig{Roles: []Role{RoleDevice}, Unauthenticated: []string{enrollMethod}, Revocations: revs, Limiter: lim,
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	call := func(ip string) error {
		ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}, AuthInfo: credentials.TLSInfo{}})
		_, err := g.Authorize(ctx, enrollMethod)
		return err
	}
	var refused int
	for i := range 100 {
		if err := call(net.IP{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, byte(i >> 8), byte(i + 1)}.String()); err != nil {
			wantStatus(t, err, codes.ResourceExhausted, ReasonRateLimited)
			refused++
		}
	}
	if refused != 97 {
		t.Errorf("100 calls from 100 addresses of one /64: %d refused, want 97 (a burst of 3)", refused)
	}
	for _, ip := range []string{"2001:db8:0:2::1", "192.0.2.1", "192.0.2.2"} {
		if err := call(ip); err != nil {
			t.Errorf("a caller from %s, outside the flooding /64: %v", ip, err)
		}
	}
}
