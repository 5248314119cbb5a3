package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vigilauth/vigil/client"
	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/enrolment"
	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

type loadFlags struct {
	devices, params, rounds, concurrency int
	dir                                  string
	json                                 bool
	metrics                              string
	timeout                              time.Duration
	hostile                              int
	attack, attackCA                     string
}

// loadReport is what vigil loadtest measures, as --json prints it.
type loadReport struct {
	Devices        int            `json:"devices"`
	Params         int            `json:"params"`
	Rounds         []loadRound    `json:"rounds"`
	UpdatesPerSec  float64        `json:"updates_per_second"`
	P50Millis      float64        `json:"p50_submit_ms"`
	P99Millis      float64        `json:"p99_submit_ms"`
	Rejected       map[string]int `json:"rejected"`
	CoordinatorMiB int            `json:"coordinator_peak_mib"`
	LostUpdates    int            `json:"lost_updates"`
	MaxSumError    float64        `json:"max_sum_error"`
	UploadBytes    int            `json:"upload_bytes_per_update"`
	Hostile        *hostileReport `json:"hostile,omitempty"`
}

// hostileReport compares the fleet's submissions in rounds without and with attackers.
type hostileReport struct {
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

type loadRound struct {
	Round         uint64  `json:"round"`
	Accepted      int     `json:"accepted"`
	EncryptSec    float64 `json:"encrypt_seconds"`
	SubmitSec     float64 `json:"submit_seconds"`
	UpdatesPerSec float64 `json:"updates_per_second"`
	ReleaseSec    float64 `json:"close_and_release_seconds"`
	P50Millis     float64 `json:"p50_submit_ms"`
	P99Millis     float64 `json:"p99_submit_ms"`
	MaxSumError   float64 `json:"max_sum_error"`
	Hostile       bool    `json:"hostile,omitempty"`
}

// runLoadtest measures a coordinator under a fleet: N devices (goroutines here, each with its
// own mutual-TLS connection and certificate) send real threshold-encrypted updates to a
// coordinator running as its own process, with three trustee processes, for a few rounds.
func runLoadtest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f loadFlags
	fs := newFlags("loadtest", stdout)
	fs.IntVar(&f.devices, "devices", 1000, "simulated devices, all sampled in every round")
	fs.IntVar(&f.params, "params", 100000, "model parameters per update (approximately: a 16-H-16 autoencoder)")
	fs.IntVar(&f.rounds, "rounds", 3, "rounds to run")
	fs.IntVar(&f.concurrency, "concurrency", 64, "updates in flight at once")
	fs.StringVar(&f.dir, "dir", "", "working directory (default: a new temporary directory)")
	fs.BoolVar(&f.json, "json", false, "print one JSON object instead of text")
	fs.StringVar(&f.metrics, "coordinator-metrics", "", "serve the coordinator's /metrics and /debug/pprof/ on this address (default off)")
	fs.DurationVar(&f.timeout, "timeout", 20*time.Minute, "give up after this long")
	fs.IntVar(&f.hostile, "hostile", 0, "attacking clients without certificates during every second round's submissions: a third each hold 100 idle connections, send 19 MiB calls, or flood small calls; the report compares the fleet's throughput and p99 with and without them")
	fs.StringVar(&f.attack, "attack", "", "internal: run only --hostile attackers against this coordinator address until stdin closes (the load test's attacking process)")
	fs.StringVar(&f.attackCA, "attack-ca", "", "internal: the CA certificate the attackers complete TLS handshakes with")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if f.attack != "" {
		return runAttackers(ctx, f, os.Stdin, stdout)
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("loadtest: unexpected argument %q", fs.Arg(0))
	case f.devices < 2 || f.devices > 10000:
		return fmt.Errorf("loadtest: --devices %d out of range 2..10000", f.devices)
	case f.params < 1000 || f.params > vigilv1.MaxParams:
		return fmt.Errorf("loadtest: --params %d out of range 1000..%d", f.params, vigilv1.MaxParams)
	case f.rounds < 1 || f.concurrency < 1:
		return fmt.Errorf("loadtest: --rounds %d and --concurrency %d must be positive", f.rounds, f.concurrency)
	case f.hostile < 0 || f.hostile > 3000:
		return fmt.Errorf("loadtest: --hostile %d out of range 0..3000", f.hostile)
	case f.hostile > 0 && f.rounds < 2:
		return fmt.Errorf("loadtest: --hostile needs --rounds of at least 2: rounds without and with attackers alternate")
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	if f.dir == "" {
		var err error
		if f.dir, err = os.MkdirTemp("", "vigil-loadtest-"); err != nil {
			return fmt.Errorf("loadtest: %w", err)
		}
	}
	progress := func(format string, a ...any) { fmt.Fprintf(stderr, "loadtest: "+format+"\n", a...) }
	lt, err := startLoad(ctx, f, progress)
	if err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	defer lt.stop()
	rep, err := lt.run(ctx, f, progress)
	if err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	if f.json {
		return json.NewEncoder(stdout).Encode(rep)
	}
	printLoadReport(stdout, rep)
	return nil
}

// load is a running load test: the organisation, the child processes and the devices.
type load struct {
	org, addr string
	enrolAddr string
	hidden    int
	procs     []*exec.Cmd
	coordOut  *bufio.Scanner
	devices   []*loadDevice
	lat       []time.Duration
	rejected  map[string]int
	upload    int // bytes of one encrypted update
	roots     *x509.CertPool
	hostile   *hostileReport
	calmLat   []time.Duration
	attackLat []time.Duration
	mu        sync.Mutex
}

type loadDevice struct {
	id     string
	key    *sig.PrivateKey // signs the device's updates; its device record names it
	api    vigilv1.CoordinatorClient
	conn   *grpc.ClientConn
	sealer *client.ThresholdSealer
}

func startLoad(ctx context.Context, f loadFlags, progress func(string, ...any)) (*load, error) {
	l := &load{org: filepath.Join(f.dir, "org"), rejected: map[string]int{}, hidden: max(1, (f.params-16)/33)}
	trustees := []string{"privacy-office", "security", "audit"}
	if err := setupOrg(l.org, trustees, 2, []string{"127.0.0.1", "localhost"}, defaultPolicyFlags(), time.Now()); err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var trusteeFlags []string
	for _, id := range trustees {
		dir := filepath.Join(l.org, orgTrustees, id)
		line, err := l.spawn(ctx, exe, "trustee "+id, "trustee", "serve", "--dir", dir, "--pki-dir", filepath.Join(dir, orgTrusteeTLS),
			"--root", filepath.Join(l.org, orgRoot), "--min-contributors", fmt.Sprint(f.devices), "--listen", "127.0.0.1:0", "--log-level", "warn")
		if err != nil {
			return nil, err
		}
		trusteeFlags = append(trusteeFlags, "--trustee", id+"="+line[strings.LastIndex(line, " ")+1:])
	}
	line, err := l.spawn(ctx, exe, "enrolment authority listening on ", "enrol", "serve", "--dir", filepath.Join(l.org, orgEnrol),
		"--listen", "127.0.0.1:0", "--log-level", "warn")
	if err != nil {
		return nil, err
	}
	l.enrolAddr = strings.Fields(strings.TrimPrefix(line, "enrolment authority listening on "))[0]
	args := []string{"coordinator", "--org", l.org, "--dir", filepath.Join(f.dir, "coordinator"), "--listen", "127.0.0.1:0",
		"--metrics-listen", f.metrics, "--devices-per-round", fmt.Sprint(f.devices),
		"--min-updates", fmt.Sprint(f.devices), "--min-enrolled", fmt.Sprint(f.devices), "--round-timeout", "15m",
		"--model-layers", fmt.Sprintf("16,%d,16", l.hidden), "--log-level", "warn",
		// The load test measures throughput, not privacy: a budget large enough for its rounds
		// (the default stops the coordinator after about three of them).
		"--epsilon", "1000000"}
	if f.metrics != "" {
		args = append(args, "--pprof")
	}
	line, err = l.spawn(ctx, exe, "coordinator listening on ", append(args, trusteeFlags...)...)
	if err != nil {
		return nil, err
	}
	l.addr = strings.TrimPrefix(line, "coordinator listening on ")
	progress("coordinator (pid %d) on %s with 3 trustee processes and the enrolment authority; enrolling %d devices", l.procs[len(l.procs)-1].Process.Pid, l.addr, f.devices)
	start := time.Now()
	if err := l.enrol(ctx, f.devices); err != nil {
		return nil, err
	}
	progress("%d devices enrolled over mutual TLS in %.1fs", f.devices, time.Since(start).Seconds())
	return l, nil
}

// spawn starts a child vigil process and returns its first stdout line starting with ready;
// the coordinator's further output stays readable in l.coordOut.
func (l *load) spawn(ctx context.Context, exe, ready string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = os.Environ()
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	l.procs = append(l.procs, cmd)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), ready) {
			if args[0] == "coordinator" {
				l.coordOut = sc
			} else {
				go func() {
					for sc.Scan() {
					}
				}()
			}
			return sc.Text(), nil
		}
	}
	return "", fmt.Errorf("vigil %s exited before it was ready", strings.Join(args[:2], " "))
}

