package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/vigilauth/vigil/console"
	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/crypto/he"
	"github.com/vigilauth/vigil/crypto/sig"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
)

// runConsole implements "vigil console": the read-only web pages, behind mutual TLS.
func runConsole(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("console", stdout, envMinIO...)
	listen := fs.String("listen", "127.0.0.1:7420", "HTTPS `ADDR` to serve on")
	certPath := fs.String("tls-cert", "", "the console's certificate chain, PEM `FILE`")
	keyPath := fs.String("tls-key", "", "the console's private key, PEM `FILE`")
	clientCA := fs.String("client-ca", "", "PEM `FILE` of the CA whose client certificates may read the console (mutual TLS; required)")
	logPath := fs.String("log", "", "the decision log to show `FILE`")
	auditKey := fs.String("key", "", "the ML-DSA-65 public key `FILE` the log's checkpoints verify under")
	spool := fs.String("spool", "", "a SIEM exporter's spool `DIR` whose backlog to show (optional)")
	state := fs.String("state", "", "the coordinator's state `DIR` (its --dir/state) to read rounds and devices from, read-only (when not using --operator)")
	var a adminFlags
	a.register(fs)
	releaseRoot := fs.String("root", "", "the pinned root of trust `FILE` (root.json) to verify the regions' releases (with --region) and the key epochs' signatures under")
	var keyEpochs listFlag
	fs.Var(&keyEpochs, "key-epoch", "a signed key-epoch document `FILE` to show with its signatures (the organisation's key-epoch.json, a region's keyepochs/N.json; repeatable)")
	rosterPath := fs.String("roster", "", "the key ceremony's roster `FILE` (roster.bin), to name the trustees who signed the key epochs")
	var regions listFlag
	fs.Var(&regions, "region", "a release region `LOCATION` (directory or s3://) to check as devices do (repeatable; needs --root)")
	reportDir := fs.String("report-dir", "", "the coordinator's `DIR` (with state/ and store/) to build the signed privacy report from, offered as a download (with --report-key)")
	reportKey := fs.String("report-key", "", "the ML-DSA-65 private key `FILE` that signs the privacy report (vigil release keygen)")
	var ledgers listFlag
	fs.Var(&ledgers, "ledger", "a privacy ledger `FILE` to show privacy reviewers (repeatable: the coordinator's per model, a device's)")
	tradeoff := fs.String("tradeoff", "", "accuracy against epsilon to plot on the privacy page beside the ledgers' epsilon: the `FILE` vigil privacy tradeoff --json writes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return unexpectedArgument("console", fs)
	case *certPath == "" || *keyPath == "":
		return errors.New("console: --tls-cert and --tls-key are required")
	case *clientCA == "":
		return errors.New("console: --client-ca is required: the console is served to client certificates only")
	case *logPath == "":
		return errors.New("console: --log is required")
	case *auditKey == "":
		return errors.New("console: --key is required")
	}
	cert, err := tls.LoadX509KeyPair(*certPath, *keyPath)
	if err != nil {
		return fmt.Errorf("console: --tls-cert/--tls-key: %w", err)
	}
	pem, err := os.ReadFile(*clientCA)
	if err != nil {
		return fmt.Errorf("console: --client-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("console: --client-ca %s: no PEM certificate in it", *clientCA)
	}
	v, err := loadVerifier(*auditKey)
	if err != nil {
		return fmt.Errorf("console: --key %s: %w", *auditKey, err)
	}
	if err := regularFile(*logPath); err != nil {
		return fmt.Errorf("console: --log: %w", err)
	}
	for _, l := range ledgers {
		if err := regularFile(l); err != nil {
			return fmt.Errorf("console: --ledger: %w", err)
		}
	}
	if *tradeoff != "" {
		// Checked now so that a wrong file fails at start; the page reads it again on each load.
		if _, err := console.ReadTradeoff(*tradeoff); err != nil {
			return fmt.Errorf("console: --tradeoff: %w", err)
		}
	}
	cfg := console.Config{LogPath: *logPath, Verifier: v, SpoolDir: *spool, Ledgers: ledgers, Tradeoff: *tradeoff}
	switch {
	case a.operator != "":
		// The Admin API knows what only a running coordinator knows: trustees' health,
		// regions' publishing, last seen. One connection serves every page.
		api, closeConn, err := a.dial("console")
		if err != nil {
			return err
		}
		defer closeConn()
		cfg.StatusSource = "the Admin API at " + a.addr
		cfg.Status = func(ctx context.Context) (*vigilv1.StatusResponse, error) {
			return api.Status(ctx, &vigilv1.StatusRequest{})
		}
	case *state != "":
		if _, err := coordinator.ReadStatus(*state); err != nil {
			if _, serr := coordinator.ReadStatus(filepath.Join(*state, "state")); serr == nil {
				return fmt.Errorf("console: --state %s: %w; the state directory is the coordinator's --dir/state: %s", *state, err, filepath.Join(*state, "state"))
			}
			return fmt.Errorf("console: --state: %w (the coordinator's --dir/state)", err)
		}
		cfg.StatusSource, cfg.StatusPartial = "the state directory "+*state, true
		cfg.Status = func(context.Context) (*vigilv1.StatusResponse, error) { return coordinator.ReadStatus(*state) }
	}
	if *releaseRoot != "" {
		data, err := os.ReadFile(*releaseRoot)
		if err != nil {
			return fmt.Errorf("console: --root: %w", err)
		}
		if cfg.TrustRoot, err = release.ParseTrustedRoot(data); err != nil {
			return fmt.Errorf("console: --root %s: %w", *releaseRoot, err)
		}
	}
	for _, k := range keyEpochs {
		if _, err := os.Stat(k); err != nil {
			return fmt.Errorf("console: --key-epoch: %w", err)
		}
	}
	cfg.KeyEpochs = keyEpochs
	if *rosterPath != "" {
		if cfg.Signers, err = rosterSigners(*rosterPath); err != nil {
			return fmt.Errorf("console: --roster %s: %w", *rosterPath, err)
		}
	}
	if len(regions) > 0 {
		if *releaseRoot == "" {
			return errors.New("console: --region needs --root, the release root devices pin")
		}
		args := append([]string{"-root", *releaseRoot}, regions...)
		cfg.ReleaseStatus = func(ctx context.Context) (string, error) {
			var out bytes.Buffer
			err := runReleaseStatus(ctx, args, &out, io.Discard)
			return out.String(), err
		}
	}
	if (*reportDir == "") != (*reportKey == "") {
		return errors.New("console: --report-dir and --report-key go together")
	}
	if *reportKey != "" {
		key, err := sig.ReadPrivateKeyFile(*reportKey)
		if err != nil {
			return fmt.Errorf("console: --report-key: %w", err)
		}
		dir := *reportDir
		cfg.PrivacyReport = func(ctx context.Context) ([]byte, []byte, error) { return signedReport(ctx, dir, key) }
	}
	h, err := console.New(cfg)
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("console: --listen: %w", err)
	}
	srv := &http.Server{
		Handler: h,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert,
			ClientCAs: pool, MinVersion: tls.VersionTLS13},
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: time.Minute, IdleTimeout: time.Minute,
	}
	fmt.Fprintf(stdout, "vigil console on https://%s/ (client certificates from %s)\n", lis.Addr(), *clientCA)
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(lis, "", "") }()
	select {
	case err := <-done:
		return fmt.Errorf("console: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		return nil
	}
}

