package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
)

// Listen opens a listener for the local API: "unix:/path" for a unix socket (created 0600, so
// only the owner's processes can connect), otherwise a TCP address that must be on the
// loopback: the agent is never reachable from the network.
//
// A socket a previous run left at the path (one nothing listens on) is replaced; anything
// else there is refused: a socket another process serves on, or a file that is not a socket.
func Listen(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if err := removeStaleSocket(path); err != nil {
			return nil, err
		}
		l, err := net.Listen("unix", path)
		if err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
		if err := os.Chmod(path, 0o600); err != nil {
			l.Close()
			return nil, fmt.Errorf("agent: %w", err)
		}
		return l, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("agent: listen address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("agent: listen address %q is not on the loopback (127.0.0.1, ::1) or a unix socket", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	return l, nil
}

// removeStaleSocket removes the unix socket at path if nothing listens on it (a previous run
// that ended without removing it); a path that does not exist is left as it is. A file that is
// not a socket, or a socket that answers, is an error: the path is someone else's.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("agent: %s exists and is not a unix socket (%v); refusing to replace it", path, fi.Mode().Type())
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("agent: %s is a unix socket another process listens on (another agent?); refusing to take it over", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("agent: %s is a unix socket that may be in use; refusing to replace it: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("agent: removing the stale socket %s: %w", path, err)
	}
	return nil
}

// Serve runs the agent's loops and serves the gRPC face on grpcLis and the HTTP face on
// httpLis (either may be nil) until ctx is done; then it stops the servers, saves the state
// with the open sessions (the next start restores them) and closes the audit log.
func (a *Agent) Serve(ctx context.Context, grpcLis, httpLis net.Listener, opts HTTPOptions) error {
	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(runCtx) }()

	g, gctx := errgroup.WithContext(ctx)
	gs := a.GRPCServer()
	hs := &http.Server{Handler: a.HTTPHandler(opts), ReadHeaderTimeout: 5 * time.Second}
	if grpcLis != nil {
		g.Go(func() error {
			if err := gs.Serve(grpcLis); !errors.Is(err, grpc.ErrServerStopped) {
				return err
			}
			return nil // stopped before it started serving
		})
	}
	if httpLis != nil {
		g.Go(func() error {
			if err := hs.Serve(httpLis); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		hs.Shutdown(sctx) // WebSocket watchers end when their request context does
		hs.Close()
		gs.Stop()
		return nil
	})
	err := g.Wait()
	stopRun()
	if rerr := <-runErr; rerr != nil && err == nil {
		err = rerr
	}
	return err
}