func (l *load) stop() {
	for _, d := range l.devices {
		d.conn.Close()
	}
	for _, p := range l.procs {
		p.Process.Kill()
		p.Wait()
	}
}

// enrol gives every device a token, registers it with the enrolment authority process for a
// device record and enrols it with the coordinator for a certificate, as many at once as the
// coordinator's rate limit for callers without a certificate allows.
func (l *load) enrol(ctx context.Context, n int) error {
	auth, err := pki.OpenAuthority(filepath.Join(l.org, orgPKI))
	if err != nil {
		return err
	}
	ca := []*x509.Certificate{auth.CA.Certificate()}
	l.roots = auth.CA.Pool()
	tokens, err := pki.OpenTokens(filepath.Join(l.org, orgEnrol, enrolment.TokensFile))
	if err != nil {
		return err
	}
	authCA, err := pki.ReadCertificates(filepath.Join(l.org, orgEnrol, pki.CACertFile))
	if err != nil {
		return err
	}
	root, err := os.ReadFile(filepath.Join(l.org, orgRoot))
	if err != nil {
		return err
	}
	boot, err := dialCoordinator(l.addr, pki.ClientTLS(nil, auth.CA.Pool(), pki.Coordinator("")))
	if err != nil {
		return err
	}
	defer boot.Close()
	authority, err := grpc.NewClient(l.enrolAddr, grpc.WithTransportCredentials(credentials.NewTLS(
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
				DeviceID: id, Region: "eu", Token: token, Authority: vigilv1.NewEnrolmentClient(authority),
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
			conn, err := dialCoordinator(l.addr, pki.ClientTLS(&cert, ident.TLS.RootPool(), pki.Coordinator("")))
			if err != nil {
				return err
			}
			api := vigilv1.NewCoordinatorClient(conn)
			// The first call after enrolling takes the device into the registry, as a real
			// device's first poll does; the rounds below wait for all of them.
			if _, err := api.GetTask(gctx, &vigilv1.GetTaskRequest{DeviceId: id}); err != nil {
				return fmt.Errorf("%s: first call after enrolling: %w", id, err)
			}
			keys, err := client.NewSignedKeys(api, root, nil)
			if err != nil {
				return err
			}
			l.devices[i] = &loadDevice{id: id, key: ident.SigningKey, api: api, conn: conn, sealer: client.NewThresholdSealer(id, keys)}
			return nil
		})
	}
	return g.Wait()
}

