package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"google.golang.org/grpc"

	"github.com/vigilauth/vigil/crypto/he"
	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/internal/rpcmetrics"
	"github.com/vigilauth/vigil/internal/transport"
	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/trustee"
)

func runTrusteeServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newTrusteeFlags("serve", stdout)
	dir := fs.String("dir", "", "the trustee's directory: share.key (mode 0600) and the journal")
	listen := fs.String("listen", "127.0.0.1:7171", "address to serve the Trustee gRPC service on")
	minContributors := fs.Int("min-contributors", 0, "m_min: refuse to decrypt sums of fewer updates (at least 2)")
	rootPath := fs.String("root", "", "the organisation's pinned root of trust (root.json): device records must verify under its enrolment role and commitments under its trustees role (required)")
	pkiDir := fs.String("pki-dir", "", "`directory` with this trustee's TLS credentials (key.pem, cert.pem, ca.pem, revoked.json), as vigil pki issue-trustee or vigil setup write them (required unless --insecure-plaintext)")
	plaintext := fs.Bool("insecure-plaintext", false, "serve WITHOUT TLS, on a loopback address only: anyone on the host can ask for decryptions (debugging only)")
	partMiB := fs.Int64("part-mib", trustee.DefaultPartBytes>>20, "memory in `MiB` set aside for the parts of rounds that coordinator-tier frontends hand over (about 1.7 MiB each at 100,000 parameters, two per frontend at a time)")
	metricsListen := fs.String("metrics-listen", "", "HTTP address for Prometheus /metrics, /healthz and /readyz (empty: off)")
	logLevel := slog.LevelInfo
	fs.TextVar(&logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := trusteeNoArgs("serve", fs); err != nil {
		return err
	}
	if err := trusteeRequireFlag("serve", "dir", *dir); err != nil {
		return err
	}
	if *minContributors < 2 {
		return fmt.Errorf("trustee serve: --min-contributors %d: must be at least 2 (set it to the deployment's m_min)", *minContributors)
	}
	if *partMiB < 1 || *partMiB > 1<<20 {
		return fmt.Errorf("trustee serve: --part-mib %d: want 1 to %d", *partMiB, 1<<20)
	}
	if err := trusteePlaintextCheck(*pkiDir, *plaintext); err != nil {
		return err
	}
	unlock, err := lockTrusteeDir(*dir)
	if err != nil {
		return fmt.Errorf("trustee serve: --dir: %w", err)
	}
	defer unlock()
	share, err := trustee.LoadShare(he.DefaultParams(), filepath.Join(*dir, trustee.ShareFile))
	if err != nil {
		return fmt.Errorf("trustee serve: --dir: %w", err)
	}
	serverOpts, tlsConfig, revs, err := trusteeServerOptions(*listen, *pkiDir, *dir, share.TrusteeID())
	if err != nil {
		return err
	}
	logger := newLogger(stderr, logLevel).With("trustee", share.TrusteeID())
	if *plaintext {
		logger.Warn("serving WITHOUT TLS (--insecure-plaintext): anyone on this host can ask for decryptions")
	}
	cfg := trustee.Config{
		Share:           share,
		MinContributors: *minContributors,
		Journal: trustee.FileJournal{
			Path:   filepath.Join(*dir, trustee.JournalFile),
			Marker: filepath.Join(*dir, trustee.MarkerFile),
		},
		Logger:    logger,
		PartBytes: *partMiB << 20,
	}
	if err := trusteeRequireFlag("serve", "root", *rootPath); err != nil {
		return err
	}
	data, err := trustee.ReadPublicFile(*rootPath)
	if err != nil {
		return fmt.Errorf("trustee serve: --root: %w", err)
	}
	if cfg.Root, err = release.ParseTrustedRoot(data); err != nil {
		return fmt.Errorf("trustee serve: --root %s: %w", *rootPath, err)
	}
	if cfg.Signer, err = trusteeSigningKey(*dir); err != nil {
		return fmt.Errorf("trustee serve: %w", err)
	}
	srv, err := trustee.NewServer(cfg)
	if errors.Is(err, trustee.ErrJournalMissing) {
		return fmt.Errorf("trustee serve: %w\n  Restore %s from the trustee's backup and start again. Do not delete %s:\n  a trustee without its journal could be made to decrypt rounds it has already decrypted", err,
			cfg.Journal.(trustee.FileJournal).Path, cfg.Journal.(trustee.FileJournal).Marker)
	}
	if err != nil {
		return fmt.Errorf("trustee serve: %w", err)
	}
	var lis net.Listener
	if lis, err = net.Listen("tcp", *listen); err != nil {
		return fmt.Errorf("trustee serve: --listen: %w", err)
	}
	if tlsConfig != nil {
		// The handshake is done by a split listener, which bounds the connections still in
		// theirs and admits only the coordinator's, so that strangers, or devices with their
		// certificates, holding connections open cannot keep the coordinator out.
		tcp := lis
		if lis, err = transport.TrusteeListener(tcp, tlsConfig, revs, pki.ListenerConfig{}); err != nil {
			tcp.Close()
			return fmt.Errorf("trustee serve: %w", err)
		}
	}
	reg := newRoleRegistry()
	rpcm, err := rpcmetrics.New(reg, "server")
	if err != nil {
		return fmt.Errorf("trustee serve: metrics: %w", err)
	}
	rpcm.Logger = logger // every refused or failed call names its caller's method and reason
	var ready readiness
	if *metricsListen != "" {
		stop, addr, err := serveOps(*metricsListen, reg, &ready, false)
		if err != nil {
			return fmt.Errorf("trustee serve: --metrics-listen: %w", err)
		}
		defer stop()
		fmt.Fprintf(stdout, "metrics on http://%s/metrics\nhealth on http://%s/healthz and /readyz\n", addr, addr)
	}
	gs := grpc.NewServer(append(append(rpcm.ServerOptions(), trustee.ServerOptions()...), serverOpts...)...)
	vigilv1.RegisterTrusteeServer(gs, srv)
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	ready.set(nil)
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

// trusteeSigningKey returns the key the trustee signs its commitments with: its ceremony
// identity's ML-DSA-65 key (identity.key in dir), which the root's trustees role lists.
func trusteeSigningKey(dir string) (*sig.PrivateKey, error) {
	path := filepath.Join(dir, trustee.IdentityFile)
	data, err := trustee.ReadSecretFile(path)
	if err != nil {
		return nil, fmt.Errorf("the commitment-signing key: %w", err)
	}
	ident, err := he.ParseIdentity(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ident.SigningKey()
}

// trusteeServerOptions returns the trustee's transport: mutual TLS with the credentials in
// pkiDir (from `vigil pki issue-trustee` or `vigil setup`), required at the handshake, and pki's
// guard, which admits only the coordinator's certificate and checks the trustee's revocation
// list. It returns the TLS configuration for a pki.Split, whose connections the options expect.
// Without pkiDir the trustee serves in the clear, which is allowed only on a loopback address.
// The certificate must name trustee id, whose share dir holds, as `vigil preflight --kit`
// checks a kit: the coordinator expects that name at the trustee's address, and under another
// trustee's certificate the trustee would start, report ready and never be reached.
func trusteeServerOptions(listen, pkiDir, dir, id string) ([]grpc.ServerOption, *tls.Config, *pki.Revocations, error) {
	if pkiDir == "" {
		host, _, err := net.SplitHostPort(listen)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("trustee serve: --listen %q: %w", listen, err)
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, nil, nil, fmt.Errorf("trustee serve: --listen %s is not a loopback address: pass --pki-dir so that only the coordinator can ask for decryptions", listen)
		}
		return nil, nil, nil, nil
	}
	creds, err := pki.LoadCredentials(pkiDir)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("trustee serve: --pki-dir: %w", err)
	}
	owner, err := creds.Verify(time.Now())
	if err != nil {
		return nil, nil, nil, fmt.Errorf("trustee serve: --pki-dir %s: %w", pkiDir, err)
	}
	if want := pki.Trustee(id); owner != want {
		return nil, nil, nil, fmt.Errorf("trustee serve: --pki-dir %s: its certificate names %s, but --dir %s holds trustee %q's share: the coordinator expects %s at this trustee's address and could never connect (give trustee %s's --pki-dir)",
			pkiDir, owner, dir, id, want, id)
	}
	revs, err := pki.OpenRevocations(filepath.Join(pkiDir, pki.RevocationsFile))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("trustee serve: --pki-dir: %w", err)
	}
	opts, err := transport.Trustee(revs)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("trustee serve: %w", err)
	}
	return append(opts, grpc.Creds(pki.Handshaken())), pki.ServerMutualTLS(creds.TLSCertificate(), creds.RootPool()), revs, nil
}
