package siem

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// hecSender posts spooled events to a Splunk HTTP Event Collector: one request per batch,
// each event wrapped in HEC's envelope, one envelope per line.
type hecSender struct {
	cfg    *HECConfig
	source Source
	client *http.Client
}

func newHECSender(cfg *HECConfig, src Source) *hecSender {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: cfg.RootCAs, Certificates: cfg.Certificates, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 2,
	}
	return &hecSender{cfg: cfg, source: src, client: &http.Client{Transport: tr, Timeout: cfg.Timeout}}
}

// envelope holds what HEC reads besides the event: its time in seconds, and where it came from.
type envelope struct {
	Time       float64         `json:"time"`
	Host       string          `json:"host,omitempty"`
	Source     string          `json:"source"`
	SourceType string          `json:"sourcetype"`
	Index      string          `json:"index,omitempty"`
	Event      json.RawMessage `json:"event"`
}

// EventOf returns the OCSF event line holds: line itself, or the event inside HEC's envelope,
// as the HEC sender posts it and a collector's raw events read back. An envelope's event must
// be a JSON object and its time, if any, seconds since 1970 (a number, or a string of one).
func EventOf(line []byte) (event []byte, enveloped bool, err error) {
	var probe struct {
		ClassUID json.RawMessage `json:"class_uid"`
		Event    json.RawMessage `json:"event"`
		Time     json.RawMessage `json:"time"`
	}
	if err := json.Unmarshal(line, &probe); err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrInvalidEvent, err)
	}
	if probe.Event == nil || probe.ClassUID != nil {
		return line, false, nil
	}
	if probe.Event[0] != '{' {
		return nil, true, fmt.Errorf("%w: the HEC envelope's event is not a JSON object", ErrInvalidEvent)
	}
	if probe.Time != nil && !epochTime(probe.Time) {
		return nil, true, fmt.Errorf("%w: the HEC envelope's time %s is not seconds since 1970", ErrInvalidEvent, probe.Time)
	}
	return probe.Event, true, nil
}

// epochTime reports whether raw, a JSON value, is a time HEC takes: seconds after 1970 and
// before the year 33658, a JSON number or a string holding one.
func epochTime(raw []byte) bool {
	// json.Number takes a JSON number, or a string holding one, and nothing else (no NaN,
	// Inf, hex or leading zeros).
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		return false
	}
	t, err := n.Float64()
	return err == nil && t > 0 && t < 1e12
}

// body wraps every spooled line of batch in HEC's envelope.
func (h *hecSender) body(batch []byte) ([]byte, error) {
	out := make([]byte, 0, len(batch)+len(batch)/4)
	for line := range bytes.Lines(batch) {
		line = bytes.TrimSuffix(line, []byte{'\n'})
		meta, err := lineMetaOf(line)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(envelope{Time: float64(meta.Time) / 1000, Host: h.source.Host, Source: "vigil",
			SourceType: h.cfg.SourceType, Index: h.cfg.Index, Event: line})
		if err != nil {
			return nil, err
		}
		out = append(append(out, b...), '\n')
	}
	return out, nil
}

// deliver posts one batch and returns nil only if the collector confirmed it.
func (h *hecSender) deliver(ctx context.Context, batch []byte) error {
	body, err := h.body(batch)
	if err != nil {
		return fmt.Errorf("siem: hec: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return &DeliveryError{Sink: "hec", Err: err}
	}
	req.Header.Set("Authorization", "Splunk "+h.cfg.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		return &DeliveryError{Sink: "hec", Err: err}
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if resp.StatusCode/100 != 2 {
		return &DeliveryError{Sink: "hec", Status: resp.StatusCode, Err: errors.New(string(bytes.TrimSpace(reply)))}
	}
	// Splunk answers {"text":"Success","code":0}; a compatible collector may answer nothing.
	var ack struct {
		Code *int   `json:"code"`
		Text string `json:"text"`
	}
	if json.Unmarshal(reply, &ack) == nil && ack.Code != nil && *ack.Code != 0 {
		return &DeliveryError{Sink: "hec", Status: resp.StatusCode, Err: fmt.Errorf("code %d: %s", *ack.Code, ack.Text)}
	}
	return nil
}

func (h *hecSender) close() { h.client.CloseIdleConnections() }

// lineMeta is what a sender needs from an encoded event besides its bytes.
type lineMeta struct {
	Time       int64 `json:"time"`
	ClassUID   int   `json:"class_uid"`
	SeverityID int   `json:"severity_id"`
}

func lineMetaOf(line []byte) (lineMeta, error) {
	var m lineMeta
	if err := json.Unmarshal(line, &m); err != nil {
		return m, fmt.Errorf("%w: spooled line is not an event: %v", ErrCorrupt, err)
	}
	return m, nil
}

func httpStatus(code int) string {
	return strconv.Itoa(code) + " " + http.StatusText(code)
}
