package sim

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vigilauth/vigil/client"
	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/internal/transport"
	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// LoadConfig is a load test: a fleet of devices, all sampled in every round, that enrol with
// an organisation's enrolment authority and coordinator running elsewhere and send them real
// threshold-encrypted updates.
type LoadConfig struct {
	Devices     int // simulated devices
	Rounds      int // rounds to run
	Concurrency int // updates in flight at once
	// Hostile is how many attacking clients Attack starts during every second round's
	// submissions (0: none).
	Hostile int

	Coordinator string // the coordinator's address
	// Frontends are the addresses of aggregation frontends of the coordinator's tier: the
	// devices submit their updates to them, spread by device ID as client.SubmitUpdate does,
	// and make every other call to the coordinator.
	Frontends   []string
	CA          *pki.CA             // the organisation's CA, which the coordinator's certificate chains to
	Enrolment   string              // the enrolment authority's address
	EnrolmentCA []*x509.Certificate // the enrolment authority's TLS roots
	Tokens      *pki.Tokens         // the enrolment authority's one-time tokens
	Root        []byte              // the organisation's signed root of trust
	// Dir holds each device's identity (Dir/DEVICE): an enrolment retried after the
	// coordinator's rate limit then presents the device record it already has, rather than
	// redeeming its one-time token again. Required.
	Dir string

	// Attack starts n attackers against the coordinator, lets them ramp up, and returns the
	// function that stops them and reports what they did. Needed when Hostile > 0.
	Attack func(ctx context.Context, n int) (stop func() (AttackStats, error), err error)
	// Progress reports what the load test does, a line at a time; nil reports nothing.
	Progress func(format string, args ...any)
	// CoordinatorCPU, if set, returns the CPU time the coordinator's process has used so far,
	// so that throughput is also reported per coordinator CPU-second: a ratio that holds on a
	// machine whose cores the fleet shares.
	CoordinatorCPU func() (time.Duration, error)
	// FrontendCPU, if set, returns the CPU time frontend i's process has used so far.
	FrontendCPU func(i int) (time.Duration, error)
}

// LoadReport is what a load test measures, as `vigil loadtest --json` prints it.
type LoadReport struct {
	Devices       int         `json:"devices"`
	Params        int         `json:"params"`
	Rounds        []LoadRound `json:"rounds"`
	UpdatesPerSec float64     `json:"updates_per_second"`
	// UpdatesPerCPUSec is accepted updates per CPU-second of the coordinator's process while
	// the fleet submitted (0 without LoadConfig.CoordinatorCPU).
	UpdatesPerCPUSec float64 `json:"updates_per_coordinator_cpu_second,omitempty"`
	// TierUpdatesPerCPUSec is accepted updates per CPU-second of the coordinator tier's
	// processes, the leader and the frontends, from the first submission of a round to its
	// release: with a tier the leader adds updates to the sum after they are acknowledged, so
	// the submissions alone would not hold all of its work (0 without CPU readings).
	TierUpdatesPerCPUSec float64 `json:"updates_per_tier_cpu_second,omitempty"`
	// LeaderCPUMillisPerUpdate is the leader's CPU from the first submission to the release,
	// per accepted update; FrontendCPUMillisPerUpdate the frontends' per update they took.
	LeaderCPUMillisPerUpdate   float64 `json:"leader_cpu_ms_per_update,omitempty"`
	FrontendCPUMillisPerUpdate float64 `json:"frontend_cpu_ms_per_update,omitempty"`
	// LeaderAccepted is how many updates the leader took itself when the fleet had frontends
	// (none answered the device).
	LeaderAccepted int            `json:"leader_accepted,omitempty"`
	Frontends      []FrontendLoad `json:"frontends,omitempty"`
	P50Millis      float64        `json:"p50_submit_ms"`
	P99Millis      float64        `json:"p99_submit_ms"`
	Rejected       map[string]int `json:"rejected"`
	CoordinatorMiB int            `json:"coordinator_peak_mib"`
	LostUpdates    int            `json:"lost_updates"`
	MaxSumError    float64        `json:"max_sum_error"`
	UploadBytes    int            `json:"upload_bytes_per_update"`
	Hostile        *HostileReport `json:"hostile,omitempty"`
	// TierServer is what the tier's nats-server process used, when it ran as one of its own
	// (filled in by the caller).
	TierServer *ServerLoad `json:"tier_server,omitempty"`
	// Trustees is what each trustee process used, on average (filled in by the caller).
	Trustees *ServerLoad `json:"trustees,omitempty"`
}

