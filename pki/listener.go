package pki

import (
	"container/list"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"
)

// ListenerConfig configures a Split listener. The caps are per class of connection, so that
// connections nobody has authenticated can never take the room of the fleet's: a device that
// holds a verified certificate is admitted while an attacker holds every slot open to strangers.
type ListenerConfig struct {
	// TLS is the server's configuration, normally ServerTLS (client certificates verified when
	// given). Required.
	TLS *tls.Config
	// HandshakeTimeout bounds the TLS handshake; zero means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// MaxHandshakes bounds the connections still in their handshake; beyond it the oldest of
	// the remote address with the most is closed, so that idle or slow connections, from however
	// many hosts, cannot keep a device from starting one. Zero means DefaultMaxHandshakes.
	MaxHandshakes int
	// MaxHandshakesPerHost bounds one remote address's connections in their handshake; beyond
	// it new ones are closed at once. Zero means DefaultMaxHandshakesPerHost.
	MaxHandshakesPerHost int
	// MaxUnauthenticated bounds established connections without a verified client certificate
	// (devices enrolling); beyond it the oldest of the remote address with the most is closed.
	// Zero means DefaultMaxUnauthenticated.
	MaxUnauthenticated int
	// MaxUnauthenticatedPerHost bounds one remote address's connections without a certificate;
	// beyond it new ones are closed. Zero means DefaultMaxUnauthenticatedPerHost.
	MaxUnauthenticatedPerHost int
	// MaxAuthenticated bounds connections with a verified certificate; beyond it new ones are
	// closed. Zero means DefaultMaxAuthenticated.
	MaxAuthenticated int
	// MaxAuthenticatedPerIdentity bounds one identity's connections with a verified
	// certificate; beyond it the identity's oldest is closed. Without it, one certificate could
	// hold every authenticated slot and keep the fleet out. Zero means
	// DefaultMaxAuthenticatedPerIdentity.
	MaxAuthenticatedPerIdentity int
	// Roles, if set, are the roles the server behind Authenticated serves (its Guard's
	// GuardConfig.Roles). A verified certificate of another role is handed to Unauthenticated
	// instead, counted with the strangers: its calls would all be refused, so it must not take
	// the room of the callers the server exists for.
	Roles []Role
	// Revocations, if set, is checked when a handshake completes: a revoked certificate, or any
	// while the list cannot be read, is handed to Unauthenticated like one of another role. The
	// Guard checks every call again, so a revocation made while a connection is open still
	// takes effect at once.
	Revocations *Revocations
}

func (c *ListenerConfig) validate() error {
	if c.TLS == nil {
		return errors.New("pki: listener: no TLS configuration")
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxHandshakes, DefaultMaxHandshakes)
	def(&c.MaxHandshakesPerHost, DefaultMaxHandshakesPerHost)
	def(&c.MaxUnauthenticated, DefaultMaxUnauthenticated)
	def(&c.MaxUnauthenticatedPerHost, DefaultMaxUnauthenticatedPerHost)
	def(&c.MaxAuthenticated, DefaultMaxAuthenticated)
	def(&c.MaxAuthenticatedPerIdentity, DefaultMaxAuthenticatedPerIdentity)
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.MaxHandshakes < 1 || c.MaxHandshakesPerHost < 1 || c.MaxUnauthenticated < 1 ||
		c.MaxUnauthenticatedPerHost < 1 || c.MaxAuthenticated < 1 || c.MaxAuthenticatedPerIdentity < 1 ||
		c.HandshakeTimeout < 0 {
		return fmt.Errorf("pki: listener: caps and timeout must be positive: %+v", *c)
	}
	for _, r := range c.Roles {
		if !r.valid() {
			return fmt.Errorf("pki: listener: unknown role %q", r)
		}
	}
	return nil
}

// Split serves one address to two gRPC servers: it completes the TLS handshake itself and hands
// connections with a verified client certificate to Authenticated and the others to
// Unauthenticated. The server behind Unauthenticated can then read only small messages and
// serve only enrolment, so that a stranger is refused before any large message body is read,
// while existing deployments keep their one address. Serve both with Handshaken as their
// credentials.
//
// A verified certificate is not enough to be authenticated: one that names no identity is
// closed, and, as configured, one of a role not served or a revoked one goes to
// Unauthenticated, where OnlyMethods tells its holder why its calls are refused. Each identity
// has at most MaxAuthenticatedPerIdentity authenticated connections.
type Split struct {
	cfg    ListenerConfig
	inner  net.Listener
	auth   *chanListener
	unauth *chanListener
	done   chan struct{}
	once   sync.Once

	mu                       sync.Mutex
	hosts                    map[string]*hostConns
	idents                   map[Identity]*list.List // authenticated connections, oldest first
	pending, strange, authed int                     // totals
}

