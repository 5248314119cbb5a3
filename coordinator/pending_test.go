package coordinator_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// registered returns the IDs in the coordinator's registry, as the operator's status lists
// them (sorted, one entry per device).
func registered(c *coordinator.Coordinator) []string {
	var ids []string
	for _, d := range c.Status().GetDevices() {
		ids = append(ids, d.GetId())
	}
	return ids
}

// TestEnrolmentRetryIsIdempotent is issue 19's hostile network at enrolment: the answer to
// Enroll is lost, or the device refuses the certificate in it. Neither registers the device;
// it enrols again with the same device record, takes the new certificate, and its first call
// with it registers it, once, however often it enrols or polls afterwards.
func TestEnrolmentRetryIsIdempotent(t *testing.T) {
	o := newOrg(t)
	f := startTLS(t, o.root)
	ctx := context.Background()
	anon := f.dial(t, nil)
	otherCA, err := pki.NewCA("another CA", 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, tc := range []struct {
		name, id string
		// fail is what the device makes of the first answer: it never gets to use it.
		fail func(t *testing.T, tlsKey *ecdsa.PrivateKey, resp *vigilv1.EnrollResponse, id string)
	}{
		{"reply lost", "dev-lost", func(*testing.T, *ecdsa.PrivateKey, *vigilv1.EnrollResponse, string) {}},
		{"certificate refused", "dev-refused", func(t *testing.T, tlsKey *ecdsa.PrivateKey, resp *vigilv1.EnrollResponse, id string) {
			// The device bootstrapped trust in another CA (say, a coordinator it was not
			// meant for answered): it must refuse the certificate.
			if _, err := pki.AcceptEnrolment(tlsKey, resp.GetCertificate(), resp.GetCaCertificates(),
				[]*x509.Certificate{otherCA.Certificate()}, pki.Device(id), time.Now()); err == nil {
				t.Fatal("the device accepted a certificate from a CA it does not trust")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.id
			key, _ := sig.GenerateKey(nil)
			record := o.record(t, id, "eu", key.Public(), time.Now())
			enroll := func() (*ecdsa.PrivateKey, *vigilv1.EnrollResponse) {
				tlsKey, _ := pki.GenerateKey()
				csr, err := pki.CreateCSR(tlsKey, id)
				if err != nil {
					t.Fatal(err)
				}
				resp, err := anon.Enroll(ctx, enrolRequest(t, id, "eu", record, key, csr))
				if err != nil {
					t.Fatal(err)
				}
				return tlsKey, resp
			}
			tlsKey, resp := enroll()
			tc.fail(t, tlsKey, resp, id)
			if got := registered(f.coord); !slices.Equal(got, want) {
				t.Fatalf("after the failed enrolment the registry holds %v, want %v", got, want)
			}

			tlsKey, resp = enroll() // the retry, with the same device record
			creds, err := pki.AcceptEnrolment(tlsKey, resp.GetCertificate(), resp.GetCaCertificates(),
				[]*x509.Certificate{f.ca.Certificate()}, pki.Device(id), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			cert := creds.TLSCertificate()
			dev := f.dial(t, &cert)
			for range 2 {
				if _, err := dev.GetTask(ctx, &vigilv1.GetTaskRequest{DeviceId: id}); err != nil {
					t.Fatal(err)
				}
				// The agent's own enrolment over its certificate, as after every restart.
				if _, err := dev.Enroll(ctx, enrolRequest(t, id, "eu", record, key, nil)); err != nil {
					t.Fatal(err)
				}
			}
			want = append(want, id)
			slices.Sort(want)
			if got := registered(f.coord); !slices.Equal(got, want) {
				t.Fatalf("after the retry the registry holds %v, want %v, each once", got, want)
			}
		})
	}
}

// TestFailedEnrolmentRegistersNothing enrols a device that never calls again (its answer was
// lost and it gave up): it is neither counted in N nor sampled nor saved, a round runs on the
// devices that did call, and a restart forgets it, so that it must enrol again.
func TestFailedEnrolmentRegistersNothing(t *testing.T) {
	storeDir, stateDir := t.TempDir(), t.TempDir()
	ctx := context.Background()
	api, c, stop := serve(t, storeDir, stateDir)
	if _, err := api.Enroll(ctx, &vigilv1.EnrollRequest{DeviceId: "ghost"}); err != nil {
		t.Fatal(err)
	}
	enrol(t, api, "a", "b", "c")
	// serve samples 3 devices of N: with the ghost counted q = 3/4 and the round would wait
	// for a device that never answers.
	waitTask(t, api, "a")
	st := c.Status()
	if got, want := registered(c), []string{"a", "b", "c"}; !slices.Equal(got, want) {
		t.Fatalf("registry %v, want %v", got, want)
	}
	if o := st.GetOpenRound(); o.GetSelected() != 3 || !slices.Equal(o.GetMissing(), []string{"a", "b", "c"}) {
		t.Fatalf("open round selected %d, missing %v; want a, b and c only", o.GetSelected(), o.GetMissing())
	}
	saved, err := coordinator.EnrolledDevices(stateDir)
	if err != nil || !slices.Equal(saved, []string{"a", "b", "c"}) {
		t.Fatalf("saved registry %v (%v), want a, b and c", saved, err)
	}
	stop()

	api, c, _ = serve(t, storeDir, stateDir)
	_, err = api.GetTask(ctx, &vigilv1.GetTaskRequest{DeviceId: "ghost"})
	wantRefusal(t, err, codes.NotFound, coordinator.ReasonUnknownDevice)
	enrol(t, api, "ghost") // enrolling again is all it takes
	if got, want := registered(c), []string{"a", "b", "c", "ghost"}; !slices.Equal(got, want) {
		t.Fatalf("after the ghost enrolled again: registry %v, want %v", got, want)
	}
}

// TestPendingEnrolmentsAreReported: the operator sees the enrolments waiting for their devices'
// first call, in the status and as vigil_pending_enrolments, until the device calls or the
// enrolment expires.
func TestPendingEnrolmentsAreReported(t *testing.T) {
	reg := prometheus.NewRegistry()
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	f := start(t, coordinator.Config{Metrics: reg, Now: clock})
	ctx := context.Background()
	for _, step := range []struct {
		name string
		do   func(t *testing.T)
		want int
	}{
		{"nothing enrolled", func(*testing.T) {}, 0},
		{"two enrol", func(t *testing.T) {
			for _, id := range []string{"a", "b"} {
				if _, err := f.api.Enroll(ctx, &vigilv1.EnrollRequest{DeviceId: id}); err != nil {
					t.Fatal(err)
				}
			}
		}, 2},
		{"one calls", func(t *testing.T) {
			if _, err := f.api.GetTask(ctx, &vigilv1.GetTaskRequest{DeviceId: "a"}); err != nil {
				t.Fatal(err)
			}
		}, 1},
		{"the other's enrolment expires", func(*testing.T) {
			mu.Lock()
			now = now.Add(11 * time.Minute)
			mu.Unlock()
		}, 0},
	} {
		step.do(t)
		if got := f.coord.Status().GetPendingEnrolments(); got != uint32(step.want) {
			t.Errorf("%s: status shows %d pending enrolments, want %d", step.name, got, step.want)
		}
		if got := unlabelledGauge(t, reg, "vigil_pending_enrolments"); got != float64(step.want) {
			t.Errorf("%s: vigil_pending_enrolments %v, want %d", step.name, got, step.want)
		}
	}
}

// unlabelledGauge returns the value of the gauge name in reg.
func unlabelledGauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no %s in the registry", name)
	return 0
}
