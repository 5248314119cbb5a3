package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/vigilauth/vigil/audit"
	"github.com/vigilauth/vigil/siem"
)

const siemUsage = `usage: vigil siem <subcommand> [flags]

subcommands:
  send   deliver a spool, or a decision log, to a Splunk HEC endpoint and/or a syslog-over-TLS receiver
  check  check OCSF events (JSON lines: a spool segment, a collector's export) against the schema's rules
`

// runSIEM implements "vigil siem".
func runSIEM(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, siemUsage)
		return errors.New("siem: missing subcommand (send or check)")
	}
	switch args[0] {
	case "send":
		return runSIEMSend(ctx, args[1:], stdout, stderr)
	case "check":
		return runSIEMCheck(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stderr, siemUsage)
		return flag.ErrHelp
	}
	fmt.Fprint(stderr, siemUsage)
	return fmt.Errorf("siem: unknown subcommand %q", args[0])
}

func runSIEMSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("siem send", stdout)
	spool := fs.String("spool", "", "the spool `DIR` to deliver (an agent's, or a new one for --log)")
	hecURL := fs.String("hec", "", "Splunk HEC endpoint `URL` (https://host:8088; /services/collector/event is added)")
	tokenFile := fs.String("token-file", "", "`FILE` holding the HEC token")
	syslogAddr := fs.String("syslog", "", "syslog-over-TLS receiver `HOST:PORT` (RFC 5425)")
	caFile := fs.String("ca", "", "PEM `FILE` of the CA certificates that sign the collectors' certificates (default: the system's)")
	clientCert := fs.String("client-cert", "", "PEM `FILE`: a client certificate for collectors that require one (mutual TLS), with --client-key")
	clientKey := fs.String("client-key", "", "PEM `FILE`: the client certificate's private key")
	logPath := fs.String("log", "", "a decision log (JSON lines) `FILE` to spool and deliver")
	keyPath := fs.String("key", "", "with --log: the ML-DSA-65 public key `FILE` its checkpoints verify under; the log is verified before anything is sent")
	service := fs.String("service", "", "service.name of Authentication events: the application the guard protects (default vigil)")
	host := fs.String("host", "", "the host that made the decisions, under unmapped.vigil.host")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up if the collectors have not acknowledged everything by then")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return unexpectedArgument("siem send", fs)
	case *spool == "":
		return errors.New("siem send: --spool is required")
	case *keyPath != "" && *logPath == "":
		return errors.New("siem send: --key verifies --log; give --log")
	case *timeout <= 0:
		return errors.New("siem send: --timeout must be positive")
	}
	if *logPath == "" {
		// Without --log there is nothing to spool: the spool must be one an agent wrote, or a
		// mistyped name became an empty spool and waited out --timeout.
		switch fi, err := os.Stat(*spool); {
		case errors.Is(err, os.ErrNotExist) || err == nil && !fi.IsDir():
			return fmt.Errorf("siem send: --spool %s is not a spool directory (give --log FILE to spool a decision log into a new one)", *spool)
		case err != nil:
			return fmt.Errorf("siem send: --spool: %w", err)
		}
	}
	cfg, err := siemConfig("--", *spool, *hecURL, *tokenFile, *syslogAddr, *caFile, *clientCert, *clientKey)
	if err != nil {
		return fmt.Errorf("siem send: %w", err)
	}
	cfg.Source = siem.Source{Service: *service, Host: *host}
	// Each failed attempt says why (a 403 for a wrong token, an unknown certificate
	// authority): without it, all a wrong --token-file or --ca showed was the deadline.
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	exp, err := siem.New(cfg)
	if err != nil {
		return fmt.Errorf("siem send: %w", flagNamed("--", err))
	}
	if *logPath != "" {
		n, err := spoolLog(exp, *logPath, *keyPath, stderr)
		if err != nil {
			exp.Close()
			return fmt.Errorf("siem send: %w", err)
		}
		fmt.Fprintf(stdout, "spooled %d events from %s\n", n, *logPath)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := exp.Deliver(ctx); err != nil {
		var de *siem.DeliveryError
		if errors.As(err, &de) && (de.Status == http.StatusUnauthorized || de.Status == http.StatusForbidden) {
			return fmt.Errorf("siem send: not everything in %s was acknowledged: %w (the collector does not take the token in --token-file)", *spool, err)
		}
		return fmt.Errorf("siem send: not everything in %s was acknowledged: %w", *spool, err)
	}
	fmt.Fprintf(stdout, "delivered everything in %s\n", *spool)
	return nil
}

