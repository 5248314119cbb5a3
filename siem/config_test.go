package siem

import (
	"errors"
	"strings"
	"testing"
)

// TestConfigErrors checks that each malformed configuration is refused with ErrConfig and a
// message naming the field.
func TestConfigErrors(t *testing.T) {
	hec := func(url, token string) *HECConfig { return &HECConfig{URL: url, Token: token} }
	tests := []struct {
		name  string
		cfg   Config
		wants string
	}{
		{"no dir", Config{HEC: hec("https://h", "t")}, "Dir"},
		{"no collector", Config{Dir: "d"}, "no collector"},
		{"http", Config{Dir: "d", HEC: hec("http://h:8088", "t")}, "https"},
		{"no url", Config{Dir: "d", HEC: hec("", "t")}, "HEC.URL is required"},
		{"no host", Config{Dir: "d", HEC: hec("https:///x", "t")}, "no host"},
		{"credentials in url", Config{Dir: "d", HEC: hec("https://u:p@h", "t")}, "no credentials"},
		{"no token", Config{Dir: "d", HEC: hec("https://h", "")}, "HEC.Token"},
		{"token with newline", Config{Dir: "d", HEC: hec("https://h", "a\nb")}, "white space"},
		{"no syslog addr", Config{Dir: "d", Syslog: &SyslogConfig{}}, "Syslog.Addr is required"},
		{"syslog without port", Config{Dir: "d", Syslog: &SyslogConfig{Addr: "h"}}, "Syslog.Addr"},
		{"syslog bad hostname", Config{Dir: "d", Syslog: &SyslogConfig{Addr: "h:6514", Hostname: "a b"}}, "Syslog.Hostname"},
		{"syslog non-ASCII hostname", Config{Dir: "d", Syslog: &SyslogConfig{Addr: "h:6514", Hostname: "hôte"}}, "Syslog.Hostname"},
		{"negative queue", Config{Dir: "d", HEC: hec("https://h", "t"), QueueSize: -1}, "negative"},
		{"tiny segment", Config{Dir: "d", HEC: hec("https://h", "t"), SegmentBytes: 10}, "SegmentBytes"},
		{"spool under two segments", Config{Dir: "d", HEC: hec("https://h", "t"), MaxSpoolBytes: MinSegmentBytes}, "MaxSpoolBytes"},
		{"tiny batch", Config{Dir: "d", HEC: hec("https://h", "t"), BatchBytes: 100}, "BatchBytes"},
		{"retry bounds", Config{Dir: "d", HEC: hec("https://h", "t"), RetryMin: 2e9, RetryMax: 1e9}, "RetryMax"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.wants) {
				t.Fatalf("New = %v, want ErrConfig naming %q", err, tc.wants)
			}
		})
	}
}

// TestConfigDefaults checks that the HEC path is filled in.
func TestConfigDefaults(t *testing.T) {
	c := Config{Dir: "d", HEC: &HECConfig{URL: "https://splunk.example:8088", Token: "t"}}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if c.HEC.URL != "https://splunk.example:8088/services/collector/event" || c.QueueSize != DefaultQueueSize {
		t.Fatalf("defaults: %+v %+v", c, c.HEC)
	}
}