// ServerLoad is what a server process used over a whole load test.
type ServerLoad struct {
	CPUSec float64 `json:"cpu_seconds"`
	// CPUMillisPerUpdate is CPUSec over every accepted update; it includes enrolment.
	CPUMillisPerUpdate float64 `json:"cpu_ms_per_update"`
	PeakMiB            int     `json:"peak_mib"`
}

// FrontendLoad is what one aggregation frontend did in a load test.
type FrontendLoad struct {
	Addr     string `json:"addr"`
	Accepted int    `json:"accepted"`
	// Unavailable counts its answers Unavailable or DeadlineExceeded (as NOT_DURABLE, when
	// the tier's store did not confirm an update in time), after which the device went on to
	// the next frontend or the leader.
	Unavailable int `json:"unavailable,omitempty"`
	// CPUSec is the frontend's CPU from the first submission of each round to its release.
	CPUSec           float64 `json:"cpu_seconds,omitempty"`
	UpdatesPerCPUSec float64 `json:"updates_per_cpu_second,omitempty"`
	// PeakMiB is the frontend process's peak resident memory, filled in by the caller.
	PeakMiB int `json:"peak_mib,omitempty"`
}

// HostileReport compares the fleet's submissions in rounds without and with attackers.
type HostileReport struct {
	Clients       int     `json:"clients"`
	IdleConns     int     `json:"idle_connections"`
	LargeCallers  int     `json:"large_message_callers"`
	FloodCallers  int     `json:"flood_callers"`
	AttackCalls   int64   `json:"attack_calls"`
	Refused       string  `json:"attack_refusals"`
	CalmPerSec    float64 `json:"calm_updates_per_second"`
	HostilePerSec float64 `json:"hostile_updates_per_second"`
	CalmP99       float64 `json:"calm_p99_submit_ms"`
	HostileP99    float64 `json:"hostile_p99_submit_ms"`
	// Ratio is the throughput under attack over the throughput without; the goal is >= 0.8.
	Ratio float64 `json:"throughput_ratio"`
}

type LoadRound struct {
	Round      uint64  `json:"round"`
	Accepted   int     `json:"accepted"`
	EncryptSec float64 `json:"encrypt_seconds"`
	SubmitSec  float64 `json:"submit_seconds"`
	// CoordinatorCPUSec is the CPU time the coordinator used while the fleet submitted.
	CoordinatorCPUSec float64 `json:"coordinator_cpu_seconds,omitempty"`
	// LeaderCPUSec and FrontendCPUSec are the CPU time the leader and each frontend used from
	// the first submission to the release.
	LeaderCPUSec   float64   `json:"leader_cpu_seconds,omitempty"`
	FrontendCPUSec []float64 `json:"frontend_cpu_seconds,omitempty"`
	UpdatesPerSec  float64   `json:"updates_per_second"`
	ReleaseSec     float64   `json:"close_and_release_seconds"`
	P50Millis      float64   `json:"p50_submit_ms"`
	P99Millis      float64   `json:"p99_submit_ms"`
	MaxSumError    float64   `json:"max_sum_error"`
	Hostile        bool      `json:"hostile,omitempty"`
}

// Load is a running load test: its devices, enrolled, and what they measured.
type Load struct {
	cfg       LoadConfig
	devices   []*loadDevice
	lat       []time.Duration
	rejected  map[string]int
	upload    int // bytes of one encrypted update
	hostile   *HostileReport
	calmLat   []time.Duration
	attackLat []time.Duration
	// intake counts what each frontend answered, and the leader last.
	intake []intakeCount
	mu     sync.Mutex
}

