package trustee

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/vigilauth/vigil/crypto/he"
	"github.com/vigilauth/vigil/crypto/sig"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// LocalConfig configures StartLocal.
type LocalConfig struct {
	// Shares are the trustees' secret shares, one trustee per share. Required.
	Shares []*he.SecretShare
	// MinContributors is every trustee's m_min (see Config). Required.
	MinContributors int
	// StateDir holds one directory per trustee (named by its id) with its journal. Required.
	StateDir string
	// Signers are the trustees' commitment-signing keys, in the order of Shares (default:
	// generated here).
	Signers []*sig.PrivateKey
	// Root is every trustee's pinned root of trust (see Config.Root). Required.
	Root *release.Root
	// Trustees are the keys whose commitments count (see Config.Trustees); default: the root's
	// trustees role.
	Trustees []*sig.PublicKey
	// Now is the trustees' clock (default time.Now).
	Now func() time.Time
	// Logger receives the trustees' logs, each with a "trustee" attribute (default: discard).
	Logger *slog.Logger
	// ServerOptions, if set, gives the extra gRPC server options of trustee id, such as mutual
	// TLS and pki's guard admitting only the coordinator.
	ServerOptions func(id string) ([]grpc.ServerOption, error)
	// DialOptions, if set, gives the options to reach trustee id with (default: plain loopback).
	DialOptions func(id string) ([]grpc.DialOption, error)
}

// LocalCluster is a set of trustee services running in this process, each on its own
// loopback TCP port with its own journal, reached through real gRPC connections. It is what
// the demo runs by default and what tests use; a deployment runs `vigil trustee serve` on
// separate hosts instead.
type LocalCluster struct {
	// Clients are connections to the trustees, in the order of LocalConfig.Shares.
	Clients []vigilv1.TrusteeClient
	// Addrs are the trustees' listening addresses, in the same order.
	Addrs []string
	// Signers are the trustees' commitment-signing keys, in the same order.
	Signers []*sig.PrivateKey

	servers []*grpc.Server
	conns   []*grpc.ClientConn
}

// StartLocal starts one trustee service per share on 127.0.0.1.
func StartLocal(cfg LocalConfig) (_ *LocalCluster, err error) {
	if len(cfg.Shares) == 0 {
		return nil, errors.New("trustee: StartLocal: no shares")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("trustee: StartLocal: no state directory")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Signers == nil {
		for range cfg.Shares {
			k, err := sig.GenerateKey(rand.Reader)
			if err != nil {
				return nil, fmt.Errorf("trustee: %w", err)
			}
			cfg.Signers = append(cfg.Signers, k)
		}
	}
	if len(cfg.Signers) != len(cfg.Shares) {
		return nil, fmt.Errorf("trustee: StartLocal: %d signing keys for %d shares", len(cfg.Signers), len(cfg.Shares))
	}
	c := &LocalCluster{Signers: cfg.Signers}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	for i, share := range cfg.Shares {
		if share == nil {
			return nil, errors.New("trustee: StartLocal: nil share")
		}
		id := share.TrusteeID()
		dir := filepath.Join(cfg.StateDir, id)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("trustee: %w", err)
		}
		srv, err := NewServer(Config{
			Share:           share,
			MinContributors: cfg.MinContributors,
			Journal:         FileJournal{Path: filepath.Join(dir, JournalFile), Marker: filepath.Join(dir, MarkerFile)},
			Signer:          cfg.Signers[i],
			Root:            cfg.Root,
			Trustees:        cfg.Trustees,
			Now:             cfg.Now,
			Logger:          cfg.Logger.With("trustee", id),
		})
		if err != nil {
			return nil, err
		}
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("trustee: %w", err)
		}
		opts := ServerOptions()
		if cfg.ServerOptions != nil {
			extra, err := cfg.ServerOptions(id)
			if err != nil {
				return nil, err
			}
			opts = append(opts, extra...)
		}
		gs := grpc.NewServer(opts...)
		vigilv1.RegisterTrusteeServer(gs, srv)
		go gs.Serve(lis)
		c.servers = append(c.servers, gs)
		addr := lis.Addr().String()
		dial := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
		if cfg.DialOptions != nil {
			if dial, err = cfg.DialOptions(id); err != nil {
				return nil, err
			}
		}
		dial = append(dial, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes)))
		conn, err := grpc.NewClient(addr, dial...)
		if err != nil {
			return nil, fmt.Errorf("trustee: %w", err)
		}
		c.conns = append(c.conns, conn)
		c.Clients = append(c.Clients, vigilv1.NewTrusteeClient(conn))
		c.Addrs = append(c.Addrs, addr)
	}
	return c, nil
}

// Stop takes trustee i offline: its server stops and its port refuses connections, as when
// its host is down.
func (c *LocalCluster) Stop(i int) {
	if i >= 0 && i < len(c.servers) {
		c.servers[i].Stop()
	}
}

// Close stops every trustee and closes the connections.
func (c *LocalCluster) Close() {
	for _, conn := range c.conns {
		conn.Close()
	}
	for _, s := range c.servers {
		s.Stop()
	}
}