func (l *load) count(reason string) {
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

func (l *load) run(ctx context.Context, f loadFlags, progress func(string, ...any)) (loadReport, error) {
	rep := loadReport{Devices: f.devices, Rejected: l.rejected}
	base, err := l.devices[0].api.GetModel(ctx, &vigilv1.GetModelRequest{})
	if err != nil {
		return rep, err
	}
	rep.Params = len(base.GetParams())
	var submitted, submitTime float64
	var calm, attacked [2]float64 // accepted, seconds
	for r := range f.rounds {
		lr, next, err := l.round(ctx, f, base, f.hostile > 0 && r%2 == 1, progress)
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
		rep.MaxSumError = max(rep.MaxSumError, lr.MaxSumError)
		rep.LostUpdates += f.devices - lr.Accepted
		base = next
	}
	rep.UpdatesPerSec = submitted / submitTime
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
	// A clean stop parks the round the coordinator opened next and reports its peak memory.
	coord := l.procs[len(l.procs)-1]
	coord.Process.Signal(syscall.SIGTERM)
	for l.coordOut.Scan() {
		var mib int
		if _, err := fmt.Sscanf(l.coordOut.Text(), "peak memory %d MiB", &mib); err == nil {
			rep.CoordinatorMiB = mib
		}
	}
	return rep, nil
}

// round runs one round: every device takes its task and encrypts its update, then all submit
// at once (at most --concurrency in flight), and the round's release is checked against the sum
// of the acknowledged updates.
func (l *load) round(ctx context.Context, f loadFlags, base *vigilv1.GetModelResponse, attack bool, progress func(string, ...any)) (loadRound, *vigilv1.GetModelResponse, error) {
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
		return loadRound{}, nil, err
	}
	lr := loadRound{Round: tasks[0].GetRound(), EncryptSec: time.Since(start).Seconds()}
	l.upload = proto.Size(updates[0])
	progress("round %d: %d updates of %d parameters encrypted in %.1fs (%d bytes each); submitting", lr.Round, len(updates), dim, lr.EncryptSec, l.upload)

	accepted := make([]bool, len(l.devices))
	var lat []time.Duration
	stopAttack := func() {}
	if attack {
		lr.Hostile = true
		var err error
		if stopAttack, err = l.attack(ctx, f.hostile, progress); err != nil {
			return lr, nil, err
		}
	}
	start = time.Now()
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(f.concurrency)
	for i, d := range l.devices {
		g.Go(func() error {
			t := tasks[i]
			t0 := time.Now()
			_, err := d.api.SubmitUpdate(gctx, &vigilv1.SubmitUpdateRequest{DeviceId: d.id, Round: t.GetRound(), Nonce: t.GetNonce(), BaseVersion: t.GetBaseVersion(), Update: updates[i], Signature: signatures[i]})
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
	for j := range want {
		lr.MaxSumError = max(lr.MaxSumError, math.Abs(next.GetParams()[j]-base.GetParams()[j]-want[j]/float64(lr.Accepted)))
	}
	progress("round %d: %d accepted in %.1fs (%.0f/s); the sum opened and v%d released %.1fs later; max error of the average %.2g",
		lr.Round, lr.Accepted, lr.SubmitSec, lr.UpdatesPerSec, next.GetVersion(), lr.ReleaseSec, lr.MaxSumError)
	return lr, next, nil
}

// attack starts n attacking clients against the coordinator and returns the function that
// stops them and records what they did; it lets them ramp up for two seconds first. They run
// in a process of their own at the lowest CPU priority, as attackers on other machines would:
// on the same cores at the same priority, the attackers' own work would be counted as the
// coordinator's loss.
func (l *load) attack(ctx context.Context, n int, progress func(string, ...any)) (stop func(), err error) {
	idle, large, flood := hostileMix(n)
	if l.hostile == nil {
		l.hostile = &hostileReport{Clients: n, IdleConns: idle, LargeCallers: large, FloodCallers: flood}
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, "loadtest", "--attack", l.addr, "--attack-ca", filepath.Join(l.org, orgPKI, pki.CACertFile),
		"--hostile", fmt.Sprint(n))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	// Best effort: without the privilege to lower it the attackers run at normal priority.
	syscall.Setpriority(syscall.PRIO_PROCESS, cmd.Process.Pid, 19)
	progress("%d attackers (pid %d): %d idle connections, %d callers of 19 MiB without a certificate, %d flooding", n, cmd.Process.Pid, idle, large, flood)
	time.Sleep(2 * time.Second)
	return func() {
		in.Close()
		var st attackStats
		err := json.NewDecoder(out).Decode(&st)
		cmd.Wait()
		if err != nil {
			progress("the attackers reported nothing: %v", err)
			return
		}
		l.hostile.AttackCalls += st.Calls
		l.hostile.Refused = st.Refused
		progress("attackers stopped after %d calls; refused: %s", st.Calls, st.Refused)
	}, nil
}

// hostileMix divides n attacking clients: a third each hold 100 idle connections, send 19 MiB
// calls, or flood small calls.
func hostileMix(n int) (idleConns, large, flood int) {
	return 100 * ((n + 2) / 3), (n + 1) / 3, n / 3
}

// attackStats is what the attacking process reports when it stops.
type attackStats struct {
	Calls   int64  `json:"calls"`
	Refused string `json:"refused"`
}

// runAttackers is the attacking process: it attacks f.attack until stdin closes, then prints
// its attackStats.
func runAttackers(ctx context.Context, f loadFlags, stdin io.Reader, stdout io.Writer) error {
	ca, err := pki.ReadCertificates(f.attackCA)
	if err != nil {
		return fmt.Errorf("loadtest: --attack-ca: %w", err)
	}
	idle, large, flood := hostileMix(f.hostile)
	ctx, cancel := context.WithCancel(ctx)
	stats, wait := startHostile(ctx, hostileConfig{Addr: f.attack, Roots: pki.Credentials{Roots: ca}.RootPool(),
		Idle: idle, Large: large, LargeBytes: 19 << 20, Flood: flood, Sources: min(f.hostile, 200)})
	io.Copy(io.Discard, stdin)
	cancel()
	wait()
	return json.NewEncoder(stdout).Encode(attackStats{Calls: stats.Calls.Load(), Refused: stats.String()})
}

func p99(lat []time.Duration) float64 {
	if len(lat) == 0 {
		return 0
	}
	lat = slices.Clone(lat)
	slices.Sort(lat)
	return ms(lat[len(lat)*99/100])
}

func printLoadReport(w io.Writer, r loadReport) {
	fmt.Fprintf(w, "%d devices, %d-parameter encrypted updates of %d bytes, %d rounds\n", r.Devices, r.Params, r.UploadBytes, len(r.Rounds))
	fmt.Fprintf(w, "%-6s %-9s %-12s %-11s %-10s %-9s %-9s %s\n", "round", "accepted", "encrypt (s)", "submit (s)", "updates/s", "p50 (ms)", "p99 (ms)", "release (s)")
	for _, x := range r.Rounds {
		fmt.Fprintf(w, "%-6d %-9d %-12.1f %-11.1f %-10.0f %-9.0f %-9.0f %.1f\n", x.Round, x.Accepted, x.EncryptSec, x.SubmitSec, x.UpdatesPerSec, x.P50Millis, x.P99Millis, x.ReleaseSec)
	}
	fmt.Fprintf(w, "accepted updates per second while submitting: %.0f\n", r.UpdatesPerSec)
	fmt.Fprintf(w, "submission latency: p50 %.0f ms, p99 %.0f ms\n", r.P50Millis, r.P99Millis)
	fmt.Fprintf(w, "coordinator peak memory: %d MiB\n", r.CoordinatorMiB)
	fmt.Fprintf(w, "lost updates: %d; the decrypted average matches the acknowledged updates to %.2g (clip norm 1)\n", r.LostUpdates, r.MaxSumError)
	if h := r.Hostile; h != nil {
		fmt.Fprintf(w, "under attack (%d clients: %d idle connections, %d callers of 19 MiB, %d flooding; %d attack calls, refused %s):\n",
			h.Clients, h.IdleConns, h.LargeCallers, h.FloodCallers, h.AttackCalls, h.Refused)
		fmt.Fprintf(w, "  updates/s %.0f without, %.0f with (ratio %.2f, goal >= 0.8); p99 %.0f ms without, %.0f ms with\n",
			h.CalmPerSec, h.HostilePerSec, h.Ratio, h.CalmP99, h.HostileP99)
	}
	if len(r.Rejected) == 0 {
		fmt.Fprintln(w, "rejected: none")
	}
	for reason, n := range r.Rejected {
		fmt.Fprintf(w, "rejected: %d %s\n", n, reason)
	}
}
