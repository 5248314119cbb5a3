package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/vigilauth/vigil/crypto/he"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/trustee"
)

func runTrusteeServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newTrusteeFlags("serve", stderr)
	dir := fs.String("dir", "", "the trustee's directory: share.key (mode 0600) and the journal")
	listen := fs.String("listen", "127.0.0.1:7171", "address to serve the Trustee gRPC service on")
	minContributors := fs.Int("min-contributors", 0, "m_min: refuse to decrypt sums of fewer updates (at least 2)")
	certFile := fs.String("tls-cert", "", "server certificate (PEM) for mutual TLS")
	keyFile := fs.String("tls-key", "", "server private key (PEM) for mutual TLS")
	clientCA := fs.String("client-ca", "", "CA certificates (PEM) that the coordinator's client certificate must chain to")
	logLevel := slog.LevelInfo
	fs.TextVar(&logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := trusteeNoArgs("serve", fs.Args()); err != nil {
		return err
	}
	if err := trusteeRequireFlag("serve", "dir", *dir); err != nil {
		return err
	}
	if *minContributors < 2 {
		return fmt.Errorf("trustee serve: --min-contributors %d: must be at least 2 (set it to the deployment's m_min)", *minContributors)
	}
	creds, err := trusteeServerCredentials(*listen, *certFile, *keyFile, *clientCA)
	if err != nil {
		return err
	}
	share, err := trustee.LoadShare(he.DefaultParams(), filepath.Join(*dir, trustee.ShareFile))
	if err != nil {
		return fmt.Errorf("trustee serve: --dir: %w", err)
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: logLevel})).With("trustee", share.TrusteeID())
	srv, err := trustee.NewServer(trustee.Config{
		Share:           share,
		MinContributors: *minContributors,
		Journal:         trustee.FileJournal{Path: filepath.Join(*dir, trustee.JournalFile)},
		Logger:          logger,
	})
	if err != nil {
		return fmt.Errorf("trustee serve: %w", err)
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("trustee serve: --listen: %w", err)
	}
	opts := trustee.ServerOptions()
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	gs := grpc.NewServer(opts...)
	vigilv1.RegisterTrusteeServer(gs, srv)
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	fmt.Fprintf(stdout, "trustee %s (point %d, key epoch %d, %d-of-%d) listening on %s\n",
		share.TrusteeID(), share.Point, share.Epoch, share.Threshold, len(share.Trustees), lis.Addr())
	select {
	case <-ctx.Done():
		gs.GracefulStop()
		return nil
	case err := <-served:
		return fmt.Errorf("trustee serve: %w", err)
	}
}

// trusteeServerCredentials returns mutual-TLS credentials from the flags, or nil for a loopback
// address without them. A trustee must answer only its coordinator, so serving on any other
// address without client authentication is refused.
func trusteeServerCredentials(listen, certFile, keyFile, caFile string) (credentials.TransportCredentials, error) {
	if certFile == "" && keyFile == "" && caFile == "" {
		host, _, err := net.SplitHostPort(listen)
		if err != nil {
			return nil, fmt.Errorf("trustee serve: --listen %q: %w", listen, err)
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("trustee serve: --listen %s is not a loopback address: pass --tls-cert, --tls-key and --client-ca so that only the coordinator can ask for decryptions", listen)
		}
		return nil, nil
	}
	if certFile == "" || keyFile == "" || caFile == "" {
		return nil, errors.New("trustee serve: mutual TLS needs all of --tls-cert, --tls-key and --client-ca")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("trustee serve: --tls-cert/--tls-key: %w", err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("trustee serve: --client-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("trustee serve: --client-ca %s: no PEM certificates", caFile)
	}
	return credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}), nil
}
