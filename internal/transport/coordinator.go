// Package transport is how Vigil's servers listen and its clients dial: the coordinator's two
// gRPC servers behind one address (devices with certificates, strangers enrolling), the
// trustees' guard and connection policy, and the coordinator's client connection. `vigil
// coordinator`, `vigil trustee serve` and the in-process organisation of package sim share it.
package transport

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// Connection policy of the coordinator. Devices hold one connection and long-poll GetTask on
// it, so an established device connection is rarely idle; strangers get seconds, not minutes.
const (
	// deviceIdle closes a device connection without calls for this long.
	deviceIdle = 15 * time.Minute
	// deviceConnAge recycles device connections, so that a renewed certificate is presented
	// and a revoked one is dropped within a day even on a connection that never goes idle.
	deviceConnAge   = 24 * time.Hour
	deviceConnGrace = 5 * time.Minute // time to finish an upload once recycled
	// deviceStreams bounds concurrent calls on one device connection: a device makes one or
	// two at a time; more is a misbehaving or hostile client.
	deviceStreams = 8
	// deviceCalls bounds a device's calls open at once over all its connections: its agent
	// makes one at a time, its Renewer another now and then. Of them one may be an upload
	// (SubmitUpdate), which may make the server hold a request of vigilv1.MaxMessageBytes; the
	// others are refused, undecoded, once read beyond their methods' small limits (see
	// pki.RequestLimits).
	deviceCalls = 4
	// maxUploads bounds the updates being received at once, over all devices: each may hold
	// up to vigilv1.MaxMessageBytes while it is read (decoded only within the coordinator's
	// MaxUpdateBytes), so that compromised devices together make the server hold at most a
	// few GiB. A 100,000-parameter update is 3.4 MB, so honest uploads use a small part of
	// that; a device refused SERVER_BUSY sends its update to another frontend, or again
	// shortly.
	maxUploads = 64
	// uploadTimeout ends an update not received and answered in this time: 3.4 MB at 30 kB/s,
	// so that a device sending slowly does not keep a slot of maxUploads.
	uploadTimeout = 2 * time.Minute
	// enrolIdle, enrolConnAge and enrolStreams bound connections without a certificate: an
	// enrolment is one call.
	enrolIdle    = 20 * time.Second
	enrolConnAge = 2 * time.Minute
	enrolStreams = 2
	// strangerRate and strangerBurst limit the calls of one address without a certificate.
	strangerRate  = 20
	strangerBurst = 200
	// keepaliveMin is the most frequent client keepalive ping tolerated.
	keepaliveMin = 20 * time.Second
)

// Service is what ServeCoordinator serves: a *coordinator.Coordinator, or a
// *coordinator.Frontend of its tier, which devices reach the same way.
type Service interface{ Register(*grpc.Server) }

// CoordinatorServers serve the coordinator's API on one address, as two gRPC servers behind a
// pki.Split: connections with a verified, unrevoked device certificate reach the full API with
// the 40 MiB message limit, at most pki.DefaultMaxAuthenticatedPerIdentity (or the configured
// share) per device; connections without one, or with a certificate refused, reach a server
// that serves Enroll only, reads at most pki.MaxEnrolMessageBytes per message and refuses any
// other method before reading its body.
type CoordinatorServers struct {
	split        *pki.Split
	devices, new *grpc.Server
}