type loadDevice struct {
	id        string
	key       *sig.PrivateKey // signs the device's updates; its device record names it
	api       vigilv1.CoordinatorClient
	frontends []vigilv1.CoordinatorClient
	conns     []*grpc.ClientConn
	sealer    *client.ThresholdSealer
}

// intakeCount is what a frontend or the leader answered the fleet's updates.
type intakeCount struct {
	took        atomic.Int64 // acknowledged
	unavailable atomic.Int64 // Unavailable or DeadlineExceeded: the device tried elsewhere or again
}

// countingIntake counts the answers of a frontend or the leader, and notes why one was
// unavailable (nil note: not noted).
type countingIntake struct {
	vigilv1.CoordinatorClient
	n    *intakeCount
	note func(string)
}

func (c countingIntake) SubmitUpdate(ctx context.Context, req *vigilv1.SubmitUpdateRequest, opts ...grpc.CallOption) (*vigilv1.SubmitUpdateResponse, error) {
	resp, err := c.CoordinatorClient.SubmitUpdate(ctx, req, opts...)
	switch status.Code(err) {
	case codes.OK, codes.AlreadyExists: // the latter: an attempt whose answer was lost
		c.n.took.Add(1)
	case codes.Unavailable, codes.DeadlineExceeded:
		c.n.unavailable.Add(1)
		if c.note != nil {
			c.note(fmt.Sprintf("%s %s at a frontend (tried elsewhere)", status.Code(err), coordinator.Reason(err)))
		}
	}
	return resp, err
}

