package siem

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"time"
)

// syslogFacility is RFC 5424's facility 10, security/authorization messages.
const syslogFacility = 10

// syslogSeverity maps an OCSF severity_id to an RFC 5424 severity.
func syslogSeverity(ocsf int) int {
	switch ocsf {
	case SeverityLow:
		return 5 // notice
	case SeverityMedium:
		return 4 // warning
	case SeverityHigh:
		return 3 // error
	case SeverityCritical:
		return 2 // critical
	case 6:
		return 1 // alert
	}
	return 6 // informational
}

// appendSyslog appends one event as an RFC 5424 message in RFC 5425 octet-counting framing:
// "LEN SP <PRI>1 TIMESTAMP HOSTNAME vigil - MSGID - MSG", where MSGID names the OCSF class
// and MSG is the event's JSON.
func appendSyslog(dst []byte, hostname string, line []byte) ([]byte, error) {
	meta, err := lineMetaOf(line)
	if err != nil {
		return dst, err
	}
	var hdr []byte
	hdr = append(hdr, '<')
	hdr = strconv.AppendInt(hdr, int64(syslogFacility*8+syslogSeverity(meta.SeverityID)), 10)
	hdr = append(hdr, ">1 "...)
	hdr = time.UnixMilli(meta.Time).UTC().AppendFormat(hdr, "2006-01-02T15:04:05.000Z07:00")
	hdr = append(hdr, ' ')
	hdr = append(hdr, hostname...)
	hdr = append(hdr, " vigil - ocsf-"...)
	hdr = strconv.AppendInt(hdr, int64(meta.ClassUID), 10)
	hdr = append(hdr, " - "...)
	dst = strconv.AppendInt(dst, int64(len(hdr)+len(line)), 10)
	dst = append(dst, ' ')
	dst = append(dst, hdr...)
	return append(dst, line...), nil
}

// syslogConn is one TLS connection to the receiver, with a goroutine reading from it only to
// notice when the receiver closes it.
type syslogConn struct {
	c    *tls.Conn
	dead chan struct{}
}

func dialSyslog(ctx context.Context, cfg *SyslogConfig) (*syslogConn, error) {
	host, _, _ := net.SplitHostPort(cfg.Addr)
	d := tls.Dialer{
		NetDialer: &net.Dialer{Timeout: cfg.Timeout},
		Config:    &tls.Config{RootCAs: cfg.RootCAs, Certificates: cfg.Certificates, ServerName: host, MinVersion: tls.VersionTLS12},
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, &DeliveryError{Sink: "syslog", Err: err}
	}
	sc := &syslogConn{c: c.(*tls.Conn), dead: make(chan struct{})}
	go func() {
		// The receiver never sends; any read result means the connection is gone.
		var b [1]byte
		sc.c.Read(b[:])
		close(sc.dead)
	}()
	return sc, nil
}

func (s *syslogConn) write(batch []byte, hostname string, timeout time.Duration) error {
	var out []byte
	for line := range bytes.Lines(batch) {
		var err error
		if out, err = appendSyslog(out, hostname, bytes.TrimSuffix(line, []byte{'\n'})); err != nil {
			return err
		}
	}
	s.c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := s.c.Write(out); err != nil {
		return &DeliveryError{Sink: "syslog", Err: fmt.Errorf("write: %w", err)}
	}
	return nil
}

func (s *syslogConn) close() {
	s.c.Close()
	<-s.dead
}
