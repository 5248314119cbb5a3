package coordinator_test

import (
	"context"
	"crypto/x509"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/vigilauth/vigil/client"
	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// TestDeviceRenewsWithRealCoordinator follows a device of a real coordinator (its pki Enroller,
// guard and mutual TLS over loopback) for 120 simulated days of 30-day certificates: the
// device's Renewer renews at about two thirds of each lifetime over its own certificate, the
// connections it makes after a renewal present the new certificate and are served after the
// first one has expired, while a connection still presenting that one is refused. Off for 40
// days, past its certificate's expiry, the device enrols again with its device record and works.
func TestDeviceRenewsWithRealCoordinator(t *testing.T) {
	start := time.Now()
	var ns atomic.Int64
	ns.Store(start.UnixNano())
	clock := func() time.Time { return time.Unix(0, ns.Load()) }
	day := func(d int) { ns.Store(start.Add(time.Duration(d) * 24 * time.Hour).UnixNano()) }

	o := newOrg(t)
	f := startTLSAt(t, o.root, clock)
	ctx := context.Background()
	id := enrolDevice(t, f, o, "laptop-1")
	r, err := client.NewRenewer(id, client.RenewConfig{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	// dial is a connection the device makes now, presenting its newest certificate.
	dial := func() vigilv1.CoordinatorClient { return f.dialTLS(t, r.ClientTLS(pki.Coordinator(""))) }
	first := dial() // holds on to the first certificate: TLS chose it at the handshake
	r.Connect(first, f.dial(t, nil))
	if _, err := first.GetTask(ctx, &vigilv1.GetTaskRequest{DeviceId: "laptop-1"}); err != nil {
		t.Fatalf("the device's first call: %v", err)
	}
	firstCert := id.TLS.Leaf()

	var renewedOn []int
	refusedFirst := 0
	for d := 0; d <= 120; d++ {
		if d > 60 && d < 100 {
			continue // the device is off
		}
		day(d)
		api := dial()
		r.Connect(api, f.dial(t, nil))
		renewed, err := r.RenewIfDue(ctx)
		if err != nil {
			t.Fatalf("day %d: renewal: %v", d, err)
		}
		if renewed {
			renewedOn = append(renewedOn, d)
			api = dial()
		}
		leaf := r.Identity().TLS.Leaf()
		if now := clock(); now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
			t.Fatalf("day %d: the device holds a certificate valid %v to %v", d, leaf.NotBefore, leaf.NotAfter)
		}
		if _, err := api.GetModel(ctx, &vigilv1.GetModelRequest{}); err != nil {
			t.Fatalf("day %d: the device is not served: %v", d, err)
		}
		if clock().After(firstCert.NotAfter) && d < 60 {
			_, err := first.GetModel(ctx, &vigilv1.GetModelRequest{})
			wantRefusal(t, err, codes.Unauthenticated, pki.ReasonCertExpired)
			refusedFirst++
		}
	}
	// Due at two thirds of 30 days (plus the backdating, pki.Backdate): day 20, 40 and 60; then
	// on day 100, after its certificate expired on day 90, by enrolling again; and day 120.
	want := []int{20, 40, 60, 100, 120}
	if len(renewedOn) != len(want) {
		t.Fatalf("renewed on days %v, want %v", renewedOn, want)
	}
	for i := range want {
		if renewedOn[i] != want[i] {
			t.Fatalf("renewed on days %v, want %v", renewedOn, want)
		}
	}
	if refusedFirst == 0 {
		t.Error("the connection presenting the first certificate was never tried after it expired")
	}
	if _, err := dial().GetTask(ctx, &vigilv1.GetTaskRequest{DeviceId: "laptop-1"}); err != nil {
		t.Fatalf("after 120 days: %v", err)
	}
	if got := registered(f.coord); len(got) != 1 || got[0] != "laptop-1" {
		t.Fatalf("registry %v, want laptop-1 once", got)
	}
}

// enrolDevice enrols device with the organisation's record over a connection without a
// certificate, as client.Enrol does once the authority has issued the record.
func enrolDevice(t *testing.T, f *tlsFixture, o *org, device string) *client.Identity {
	t.Helper()
	key, _ := sig.GenerateKey(nil)
	record := o.record(t, device, "eu", key.Public(), f.now())
	tlsKey, _ := pki.GenerateKey()
	csr, err := pki.CreateCSR(tlsKey, device)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.dial(t, nil).Enroll(context.Background(), enrolRequest(t, device, "eu", record, key, csr))
	if err != nil {
		t.Fatal(err)
	}
	creds, err := pki.AcceptEnrolment(tlsKey, resp.GetCertificate(), resp.GetCaCertificates(),
		[]*x509.Certificate{f.ca.Certificate()}, pki.Device(device), f.now())
	if err != nil {
		t.Fatal(err)
	}
	return &client.Identity{DeviceID: device, Region: "eu", SigningKey: key, Record: record, TLS: creds}
}
