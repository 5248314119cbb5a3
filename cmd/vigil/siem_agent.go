package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilauth/vigil/guard"
	"github.com/vigilauth/vigil/siem"
)

// siemFlags are a long-running command's flags for exporting its decisions to a SIEM (the
// agent's --siem-*).
type siemFlags struct {
	spool, hec, tokenFile, syslog, ca, cert, key, service, metrics *string
}

func addSIEMFlags(fs *flag.FlagSet) *siemFlags {
	return &siemFlags{
		spool:     fs.String("siem-spool", "", "export decisions to a SIEM as OCSF, spooled durably in `DIR` (with --siem-hec and/or --siem-syslog)"),
		hec:       fs.String("siem-hec", "", "Splunk HEC endpoint `URL` for --siem-spool"),
		tokenFile: fs.String("siem-token-file", "", "`FILE` holding the HEC token"),
		syslog:    fs.String("siem-syslog", "", "syslog-over-TLS receiver `HOST:PORT` for --siem-spool"),
		ca:        fs.String("siem-ca", "", "PEM `FILE` of the CAs that sign the collectors' certificates (default: the system's)"),
		cert:      fs.String("siem-client-cert", "", "PEM `FILE`: a client certificate for collectors that require one, with --siem-client-key"),
		key:       fs.String("siem-client-key", "", "PEM `FILE`: the client certificate's private key"),
		service:   fs.String("siem-service", "", "service.name in the events: the application the guard protects"),
		metrics:   fs.String("siem-metrics", "", "serve the exporter's Prometheus metrics (vigil_siem_*) at http://`ADDR`/metrics"),
	}
}

// start opens the exporter and runs it until stop is called; stop waits until everything
// recorded before it is in the spool. Without --siem-spool it returns a nil Recorder and a stop
// that does nothing. The exporter's failures go to logger.
func (f *siemFlags) start(logger *slog.Logger) (rec guard.Recorder, stop func(), err error) {
	noop := func() {}
	if *f.spool == "" {
		if *f.hec != "" || *f.syslog != "" || *f.tokenFile != "" || *f.metrics != "" {
			return nil, noop, fmt.Errorf("--siem-hec, --siem-syslog, --siem-token-file and --siem-metrics need --siem-spool")
		}
		return nil, noop, nil
	}
	cfg, err := siemConfig("--siem-", *f.spool, *f.hec, *f.tokenFile, *f.syslog, *f.ca, *f.cert, *f.key)
	if err != nil {
		return nil, noop, err
	}
	host, _ := os.Hostname()
	cfg.Source, cfg.Logger = siem.Source{Service: *f.service, Host: host}, logger
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	exp, err := siem.New(cfg)
	if err != nil {
		return nil, noop, flagNamed("--siem-", err)
	}
	stopMetrics := func() {}
	if *f.metrics != "" {
		var bound string
		if stopMetrics, bound, err = serveMetrics(*f.metrics, reg, false); err != nil {
			exp.Close()
			return nil, noop, fmt.Errorf("--siem-metrics: %w", err)
		}
		logger.Info("SIEM exporter metrics", "url", "http://"+bound+"/metrics")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := exp.Run(ctx); err != nil {
			logger.Error("SIEM export stopped; decisions are counted as dropped from now on", "err", err)
		}
	}()
	return exp, func() { cancel(); <-done; stopMetrics() }, nil
}
