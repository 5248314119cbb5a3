package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// testCA makes a CA and returns its PEM file and a function that issues certificates under it.
func testCA(t *testing.T, dir, name string) (caFile string, issue func(cn string, server bool) tls.Certificate) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	caFile = filepath.Join(dir, name+".pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	serial := int64(1)
	return caFile, func(cn string, server bool) tls.Certificate {
		serial++
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		leaf := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		if server {
			leaf.ExtKeyUsage, leaf.IPAddresses = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, []net.IP{net.IPv4(127, 0, 0, 1)}
		}
		d, err := x509.CreateCertificate(rand.Reader, leaf, ca, &k.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{d}, PrivateKey: k}
	}
}

func writeKeyPair(t *testing.T, dir, name string, c tls.Certificate) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o600)
	der, _ := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	return
}

// TestConsoleMutualTLS serves the console and reads it with an operator's client certificate;
// a client without a certificate, or with one from another CA, gets nothing.
func TestConsoleMutualTLS(t *testing.T) {
	dir := t.TempDir()
	priv, pub := keygen(t, dir, "audit")
	logPath := writeTestLog(t, dir, priv, 5, true)
	caFile, issue := testCA(t, dir, "operators")
	_, issueOther := testCA(t, dir, "strangers")
	certFile, keyFile := writeKeyPair(t, dir, "console", issue("console", true))

	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runConsole(ctx, []string{"--listen", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile,
			"--client-ca", caFile, "--log", logPath, "--key", pub}, &out, io.Discard)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("console: %v", err)
		}
	}()
	var url string
	for deadline := time.Now().Add(10 * time.Second); url == ""; {
		if m := regexp.MustCompile(`https://\S+/`).FindString(out.String()); m != "" {
			url = m
		} else if time.Now().After(deadline) {
			t.Fatal("console never said where it listens")
		}
		time.Sleep(10 * time.Millisecond)
	}
	caPEM, _ := os.ReadFile(caFile)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs}}}
	}
	resp, err := client(issue("operator-1", false)).Get(url + "decisions")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "s-alice") || !strings.Contains(string(body), "verifies") {
		t.Fatalf("operator got %d:\n%s", resp.StatusCode, body)
	}
	if resp.TLS == nil || resp.TLS.Version != tls.VersionTLS13 {
		t.Errorf("connection state %+v, want TLS 1.3", resp.TLS)
	}
	for name, c := range map[string]*http.Client{"no certificate": client(), "another CA": client(issueOther("stranger", false))} {
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			t.Errorf("%s: got %d, want the handshake refused", name, resp.StatusCode)
		}
	}
}

// TestConsoleFlagErrors checks that each missing or bad flag is named.
func TestConsoleFlagErrors(t *testing.T) {
	dir := t.TempDir()
	caFile, issue := testCA(t, dir, "operators")
	certFile, keyFile := writeKeyPair(t, dir, "console", issue("console", true))
	_, pub := keygen(t, dir, "audit")
	base := []string{"--tls-cert", certFile, "--tls-key", keyFile, "--client-ca", caFile, "--log", pub, "--key", pub}
	tests := []struct {
		args  []string
		wants string
	}{
		{[]string{}, "--tls-cert"},
		{base[:4], "--client-ca"},
		{base[:6], "--log"},
		{base[:8], "--key"},
		{append(append([]string{}, base[:4]...), "--client-ca", pub, "--log", pub, "--key", pub), "--client-ca"},
		{append(append([]string{}, base...), "--listen", "256.1.1.1:1"), "--listen"},
		{append(append([]string{}, base[:8]...), "--key", certFile), "--key"},
		{append(append([]string{}, base...), "--ledger", filepath.Join(dir, "missing.ledger")), "--ledger"},
		{append(append([]string{}, base...), "--ledger", dir), "--ledger"},
		{append(append([]string{}, base[:6]...), "--log", dir, "--key", pub), "--log"},
		{append(append([]string{}, base...), "--tradeoff", filepath.Join(dir, "missing.json")), "--tradeoff"},
		{append(append([]string{}, base...), "--tradeoff", pub), "--tradeoff"},
		{append(append([]string{}, base...), "--region", dir), "--root"},
		{append(append([]string{}, base...), "--state", filepath.Join(dir, "no-state")), "--state"},
	}
	for _, tc := range tests {
		err := runConsole(context.Background(), tc.args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.wants) {
			t.Errorf("vigil console %s: %v, want an error naming %s", strings.Join(tc.args, " "), err, tc.wants)
		}
	}
}