// ServeCoordinator starts serving coord on lis with cert, verifying device certificates
// against clientCAs and revs; devices are limited to rate calls per second each. conns sets
// the connection caps (its TLS, Roles and Revocations are filled in here; zero fields take
// pki's defaults).
func ServeCoordinator(lis net.Listener, coord Service, cert tls.Certificate, clientCAs *x509.CertPool, revs *pki.Revocations, rate float64, conns pki.ListenerConfig, measure ...grpc.ServerOption) (*CoordinatorServers, error) {
	devLim, err := pki.NewLimiter(pki.LimiterConfig{Rate: rate, Burst: 2 * int(rate)})
	if err != nil {
		return nil, err
	}
	devGuard, err := pki.NewGuard(pki.GuardConfig{Roles: []pki.Role{pki.RoleDevice}, Revocations: revs, Limiter: devLim})
	if err != nil {
		return nil, err
	}
	// The devices' server reads up to vigilv1.MaxMessageBytes, which only SubmitUpdate needs:
	// devLimits refuses larger requests of the other methods, and bounds what one device can
	// make it hold, over all its connections, to deviceCalls requests (see pki.RequestLimits).
	// A coordinator that knows its longest update takes no larger one: a larger one is read
	// but refused undecoded, naming the limit (coordinator.MaxUpdateBytes). Not from its length
	// prefix, as the server's own limit would: a device refused at once sent again at once,
	// and the megabytes of each attempt already on their way, discarded, took the
	// coordinator's memory from 119 to 430 MiB in TestAttackDeviceOversizedRequests. A
	// frontend, which learns each round's plan as it comes, keeps the API's bound.
	maxUpdate := vigilv1.MaxMessageBytes
	if m, ok := coord.(interface{ MaxUpdateBytes() int }); ok {
		maxUpdate = min(maxUpdate, m.MaxUpdateBytes())
	}
	maxBytes := func(method string) int {
		if method == vigilv1.Coordinator_SubmitUpdate_FullMethodName {
			return maxUpdate
		}
		return vigilv1.MaxRequestBytes(method)
	}
	devLimits, err := pki.NewRequestLimits(pki.RequestLimitsConfig{
		MaxBytes: maxBytes, MaxInFlight: deviceCalls,
		Uploads: []string{vigilv1.Coordinator_SubmitUpdate_FullMethodName}, MaxUploads: maxUploads, UploadTimeout: uploadTimeout,
	})
	if err != nil {
		return nil, err
	}
	// Callers without a certificate are limited per address, since they have no identity yet,
	// in the tap, before anything else is done for them. A whole office behind one address
	// may enrol at once: the burst lets a few hundred devices through, the rate then holds a
	// flood to what a device enrolment costs.
	newLim, err := pki.NewLimiter(pki.LimiterConfig{Rate: strangerRate, Burst: strangerBurst})
	if err != nil {
		return nil, err
	}
	newGuard, err := pki.NewGuard(pki.GuardConfig{
		Roles: []pki.Role{pki.RoleDevice}, Unauthenticated: []string{vigilv1.Coordinator_Enroll_FullMethodName},
		Revocations: revs,
	})
	if err != nil {
		return nil, err
	}
	conns.TLS = pki.ServerTLS(cert, clientCAs)
	// Only certificates the devices' guard would serve take a device's connection slot: a
	// revoked device's or another role's certificate is served with the strangers, where every
	// call but Enroll is refused with the guard's reason (see pki.OnlyMethods).
	conns.Roles = []pki.Role{pki.RoleDevice}
	conns.Revocations = revs
	split, err := pki.NewSplit(lis, conns)
	if err != nil {
		return nil, err
	}
	enforce := grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: keepaliveMin, PermitWithoutStream: true})
	// measure comes before the guards, so that the calls they refuse are counted.
	devOpts := append(append(append(measure[:len(measure):len(measure)], coordinator.ServerOptions()...), devLimits.ServerOptions()...), devGuard.ServerOptions()...)
	devOpts = append(devOpts, grpc.Creds(pki.Handshaken()), grpc.MaxConcurrentStreams(deviceStreams), enforce,
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: deviceIdle, MaxConnectionAge: deviceConnAge, MaxConnectionAgeGrace: deviceConnGrace,
			Time: time.Minute, Timeout: 20 * time.Second,
		}))
	newOpts := append(append(measure[:len(measure):len(measure)], newGuard.ServerOptions()...), grpc.Creds(pki.Handshaken()),
		grpc.InTapHandle(pki.OnlyMethods(newLim, devGuard, vigilv1.Coordinator_Enroll_FullMethodName)),
		grpc.MaxRecvMsgSize(pki.MaxEnrolMessageBytes), grpc.MaxSendMsgSize(vigilv1.MaxMessageBytes),
		// Fixed windows: gRPC's dynamic windows would grow to megabytes, and a caller sending a
		// large message could push that much before its call is refused.
		grpc.InitialWindowSize(pki.MaxEnrolMessageBytes), grpc.InitialConnWindowSize(pki.MaxEnrolMessageBytes),
		grpc.MaxConcurrentStreams(enrolStreams), enforce,
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: enrolIdle, MaxConnectionAge: enrolConnAge, MaxConnectionAgeGrace: 10 * time.Second,
			Time: 10 * time.Second, Timeout: 10 * time.Second,
		}))
	s := &CoordinatorServers{split: split, devices: grpc.NewServer(devOpts...), new: grpc.NewServer(newOpts...)}
	coord.Register(s.devices)
	coord.Register(s.new)
	go s.devices.Serve(split.Authenticated())
	go s.new.Serve(split.Unauthenticated())
	return s, nil
}

// Addr returns the address served.
func (s *CoordinatorServers) Addr() net.Addr { return s.split.Addr() }

// Stop stops accepting and lets calls in flight finish for up to grace, so that a device whose
// update could not be made durable hears NOT_DURABLE rather than a broken connection; then it
// closes what remains.
func (s *CoordinatorServers) Stop(grace time.Duration) {
	s.split.Close()
	done := make(chan struct{})
	go func() {
		s.devices.GracefulStop()
		s.new.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(grace):
		s.devices.Stop()
		s.new.Stop()
		<-done
	}
}
