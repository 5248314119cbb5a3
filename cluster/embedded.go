package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Limits of the embedded server. Devices' updates of 100,000 parameters are 3.4 MB, over NATS'
// default 1 MiB payload; 8 MiB is the most nats-server accepts without warning. The tier's state
// is file-backed, so memory streams get little; the store limit only bounds streams that reserve
// bytes (MaxBytes), it is not preallocated.
const (
	embeddedMaxPayload = 8 << 20
	embeddedMaxMemory  = 256 << 20
	embeddedMaxStore   = 16 << 30
	// embeddedIngestBuffer is how much a stream queues before storing it; the server's
	// default, 128 MiB, drops a whole round's updates beyond about 37 of 3.4 MB arriving at
	// once (the devices are told NOT_DURABLE and send again).
	embeddedIngestBuffer = 512 << 20

	// embeddedReadyTimeout bounds the wait for the server to listen: recovering large streams
	// from disk on a loaded machine takes seconds, not minutes.
	embeddedReadyTimeout = 60 * time.Second

	// embeddedTLSTimeout bounds a client's TLS handshake: the server's default, 2 s, is short
	// for a frontend's hybrid key exchange on a loaded machine.
	embeddedTLSTimeout = 5 * time.Second
)

// EmbeddedConfig configures an in-process server.
type EmbeddedConfig struct {
	// Dir holds the JetStream file store (Dir/jetstream). Starting again on the same Dir
	// recovers every stream and KV bucket.
	Dir string
	// Addr is the client listen address, host:port; empty means 127.0.0.1 on a random port.
	Addr string
	// Token, if set, is the secret every client must present (nats.Token): the coordinator's
	// frontends hold it, other local users do not.
	Token string
	// TLS, if set, is the server's TLS configuration, normally ServerTLS: the server then
	// speaks only TLS (a client that does not is refused before it can send its token) and,
	// when TLS requires client certificates, admits only clients whose certificate verifies.
	// Nil serves plaintext, for tests and in-process clients.
	TLS *tls.Config
}

// Embedded is a single-node nats-server with JetStream running in this process: the default
// when the coordinator is given no NATS cluster, so that one machine needs nothing else.
type Embedded struct {
	srv       *server.Server
	closeOnce sync.Once
}

// StartEmbedded starts an embedded server storing under dir, listening on 127.0.0.1 on a random
// port. See StartEmbeddedConfig.
func StartEmbedded(ctx context.Context, dir string, log *slog.Logger) (*Embedded, error) {
	return StartEmbeddedConfig(ctx, EmbeddedConfig{Dir: dir}, log)
}

// StartEmbeddedConfig starts an embedded server and waits until it accepts clients with
// JetStream enabled, or ctx ends. The server logs to log (nil discards): its notices at debug
// level, warnings and errors at theirs; it never writes to stdout or installs signal handlers.
// ctx bounds the start only; Close stops the server.
func StartEmbeddedConfig(ctx context.Context, cfg EmbeddedConfig, log *slog.Logger) (*Embedded, error) {
	opts, err := cfg.options()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("cluster: embedded nats-server: %w", err)
	}
	lg := &embeddedLog{log: log.With("component", "nats-server"), fatal: make(chan string, 1)}
	srv.SetLoggerV2(lg, false, false, false)
	srv.Start()
	e := &Embedded{srv: srv}
	if err := e.waitReady(ctx, lg.fatal); err != nil {
		_ = e.Close()
		return nil, fmt.Errorf("cluster: embedded nats-server in %s: %w", cfg.Dir, err)
	}
	return e, nil
}

func (c EmbeddedConfig) options() (*server.Options, error) {
	if c.Dir == "" {
		return nil, errors.New("cluster: embedded nats-server: no store directory")
	}
	host, port := "127.0.0.1", server.RANDOM_PORT
	if c.Addr != "" {
		h, p, err := net.SplitHostPort(c.Addr)
		if err != nil {
			return nil, fmt.Errorf("cluster: embedded nats-server address %q: %w", c.Addr, err)
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 65535 {
			return nil, fmt.Errorf("cluster: embedded nats-server address %q: bad port", c.Addr)
		}
		if h != "" {
			host = h
		}
		if n != 0 {
			port = n
		}
	}
	dir, err := filepath.Abs(c.Dir)
	if err != nil {
		return nil, fmt.Errorf("cluster: embedded nats-server store: %w", err)
	}
	opts := &server.Options{
		ServerName:         "vigil-embedded",
		Host:               host,
		Port:               port,
		MaxPayload:         embeddedMaxPayload,
		JetStream:          true,
		StoreDir:           dir,
		Authorization:      c.Token,
		JetStreamMaxMemory: embeddedMaxMemory,
		// The server's own options, set as its configuration file's max_buffered_size is.
		StreamMaxBufferedSize: embeddedIngestBuffer,
		JetStreamMaxStore:     embeddedMaxStore,
		// The server is a library here: the process's logging and signals are the binary's.
		NoLog:  true,
		NoSigs: true,
	}
	if c.TLS != nil {
		opts.TLS = true
		opts.TLSConfig = c.TLS.Clone()
		opts.TLSVerify = c.TLS.ClientAuth == tls.RequireAndVerifyClientCert
		opts.TLSTimeout = embeddedTLSTimeout.Seconds()
	}
	return opts, nil
}

// waitReady polls in short steps rather than calling ReadyForConnections once, so that a fatal
// error (address in use, unusable store) or ctx ends the wait at once instead of at the timeout.
func (e *Embedded) waitReady(ctx context.Context, fatal <-chan string) error {
	deadline := time.Now().Add(embeddedReadyTimeout)
	for {
		select {
		case msg := <-fatal:
			return errors.New(msg)
		default:
		}
		if e.srv.ReadyForConnections(50*time.Millisecond) && e.srv.JetStreamEnabled() {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("not ready for connections: %w", err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready for connections after %s", embeddedReadyTimeout)
		}
	}
}

// URL is the client URL, nats://host:port.
func (e *Embedded) URL() string { return e.srv.ClientURL() }

// ConnectInProcess connects a client of this process to the server through memory instead of
// its port: no TLS, no socket, no system call, which the server allows for such a client only
// (no other process can open one). The token, if any, must still be given (nats.Token). Do not
// give nats.Secure: the server offers no TLS in process.
func (e *Embedded) ConnectInProcess(opts ...nats.Option) (*nats.Conn, error) {
	// No URL: a tls:// one would make the client ask for TLS.
	return nats.Connect("", append(slices.Clip(opts), nats.InProcessServer(e.srv))...)
}

// Close shuts the server down and waits until it has, so that the store can be opened again.
// It is safe to call more than once.
func (e *Embedded) Close() error {
	e.closeOnce.Do(func() {
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
	})
	return nil
}

// embeddedLog routes nats-server's logger to slog. Fatalf does not exit: the server calls it for
// errors it cannot start with, which StartEmbeddedConfig returns instead.
type embeddedLog struct {
	log   *slog.Logger
	fatal chan string
}

var _ server.Logger = (*embeddedLog)(nil)

func (l *embeddedLog) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *embeddedLog) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *embeddedLog) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *embeddedLog) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *embeddedLog) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }

func (l *embeddedLog) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error(msg)
	select {
	case l.fatal <- msg:
	default:
	}
}
