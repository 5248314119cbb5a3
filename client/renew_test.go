package client

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/vigilauth/vigil/enrolment"
	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// clockedCoordinator issues certificates at a test clock's time, checking the device record and
// its proof as the coordinator does.
type clockedCoordinator struct {
	vigilv1.UnimplementedCoordinatorServer
	env   *enrolCoordinator
	now   atomic.Int64 // unix nanoseconds
	calls atomic.Int32
}

func (c *clockedCoordinator) Enroll(ctx context.Context, req *vigilv1.EnrollRequest) (*vigilv1.EnrollResponse, error) {
	c.calls.Add(1)
	rec, err := c.env.root.VerifyDeviceRecord(req.GetDeviceRecord(), time.Now())
	if err != nil || rec.DeviceID != req.GetDeviceId() {
		return nil, status.Errorf(codes.Unauthenticated, "record: %v", err)
	}
	if err := enrolment.VerifyRecordProof(rec.Key(), req.GetDeviceId(), req.GetCertificateRequest(), req.GetRecordProof()); err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	iss, err := c.env.enroller.Enroll(req.GetDeviceId(), rec.Issued, req.GetCertificateRequest(), time.Unix(0, c.now.Load()))
	if err != nil {
		return nil, pki.StatusError(err)
	}
	return &vigilv1.EnrollResponse{Certificate: iss.Certificate, CaCertificates: iss.CACertificates}, nil
}

// TestRenewalAcrossExpiry follows a device for 120 days of 30-day certificates: it renews at
// two thirds of each lifetime and never holds an expired certificate while it is on; after
// being off past its certificate's expiry it enrols again with its device record. The renewed
// credentials are the ones saved.
func TestRenewalAcrossExpiry(t *testing.T) {
	e := newEnrolEnv(t, "laptop")
	ctx := context.Background()
	id, err := Enrol(ctx, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	coord := &clockedCoordinator{env: e.coord}
	s := grpc.NewServer()
	vigilv1.RegisterCoordinatorServer(s, coord)
	api := vigilv1.NewCoordinatorClient(dial(t, serve(t, s), grpc.WithTransportCredentials(insecure.NewCredentials())))

	start := time.Now()
	clock := start
	coord.now.Store(clock.UnixNano())
	r, err := NewRenewer(id, RenewConfig{Dir: e.cfg.Dir, Coordinator: api, Bootstrap: api, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	first := id.TLS.Leaf()
	if due := RenewAt(first); due.Before(start.Add(19*24*time.Hour)) || due.After(start.Add(21*24*time.Hour)) {
		t.Fatalf("a 30-day certificate is due for renewal at %v after issue, want about 20 days", due.Sub(start))
	}
	renewals := 0
	for day := range 120 {
		clock = start.Add(time.Duration(day) * 24 * time.Hour)
		coord.now.Store(clock.UnixNano())
		if day >= 60 && day < 100 {
			continue // the device is off
		}
		renewed, err := r.RenewIfDue(ctx)
		if err != nil {
			t.Fatalf("day %d: %v", day, err)
		}
		if renewed {
			renewals++
		}
		leaf := r.Identity().TLS.Leaf()
		if clock.Before(leaf.NotBefore) || clock.After(leaf.NotAfter) {
			t.Fatalf("day %d: the device holds a certificate valid %v to %v", day, leaf.NotBefore, leaf.NotAfter)
		}
		if _, err := r.Identity().TLS.Verify(clock); err != nil {
			t.Fatalf("day %d: %v", day, err)
		}
	}
	// Renewed on days 20 and 40 while on (each certificate lasts 30 days from two hours
	// before its issue, so the next falls due a few hours before the 20th day); off from day
	// 60 to 99, the certificate from day 40 expired on day 70, and the device enrolled again
	// on day 100, whose certificate falls due after day 119.
	if renewals != 3 {
		t.Fatalf("%d renewals in 120 days of 30-day certificates, want 3 (days 20, 40 and 100)", renewals)
	}
	saved, err := LoadIdentity(e.cfg.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if !saved.TLS.Leaf().Equal(r.Identity().TLS.Leaf()) {
		t.Fatal("the renewed certificate is not the one saved")
	}
	if saved.TLS.Leaf().Equal(first) {
		t.Fatal("the saved certificate is still the first")
	}
}

// TestRenewalNeedsBootstrapAfterExpiry: a device whose certificate expired and that has no
// connection to enrol again says so instead of presenting the expired certificate.
func TestRenewalNeedsBootstrapAfterExpiry(t *testing.T) {
	e := newEnrolEnv(t, "drawer")
	id, err := Enrol(context.Background(), e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	later := id.TLS.Leaf().NotAfter.Add(time.Hour)
	r, err := NewRenewer(id, RenewConfig{Coordinator: e.cfg.Coordinator, Now: func() time.Time { return later }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.RenewIfDue(context.Background()); err == nil {
		t.Fatal("renewed an expired certificate without a bootstrap connection")
	}
}