// NewLoad enrols cfg.Devices devices: the fleet of the load test, ready to Run.
func NewLoad(ctx context.Context, cfg LoadConfig) (*Load, error) {
	switch {
	case cfg.Devices < 1 || cfg.Rounds < 1 || cfg.Concurrency < 1:
		return nil, fmt.Errorf("load test: %d devices, %d rounds and %d in flight must be positive", cfg.Devices, cfg.Rounds, cfg.Concurrency)
	case cfg.Hostile > 0 && cfg.Attack == nil:
		return nil, errors.New("load test: hostile rounds need Attack")
	case cfg.CA == nil || cfg.Tokens == nil:
		return nil, errors.New("load test: need the organisation's CA and the enrolment authority's tokens")
	case cfg.Dir == "":
		return nil, errors.New("load test: need a directory for the devices' identities")
	}
	if cfg.Progress == nil {
		cfg.Progress = func(string, ...any) {}
	}
	l := &Load{cfg: cfg, rejected: map[string]int{}, intake: make([]intakeCount, len(cfg.Frontends)+1)}
	if err := l.enrol(ctx, cfg.Devices); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// Close closes the devices' connections.
func (l *Load) Close() {
	for _, d := range l.devices {
		if d != nil {
			for _, c := range d.conns {
				c.Close()
			}
		}
	}
}

// enrol gives every device a token, registers it with the enrolment authority process for a
// device record and enrols it with the coordinator for a certificate, as many at once as the
// coordinator's rate limit for callers without a certificate allows.
func (l *Load) enrol(ctx context.Context, n int) error {
	ca := []*x509.Certificate{l.cfg.CA.Certificate()}
	tokens, authCA, root := l.cfg.Tokens, l.cfg.EnrolmentCA, l.cfg.Root
	boot, err := transport.DialCoordinator(l.cfg.Coordinator, pki.ClientTLS(nil, l.cfg.CA.Pool(), pki.Coordinator("")))
	if err != nil {
		return err
	}
	defer boot.Close()
	authority, err := grpc.NewClient(l.cfg.Enrolment, grpc.WithTransportCredentials(credentials.NewTLS(
		pki.ClientTLS(nil, pki.Credentials{Roots: authCA}.RootPool(), pki.EnrolmentAuthority("")))))
	if err != nil {
		return err
	}
	defer authority.Close()
	l.devices = make([]*loadDevice, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range l.devices {
		g.Go(func() error {
			id := fmt.Sprintf("load-%05d", i)
			token, err := tokens.Issue(id, time.Hour, time.Now())
			if err != nil {
				return err
			}
			cfg := client.EnrolConfig{
				DeviceID: id, Region: "eu", Token: token, Authority: vigilv1.NewEnrolmentClient(authority), Dir: filepath.Join(l.cfg.Dir, id),
				Coordinator: vigilv1.NewCoordinatorClient(boot), Bootstrap: ca,
			}
			var ident *client.Identity
			for {
				ident, err = client.Enrol(gctx, cfg)
				if status.Code(errors.Unwrap(err)) != codes.ResourceExhausted && status.Code(err) != codes.ResourceExhausted {
					break
				}
				l.count("enrol: " + coordinator.Reason(err))
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				return err
			}
			cert := ident.TLS.TLSCertificate()
			conn, err := transport.DialCoordinator(l.cfg.Coordinator, pki.ClientTLS(&cert, ident.TLS.RootPool(), pki.Coordinator("")))
			if err != nil {
				return err
			}
			api := vigilv1.NewCoordinatorClient(conn)
			d := &loadDevice{id: id, key: ident.SigningKey, conns: []*grpc.ClientConn{conn}}
			l.devices[i] = d // closed by Close from here on
			for _, addr := range l.cfg.Frontends {
				// The frontends present the coordinator's certificate.
				fc, err := transport.DialCoordinator(addr, pki.ClientTLS(&cert, ident.TLS.RootPool(), pki.Coordinator("")))
				if err != nil {
					return err
				}
				d.conns = append(d.conns, fc)
				// Connected now, as the device's connection to the coordinator is by its
				// first call: a fleet of one address opening all its connections to a frontend
				// at once, inside the measured submissions, would meet the frontend's cap on
				// handshakes per address (pki.ListenerConfig), which devices on their own
				// addresses do not.
				if err := connectNow(gctx, fc); err != nil {
					return fmt.Errorf("%s: frontend %s: %w", id, addr, err)
				}
				d.frontends = append(d.frontends, countingIntake{vigilv1.NewCoordinatorClient(fc), &l.intake[len(d.frontends)], l.count})
			}
			d.api = countingIntake{api, &l.intake[len(l.cfg.Frontends)], nil}
			// The first call after enrolling takes the device into the registry, as a real
			// device's first poll does; the rounds below wait for all of them.
			if _, err := api.GetTask(gctx, &vigilv1.GetTaskRequest{DeviceId: id}); err != nil {
				return fmt.Errorf("%s: first call after enrolling: %w", id, err)
			}
			keys, err := client.NewSignedKeys(api, root, nil)
			if err != nil {
				return err
			}
			d.sealer = client.NewThresholdSealer(id, keys)
			return nil
		})
	}
	return g.Wait()
}

// connectNow connects conn and waits until it is ready, for up to 30 seconds.
func connectNow(ctx context.Context, conn *grpc.ClientConn) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn.Connect()
	for s := conn.GetState(); s != connectivity.Ready; s = conn.GetState() {
		if !conn.WaitForStateChange(ctx, s) {
			return fmt.Errorf("not connected (%v): %w", s, ctx.Err())
		}
	}
	return nil
}

func (l *Load) count(reason string) {
	l.mu.Lock()
	l.rejected[reason]++
	l.mu.Unlock()
}

// loadUpdate is device i's update in a round: deterministic, so the test can check the
// decrypted sum, with L2 norm below the clip norm 1.
func loadUpdate(i int, r uint64, dim int) []float64 {
	v := make([]float64, dim)
	amp := 0.9 / math.Sqrt(float64(dim))
	for j := range v {
		v[j] = amp * float64((i*7919+j*104729+int(r)*31)%2001-1000) / 1000
	}
	return v
}

// Run runs the rounds: in each, every device takes its task and encrypts its update, then all
// submit at once, and the round's release is checked against the sum of the acknowledged
// updates. The coordinator's memory is not measured here (LoadReport.CoordinatorMiB is 0).
func (l *Load) Run(ctx context.Context) (LoadReport, error) {
	f := l.cfg
	rep := LoadReport{Devices: f.Devices, Rejected: l.rejected}
	base, err := l.devices[0].api.GetModel(ctx, &vigilv1.GetModelRequest{})
	if err != nil {
		return rep, err
	}
	rep.Params = len(base.GetParams())
	var submitted, submitTime, cpuTime, leaderCPU float64
	frontendCPU := make([]float64, len(f.Frontends))
	var calm, attacked [2]float64 // accepted, seconds
	for r := range f.Rounds {
		lr, next, err := l.round(ctx, base, f.Hostile > 0 && r%2 == 1)
		if err != nil {
			return rep, err
		}
		if lr.Hostile {
			attacked[0], attacked[1] = attacked[0]+float64(lr.Accepted), attacked[1]+lr.SubmitSec
		} else {
			calm[0], calm[1] = calm[0]+float64(lr.Accepted), calm[1]+lr.SubmitSec
		}
		rep.Rounds = append(rep.Rounds, lr)
		submitted += float64(lr.Accepted)
		submitTime += lr.SubmitSec
		cpuTime += lr.CoordinatorCPUSec
		leaderCPU += lr.LeaderCPUSec
		for i, c := range lr.FrontendCPUSec {
			frontendCPU[i] += c
		}
		rep.MaxSumError = max(rep.MaxSumError, lr.MaxSumError)
		rep.LostUpdates += f.Devices - lr.Accepted
		base = next
	}
	rep.UpdatesPerSec = submitted / submitTime
	if cpuTime > 0 {
		rep.UpdatesPerCPUSec = submitted / cpuTime
	}
	tierCPU, viaFrontends, frontendsCPU := leaderCPU, 0, 0.0
	for i, addr := range f.Frontends {
		fl := FrontendLoad{Addr: addr, Accepted: int(l.intake[i].took.Load()), Unavailable: int(l.intake[i].unavailable.Load()), CPUSec: frontendCPU[i]}
		if fl.CPUSec > 0 {
			fl.UpdatesPerCPUSec = float64(fl.Accepted) / fl.CPUSec
		}
		rep.Frontends = append(rep.Frontends, fl)
		tierCPU += fl.CPUSec
		viaFrontends += fl.Accepted
		frontendsCPU += fl.CPUSec
	}
	if len(f.Frontends) > 0 {
		rep.LeaderAccepted = int(l.intake[len(f.Frontends)].took.Load())
	}
	if tierCPU > 0 {
		rep.TierUpdatesPerCPUSec = submitted / tierCPU
	}
	if submitted > 0 {
		rep.LeaderCPUMillisPerUpdate = 1000 * leaderCPU / submitted
	}
	if viaFrontends > 0 {
		rep.FrontendCPUMillisPerUpdate = 1000 * frontendsCPU / float64(viaFrontends)
	}
	rep.UploadBytes = l.upload
	slices.Sort(l.lat)
	rep.P50Millis = ms(l.lat[len(l.lat)/2])
	rep.P99Millis = ms(l.lat[len(l.lat)*99/100])
	if h := l.hostile; h != nil {
		h.CalmPerSec, h.HostilePerSec = calm[0]/calm[1], attacked[0]/attacked[1]
		h.Ratio = h.HostilePerSec / h.CalmPerSec
		h.CalmP99, h.HostileP99 = p99(l.calmLat), p99(l.attackLat)
		rep.Hostile = h
	}
	return rep, nil
}

// round runs one round: every device takes its task and encrypts its update, then all submit
// at once (at most Concurrency in flight), and the round's release is checked against the sum
// of the acknowledged updates.
func (l *Load) round(ctx context.Context, base *vigilv1.GetModelResponse, attack bool) (LoadRound, *vigilv1.GetModelResponse, error) {
	progress := l.cfg.Progress
	dim := len(base.GetParams())
	tasks := make([]*vigilv1.Task, len(l.devices))
	updates := make([]*vigilv1.Update, len(l.devices))
	signatures := make([][]byte, len(l.devices))
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, d := range l.devices {
		g.Go(func() error {
			for tasks[i] == nil {
				r, err := d.api.GetTask(gctx, &vigilv1.GetTaskRequest{DeviceId: d.id})
				if err != nil {
					return fmt.Errorf("%s: get task: %w", d.id, err)
				}
				tasks[i] = r.GetTask()
			}
			u, err := d.sealer.Seal(gctx, tasks[i], loadUpdate(i, tasks[i].GetRound(), dim))
			if err != nil {
				return err
			}
			updates[i] = u
			signatures[i], err = client.SignUpdate(d.key, d.id, tasks[i], u)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return LoadRound{}, nil, err
	}
	lr := LoadRound{Round: tasks[0].GetRound(), EncryptSec: time.Since(start).Seconds()}
	l.upload = proto.Size(updates[0])
	progress("round %d: %d updates of %d parameters encrypted in %.1fs (%d bytes each); submitting", lr.Round, len(updates), dim, lr.EncryptSec, l.upload)

	accepted := make([]bool, len(l.devices))
	var lat []time.Duration
	stopAttack := func() {}
	if attack {
		lr.Hostile = true
		var err error
		if stopAttack, err = l.attack(ctx, l.cfg.Hostile); err != nil {
			return lr, nil, err
		}
	}
	cpu := l.cfg.CoordinatorCPU
	var cpu0 time.Duration
	if cpu != nil {
		var err error
		if cpu0, err = cpu(); err != nil {
			return lr, nil, fmt.Errorf("coordinator CPU time: %w", err)
		}
	}
	frontendCPU0, err := l.frontendCPU()
	if err != nil {
		return lr, nil, err
	}
	start = time.Now()
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(l.cfg.Concurrency)
	for i, d := range l.devices {
		g.Go(func() error {
			t := tasks[i]
			t0 := time.Now()
			err := l.submit(gctx, d, &vigilv1.SubmitUpdateRequest{DeviceId: d.id, Round: t.GetRound(), Nonce: t.GetNonce(), BaseVersion: t.GetBaseVersion(), Update: updates[i], Signature: signatures[i]})
			took := time.Since(t0)
			if err != nil {
				l.count(fmt.Sprintf("%s %s", status.Code(err), coordinator.Reason(err)))
				return nil
			}
			l.mu.Lock()
			l.lat = append(l.lat, took)
			lat = append(lat, took)
			l.mu.Unlock()
			accepted[i] = true
			return nil
		})
	}
	g.Wait()
	lr.SubmitSec = time.Since(start).Seconds()
	if cpu != nil {
		cpu1, err := cpu()
		if err != nil {
			return lr, nil, fmt.Errorf("coordinator CPU time: %w", err)
		}
		lr.CoordinatorCPUSec = (cpu1 - cpu0).Seconds()
	}
	stopAttack()
	if attack {
		l.attackLat = append(l.attackLat, lat...)
	} else {
		l.calmLat = append(l.calmLat, lat...)
	}
	want := make([]float64, dim)
	for i, ok := range accepted {
		if ok {
			lr.Accepted++
			for j, v := range loadUpdate(i, lr.Round, dim) {
				want[j] += v
			}
		}
	}
	lr.UpdatesPerSec = float64(lr.Accepted) / lr.SubmitSec
	if len(lat) > 0 {
		slices.Sort(lat)
		lr.P50Millis, lr.P99Millis = ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100])
	}
	start = time.Now()
	var next *vigilv1.GetModelResponse
	for next == nil || next.GetVersion() <= base.GetVersion() {
		var err error
		if next, err = l.devices[0].api.GetModel(ctx, &vigilv1.GetModelRequest{}); err != nil {
			return lr, nil, err
		}
		time.Sleep(20 * time.Millisecond)
	}
	lr.ReleaseSec = time.Since(start).Seconds()
	if cpu != nil {
		cpu2, err := cpu()
		if err != nil {
			return lr, nil, fmt.Errorf("coordinator CPU time: %w", err)
		}
		lr.LeaderCPUSec = (cpu2 - cpu0).Seconds()
	}
	frontendCPU2, err := l.frontendCPU()
	if err != nil {
		return lr, nil, err
	}
	for i := range frontendCPU2 {
		lr.FrontendCPUSec = append(lr.FrontendCPUSec, (frontendCPU2[i] - frontendCPU0[i]).Seconds())
	}
	for j := range want {
		lr.MaxSumError = max(lr.MaxSumError, math.Abs(next.GetParams()[j]-base.GetParams()[j]-want[j]/float64(lr.Accepted)))
	}
	progress("round %d: %d accepted in %.1fs (%.0f/s); the sum opened and v%d released %.1fs later; max error of the average %.2g",
		lr.Round, lr.Accepted, lr.SubmitSec, lr.UpdatesPerSec, next.GetVersion(), lr.ReleaseSec, lr.MaxSumError)
	return lr, next, nil
}

// submit hands the device's update to the frontends or the coordinator (client.SubmitUpdate),
// sending it again, as a device does, while the answer is that it could not be stored yet:
// a tier whose store is saturated drops the update and says so (NOT_DURABLE). An update that
// turns out to be in already (AlreadyExists) counts as acknowledged.
func (l *Load) submit(ctx context.Context, d *loadDevice, req *vigilv1.SubmitUpdateRequest) error {
	const attempts = 50
	backoff := 100 * time.Millisecond
	for i := 1; ; i++ {
		_, err := client.SubmitUpdate(ctx, d.api, d.frontends, req)
		switch {
		case err == nil:
			return nil
		case status.Code(err) == codes.AlreadyExists:
			// Each device sends one update a round: the tier holds it from an attempt (here, or
			// one a frontend timed out on) whose answer was lost.
			return nil
		case status.Code(err) != codes.Unavailable || i == attempts || ctx.Err() != nil:
			return err
		}
		l.count(fmt.Sprintf("%s %s (sent again)", status.Code(err), coordinator.Reason(err)))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// frontendCPU reads the CPU time of every frontend (nil without LoadConfig.FrontendCPU).
func (l *Load) frontendCPU() ([]time.Duration, error) {
	if l.cfg.FrontendCPU == nil {
		return nil, nil
	}
	out := make([]time.Duration, len(l.cfg.Frontends))
	for i := range out {
		var err error
		if out[i], err = l.cfg.FrontendCPU(i); err != nil {
			return nil, fmt.Errorf("frontend %d's CPU time: %w", i, err)
		}
	}
	return out, nil
}

// attack starts n attackers with cfg.Attack and returns the function that stops them and
// records what they did.
func (l *Load) attack(ctx context.Context, n int) (stop func(), err error) {
	idle, large, flood := HostileMix(n)
	if l.hostile == nil {
		l.hostile = &HostileReport{Clients: n, IdleConns: idle, LargeCallers: large, FloodCallers: flood}
	}
	stopAttack, err := l.cfg.Attack(ctx, n)
	if err != nil {
		return nil, err
	}
	return func() {
		st, err := stopAttack()
		if err != nil {
			l.cfg.Progress("the attackers reported nothing: %v", err)
			return
		}
		l.hostile.AttackCalls += st.Calls
		l.hostile.Refused = st.Refused
		l.cfg.Progress("attackers stopped after %d calls; refused: %s", st.Calls, st.Refused)
	}, nil
}

// HostileMix divides n attacking clients: a third each hold 100 idle connections, send 19 MiB
// calls, or flood small calls.
func HostileMix(n int) (idleConns, large, flood int) {
	return 100 * ((n + 2) / 3), (n + 1) / 3, n / 3
}

// AttackStats is what attackers report when they stop.
type AttackStats struct {
	Calls   int64  `json:"calls"`
	Refused string `json:"refused"`
}

func p99(lat []time.Duration) float64 {
	if len(lat) == 0 {
		return 0
	}
	lat = slices.Clone(lat)
	slices.Sort(lat)
	return ms(lat[len(lat)*99/100])
}