// hostConns are one remote address's connections without a verified certificate, oldest first.
type hostConns struct {
	pending, strange list.List // of *trackedConn
}

// NewSplit starts accepting on inner. Close stops it and closes inner.
func NewSplit(inner net.Listener, cfg ListenerConfig) (*Split, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Split{
		cfg: cfg, inner: inner, done: make(chan struct{}),
		hosts: map[string]*hostConns{}, idents: map[Identity]*list.List{},
	}
	s.auth = &chanListener{s: s, ch: make(chan net.Conn)}
	s.unauth = &chanListener{s: s, ch: make(chan net.Conn)}
	go s.accept()
	return s, nil
}

// Authenticated returns the listener of connections whose client certificate verified.
func (s *Split) Authenticated() net.Listener { return s.auth }

// Unauthenticated returns the listener of connections without a client certificate.
func (s *Split) Unauthenticated() net.Listener { return s.unauth }

// Addr returns the address of the listener it splits.
func (s *Split) Addr() net.Addr { return s.inner.Addr() }

// Close stops accepting. Connections already handed out stay with their servers.
func (s *Split) Close() error {
	var err error
	s.once.Do(func() {
		close(s.done)
		err = s.inner.Close()
	})
	return err
}

// Counts returns the connections in their handshake, established without a certificate, and
// established with one.
func (s *Split) Counts() (handshaking, unauthenticated, authenticated int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending, s.strange, s.authed
}

func (s *Split) accept() {
	var delay time.Duration
	for {
		raw, err := s.inner.Accept()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				s.Close()
				return
			}
			// Out of file descriptors, typically: back off instead of spinning, and keep
			// serving the connections already open.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			time.Sleep(delay)
			continue
		}
		delay = 0
		c := &trackedConn{s: s, raw: raw, host: remoteHost(raw.RemoteAddr())}
		if victim, ok := s.admitPending(c); !ok {
			raw.Close()
			continue
		} else if victim != nil {
			victim.raw.Close()
		}
		go s.handshake(c)
	}
}

// admitPending counts c as handshaking, making room when the total is reached by evicting the
// oldest handshake of the address with the most; false if c's address already has its share.
func (s *Split) admitPending(c *trackedConn) (victim *trackedConn, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.host(c.host)
	if h.pending.Len() >= s.cfg.MaxHandshakesPerHost {
		return nil, false
	}
	if s.pending >= s.cfg.MaxHandshakes {
		victim = s.busiest(func(h *hostConns) *list.List { return &h.pending })
		s.releaseLocked(victim)
	}
	c.class, c.elem = classPending, h.pending.PushBack(c)
	s.pending++
	return victim, true
}

func (s *Split) handshake(c *trackedConn) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.HandshakeTimeout)
	defer cancel()
	tc := tls.Server(c.raw, s.cfg.TLS)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return
	}
	c.tls = tc
	verified := len(tc.ConnectionState().VerifiedChains) > 0
	var id Identity
	if verified {
		var err error
		if id, err = IdentityOf(tc.ConnectionState().VerifiedChains[0][0]); err != nil {
			// No Guard serves a certificate without an identity, and it cannot be counted
			// against one.
			c.Close()
			return
		}
		// Checked before the connection takes an authenticated slot, not only at its calls:
		// a revoked device (or an operator, or a trustee) holding idle connections would
		// otherwise keep every device out while making no call to be refused.
		verified = s.admissible(id, tc.ConnectionState().VerifiedChains[0][0]) == nil
	}
	victim, ok := s.promote(c, verified, id)
	if victim != nil {
		victim.raw.Close()
	}
	if !ok {
		c.raw.Close()
		return
	}
	to := s.unauth
	if verified {
		to = s.auth
	}
	select {
	case to.ch <- c:
	case <-s.done:
		c.Close()
	}
}

// admissible returns nil if the server behind Authenticated serves id and leaf is not revoked,
// as far as the listener was told (ListenerConfig.Roles and Revocations).
func (s *Split) admissible(id Identity, leaf *x509.Certificate) error {
	if len(s.cfg.Roles) > 0 && !slices.Contains(s.cfg.Roles, id.Role) {
		return fmt.Errorf("pki: listener: %s is not of a role served", id)
	}
	if s.cfg.Revocations != nil {
		if err := s.cfg.Revocations.Check(id, leaf, time.Now()); err != nil {
			return fmt.Errorf("pki: listener: %w", err)
		}
	}
	return nil
}