// siemConfig builds an exporter's configuration from flag values; errors name the flags,
// which are prefix+"spool", prefix+"hec" and so on.
func siemConfig(prefix, spool, hecURL, tokenFile, syslogAddr, caFile, certFile, keyFile string) (siem.Config, error) {
	switch {
	case hecURL == "" && syslogAddr == "":
		return siem.Config{}, fmt.Errorf("give %shec, %ssyslog or both", prefix, prefix)
	case hecURL != "" && tokenFile == "":
		return siem.Config{}, fmt.Errorf("%shec needs %stoken-file", prefix, prefix)
	case hecURL == "" && tokenFile != "":
		return siem.Config{}, fmt.Errorf("%stoken-file without %shec", prefix, prefix)
	}
	cfg := siem.Config{Dir: spool}
	var certs []tls.Certificate
	switch {
	case (certFile == "") != (keyFile == ""):
		return cfg, fmt.Errorf("%sclient-cert and %sclient-key go together", prefix, prefix)
	case certFile != "":
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return cfg, fmt.Errorf("%sclient-cert/%sclient-key: %w", prefix, prefix, err)
		}
		certs = []tls.Certificate{c}
	}
	var pool *x509.CertPool
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return cfg, fmt.Errorf("%sca: %w", prefix, err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return cfg, fmt.Errorf("%sca %s: no PEM certificate in it", prefix, caFile)
		}
	}
	if hecURL != "" {
		token, err := os.ReadFile(tokenFile)
		if err != nil {
			return cfg, fmt.Errorf("%stoken-file: %w", prefix, err)
		}
		cfg.HEC = &siem.HECConfig{URL: hecURL, Token: strings.TrimSpace(string(token)), RootCAs: pool, Certificates: certs}
	}
	if syslogAddr != "" {
		cfg.Syslog = &siem.SyslogConfig{Addr: syslogAddr, RootCAs: pool, Certificates: certs}
	}
	return cfg, nil
}

// flagNamed rewords the library's field names as the flags that set them.
func flagNamed(prefix string, err error) error {
	if !errors.Is(err, siem.ErrConfig) {
		return err
	}
	r := strings.NewReplacer("HEC.URL", prefix+"hec", "HEC.Token", prefix+"token-file", "Syslog.Addr", prefix+"syslog",
		"Dir (the spool directory)", prefix+"spool")
	return fmt.Errorf("%w: %s", siem.ErrConfig, r.Replace(strings.TrimPrefix(err.Error(), siem.ErrConfig.Error()+": ")))
}

// spoolLog verifies the log at path (if keyPath is set) and spools its records. The file is
// read once, so what is sent is what was verified.
func spoolLog(exp *siem.Exporter, path, keyPath string, stderr io.Writer) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("--log: %w", err)
	}
	if keyPath != "" {
		v, err := loadVerifier(keyPath)
		if err != nil {
			return 0, fmt.Errorf("--key %s: %w", keyPath, err)
		}
		if _, err := audit.Verify(bytes.NewReader(data), v); err != nil {
			return 0, fmt.Errorf("--log %s does not verify, nothing sent: %w", path, err)
		}
	} else {
		fmt.Fprintf(stderr, "vigil siem send: --log %s is sent without verification (no --key)\n", path)
	}
	var recs []audit.Record
	total, line := 0, 0
	for text := range bytes.Lines(data) {
		line++
		r, err := audit.DecodeRecord(text)
		if err != nil {
			return total, fmt.Errorf("--log %s: line %d: %w", path, line, err)
		}
		if recs = append(recs, r); len(recs) == 1000 {
			n, err := exp.AppendRecords(recs)
			if total += n; err != nil {
				return total, err
			}
			recs = recs[:0]
		}
	}
	n, err := exp.AppendRecords(recs)
	return total + n, err
}

// runSIEMCheck checks every line of a file of OCSF events, bare or in HEC's envelope, with
// siem.Validate and names the first that fails.
func runSIEMCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("siem check", stdout)
	path := fs.String("file", "", "a `FILE` of OCSF events, one JSON object per line, bare or in Splunk HEC's envelope (as vigil siem send --hec posts them)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return unexpectedArgument("siem check", fs)
	case *path == "":
		return errors.New("siem check: --file is required")
	}
	data, err := os.ReadFile(*path)
	if err != nil {
		return fmt.Errorf("siem check: --file: %w", err)
	}
	n, wrapped := 0, 0
	for line := range bytes.Lines(data) {
		n++
		event, enveloped, err := siem.EventOf(line)
		if err == nil {
			err = siem.Validate(event)
		}
		if enveloped {
			wrapped++
			if err != nil {
				err = fmt.Errorf("in its HEC envelope: %w", err)
			}
		}
		if err != nil {
			return fmt.Errorf("siem check: %s: line %d: %w", *path, n, err)
		}
	}
	fmt.Fprintf(stdout, "%s: %d events satisfy the OCSF rules for their classes", *path, n)
	if wrapped > 0 {
		fmt.Fprintf(stdout, " (%d in HEC envelopes)", wrapped)
	}
	fmt.Fprintln(stdout)
	return nil
}
