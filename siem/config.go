package siem

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config configures an Exporter. Dir and at least one of HEC and Syslog are required; every
// other zero field means its default (limits.go).
type Config struct {
	// Dir is the spool directory (created 0700 if absent). Reopening the same directory after
	// a restart resends what was not acknowledged.
	Dir string
	// HEC sends to a Splunk HTTP Event Collector or a compatible endpoint.
	HEC *HECConfig
	// Syslog sends RFC 5424 messages over TLS.
	Syslog *SyslogConfig
	// Source names the product version, the guarded service and the host in every event.
	Source Source

	QueueSize     int   // entries between Enqueue and the spool writer
	MaxSpoolBytes int64 // bound on the spool's segments on disk
	SegmentBytes  int64 // segment size at which a new segment starts
	BatchEvents   int   // events per delivery
	BatchBytes    int   // bytes per delivery (at least MaxEventBytes)
	RetryMin      time.Duration
	RetryMax      time.Duration

	// Registerer receives the exporter's metrics (vigil_siem_*); nil registers nowhere.
	Registerer prometheus.Registerer
	// Logger receives delivery failures; nil discards them.
	Logger *slog.Logger
	// Clock returns the current time (default time.Now).
	Clock func() time.Time
}

// HECConfig is a Splunk HTTP Event Collector (or compatible) endpoint.
type HECConfig struct {
	// URL is https://host[:port], to which /services/collector/event is added, or the full
	// endpoint URL. Plain http is refused.
	URL string
	// Token is the HEC token, sent as "Authorization: Splunk <token>".
	Token string
	// RootCAs verify the collector's certificate; nil means the system's roots.
	RootCAs *x509.CertPool
	// Certificates are presented to a collector that asks for a client certificate.
	Certificates []tls.Certificate
	// SourceType and Index are HEC's sourcetype (default "ocsf") and index (default: the
	// token's).
	SourceType string
	Index      string
	// Timeout bounds one request (default DefaultTimeout).
	Timeout time.Duration
}

// SyslogConfig is a syslog receiver over TLS (RFC 5425).
type SyslogConfig struct {
	// Addr is host:port of the receiver (6514 is the registered port).
	Addr string
	// RootCAs verify the receiver's certificate; nil means the system's roots.
	RootCAs *x509.CertPool
	// Certificates are presented to a receiver that asks for a client certificate.
	Certificates []tls.Certificate
	// Hostname is the HOSTNAME field of each message (default Source.Host, else "-").
	Hostname string
	// Confirm is how long the connection must stay up after a batch before the batch counts
	// as delivered (default DefaultSyslogConfirm): syslog has no acknowledgement, and a
	// receiver that goes away loses what sat in its buffers.
	Confirm time.Duration
	// Timeout bounds one dial or write (default DefaultTimeout).
	Timeout time.Duration
}

func configError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
}

func (c *Config) validate() error {
	switch {
	case c.Dir == "":
		return configError("Dir (the spool directory) is required")
	case c.HEC == nil && c.Syslog == nil:
		return configError("no collector: set HEC, Syslog or both")
	case c.QueueSize < 0, c.MaxSpoolBytes < 0, c.SegmentBytes < 0, c.BatchEvents < 0, c.BatchBytes < 0,
		c.RetryMin < 0, c.RetryMax < 0:
		return configError("sizes and durations must not be negative")
	}
	setDefault(&c.QueueSize, DefaultQueueSize)
	setDefault(&c.MaxSpoolBytes, DefaultMaxSpoolBytes)
	setDefault(&c.SegmentBytes, DefaultSegmentBytes)
	setDefault(&c.BatchEvents, DefaultBatchEvents)
	setDefault(&c.BatchBytes, DefaultBatchBytes)
	setDefault(&c.RetryMin, DefaultRetryMin)
	setDefault(&c.RetryMax, DefaultRetryMax)
	switch {
	case c.SegmentBytes < MinSegmentBytes:
		return configError("SegmentBytes %d is below %d", c.SegmentBytes, MinSegmentBytes)
	case c.MaxSpoolBytes < 2*c.SegmentBytes:
		return configError("MaxSpoolBytes %d is less than two segments (%d)", c.MaxSpoolBytes, 2*c.SegmentBytes)
	case c.BatchBytes < MaxEventBytes:
		return configError("BatchBytes %d is below one event's limit %d", c.BatchBytes, MaxEventBytes)
	case c.RetryMax < c.RetryMin:
		return configError("RetryMax %v is below RetryMin %v", c.RetryMax, c.RetryMin)
	}
	if c.HEC != nil {
		if err := c.HEC.validate(); err != nil {
			return err
		}
	}
	if c.Syslog != nil {
		if err := c.Syslog.validate(c.Source.Host); err != nil {
			return err
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

func (h *HECConfig) validate() error {
	u, err := url.Parse(h.URL)
	switch {
	case h.URL == "":
		return configError("HEC.URL is required")
	case err != nil:
		return configError("HEC.URL %q: %v", h.URL, err)
	case u.Scheme != "https":
		return configError("HEC.URL %q: the scheme must be https (events carry user names)", h.URL)
	case u.Host == "":
		return configError("HEC.URL %q has no host", h.URL)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return configError("HEC.URL %q: no credentials, query or fragment; the token goes in HEC.Token", h.URL)
	case h.Token == "":
		return configError("HEC.Token is required")
	case strings.ContainsAny(h.Token, " \t\r\n"):
		return configError("HEC.Token contains white space")
	case h.Timeout < 0:
		return configError("HEC.Timeout is negative")
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/services/collector/event"
	}
	h.URL = u.String()
	setDefault(&h.SourceType, "ocsf")
	setDefault(&h.Timeout, DefaultTimeout)
	return nil
}

func (s *SyslogConfig) validate(host string) error {
	if s.Addr == "" {
		return configError("Syslog.Addr is required")
	}
	h, port, err := net.SplitHostPort(s.Addr)
	switch {
	case err != nil:
		return configError("Syslog.Addr %q: %v", s.Addr, err)
	case h == "" || port == "":
		return configError("Syslog.Addr %q: want host:port", s.Addr)
	case s.Confirm < 0 || s.Timeout < 0:
		return configError("Syslog.Confirm and Syslog.Timeout must not be negative")
	}
	if s.Hostname == "" {
		s.Hostname = host
	}
	if s.Hostname == "" {
		s.Hostname = "-"
	}
	if len(s.Hostname) > 255 || strings.IndexFunc(s.Hostname, func(r rune) bool { return r < 33 || r > 126 }) >= 0 {
		// RFC 5424 section 6.2.4: HOSTNAME is 1*255PRINTUSASCII.
		return configError("Syslog.Hostname %q: at most 255 printable ASCII characters without spaces", s.Hostname)
	}
	setDefault(&s.Confirm, DefaultSyslogConfirm)
	setDefault(&s.Timeout, DefaultTimeout)
	return nil
}