// rosterSigners names the trustees' ceremony signing keys, the trustees role's keys, from a
// key ceremony's roster.
func rosterSigners(path string) (map[sig.KeyID]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	roster, err := he.ParseRoster(he.DefaultParams(), data)
	if err != nil {
		return nil, err
	}
	names := map[sig.KeyID]string{}
	for _, m := range roster.Members {
		pk, err := sig.ParsePublicKey(m.Sign)
		if err != nil {
			return nil, fmt.Errorf("trustee %s: %w", m.ID, err)
		}
		names[pk.ID()] = m.ID
	}
	return names, nil
}

// signedReport builds the privacy report of the coordinator in dir as `vigil privacy report
// --html --sign-key` writes it: the page and its detached signature.
func signedReport(ctx context.Context, dir string, key *sig.PrivateKey) (page, signature []byte, err error) {
	rep, err := buildReport(ctx, dir, "", 0, 0)
	if err != nil {
		return nil, nil, err
	}
	var b bytes.Buffer
	if err := reportHTML.Execute(&b, rep); err != nil {
		return nil, nil, err
	}
	if signature, err = key.Sign(b.Bytes(), reportSignatureContext); err != nil {
		return nil, nil, fmt.Errorf("signing: %w", err)
	}
	return b.Bytes(), signature, nil
}

// regularFile checks that path names a file, not a directory, at start: the pages would
// otherwise say so only once someone opened them.
func regularFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a file", path)
	}
	return nil
}