// promote moves c from handshaking to its established class: authenticated as id if verified,
// making room by evicting id's oldest connection when id has its share.
func (s *Split) promote(c *trackedConn, verified bool, id Identity) (victim *trackedConn, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.class != classPending {
		return nil, false // evicted while handshaking
	}
	s.releaseLocked(c)
	if verified {
		// The identity's own oldest connection goes, not the newcomer: a device whose network
		// changed reconnects at once rather than waiting for the server to notice that its
		// old connections died, and only whoever holds the identity's key is affected.
		if l := s.idents[id]; l != nil && l.Len() >= s.cfg.MaxAuthenticatedPerIdentity {
			victim = l.Front().Value.(*trackedConn)
			s.releaseLocked(victim)
		} else if s.authed >= s.cfg.MaxAuthenticated {
			return nil, false
		}
		l := s.idents[id]
		if l == nil {
			l = list.New()
			s.idents[id] = l
		}
		c.class, c.ident, c.elem = classAuthenticated, id, l.PushBack(c)
		s.authed++
		return victim, true
	}
	h := s.host(c.host)
	if h.strange.Len() >= s.cfg.MaxUnauthenticatedPerHost {
		return nil, false
	}
	if s.strange >= s.cfg.MaxUnauthenticated {
		victim = s.busiest(func(h *hostConns) *list.List { return &h.strange })
		s.releaseLocked(victim)
	}
	c.class, c.elem = classUnauthenticated, h.strange.PushBack(c)
	s.strange++
	return victim, true
}

func (s *Split) host(addr string) *hostConns {
	h, ok := s.hosts[addr]
	if !ok {
		h = &hostConns{}
		s.hosts[addr] = h
	}
	return h
}

// busiest returns the oldest connection in the longest of the hosts' lists picked by which.
// The scan is over at most MaxHandshakes+MaxUnauthenticated addresses, and runs only when a
// class is full.
func (s *Split) busiest(which func(*hostConns) *list.List) *trackedConn {
	var most *list.List
	for _, h := range s.hosts {
		if l := which(h); most == nil || l.Len() > most.Len() {
			most = l
		}
	}
	return most.Front().Value.(*trackedConn)
}

// releaseLocked stops counting c.
func (s *Split) releaseLocked(c *trackedConn) {
	h := s.hosts[c.host]
	switch c.class {
	case classPending:
		h.pending.Remove(c.elem)
		s.pending--
	case classUnauthenticated:
		h.strange.Remove(c.elem)
		s.strange--
	case classAuthenticated:
		if l := s.idents[c.ident]; l != nil {
			l.Remove(c.elem)
			if l.Len() == 0 {
				delete(s.idents, c.ident)
			}
		}
		s.authed--
	}
	if h != nil && h.pending.Len() == 0 && h.strange.Len() == 0 {
		delete(s.hosts, c.host)
	}
	c.class, c.elem = classNone, nil
}

type connClass int

const (
	classNone connClass = iota
	classPending
	classUnauthenticated
	classAuthenticated
)

// trackedConn is a connection the Split counts until it is closed.
type trackedConn struct {
	s     *Split
	raw   net.Conn
	tls   *tls.Conn // set once the handshake completed, before the conn is handed out
	host  string
	class connClass     // guarded by s.mu
	ident Identity      // of an authenticated connection; guarded by s.mu
	elem  *list.Element // in its host's or identity's list; guarded by s.mu
	once  sync.Once
}

var _ net.Conn = (*trackedConn)(nil)

func (c *trackedConn) Read(b []byte) (int, error)         { return c.tls.Read(b) }
func (c *trackedConn) Write(b []byte) (int, error)        { return c.tls.Write(b) }
func (c *trackedConn) LocalAddr() net.Addr                { return c.raw.LocalAddr() }
func (c *trackedConn) RemoteAddr() net.Addr               { return c.raw.RemoteAddr() }
func (c *trackedConn) SetDeadline(t time.Time) error      { return c.raw.SetDeadline(t) }
func (c *trackedConn) SetReadDeadline(t time.Time) error  { return c.raw.SetReadDeadline(t) }
func (c *trackedConn) SetWriteDeadline(t time.Time) error { return c.raw.SetWriteDeadline(t) }

// ConnectionState returns the TLS state of the completed handshake.
func (c *trackedConn) ConnectionState() tls.ConnectionState { return c.tls.ConnectionState() }

// Close closes the connection and stops counting it.
func (c *trackedConn) Close() error {
	var err error
	c.once.Do(func() {
		c.s.mu.Lock()
		c.s.releaseLocked(c)
		c.s.mu.Unlock()
		if c.tls != nil {
			// Bounded: close_notify must not wait on a peer that reads nothing.
			c.raw.SetWriteDeadline(time.Now().Add(time.Second))
			err = c.tls.Close()
		} else {
			err = c.raw.Close()
		}
	})
	return err
}

// chanListener is one side of a Split.
type chanListener struct {
	s  *Split
	ch chan net.Conn
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.s.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error   { return l.s.Close() }
func (l *chanListener) Addr() net.Addr { return l.s.Addr() }
