package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigilauth/vigil/enrolment"
	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/sim"
)

type loadFlags struct {
	devices, params, rounds, concurrency int
	dir                                  string
	json                                 bool
	metrics                              string
	timeout                              time.Duration
	hostile                              int
	attack, attackCA                     string
	frontends                            int
	frontendCPU                          float64
	tier                                 bool
	natsServer                           string
	tierBlobs                            string
}

// runLoadtest measures a coordinator under a fleet: N devices (goroutines here, each with its
// own mutual-TLS connection and certificate) send real threshold-encrypted updates to a
// coordinator running as its own process, with three trustee processes, for a few rounds.
// With --frontends K the coordinator's tier (its embedded JetStream) gets K aggregation
// frontend processes, and the devices hand their updates to those.
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
	fs.IntVar(&f.frontends, "frontends", 0, "aggregation frontend processes (vigil coordinator --frontend) on the coordinator's embedded JetStream tier; the devices submit to them, spread by device ID, and make every other call to the coordinator")
	fs.Float64Var(&f.frontendCPU, "frontend-cpu", 0, "cap each frontend at this many CPUs, in a Linux control group of its own (needs root): the tier as on machines with the cores, each frontend its own share while the rest has room (default: no cap)")
	fs.BoolVar(&f.tier, "tier", false, "run the coordinator with its embedded JetStream tier (--nats embedded; --frontends implies it); without it updates go straight into the round's sum, the coordinator's default")
	fs.StringVar(&f.natsServer, "nats-server", "", "run the tier on a `nats-server` process of its own (the binary's path; `bash .ci/nats.sh build` builds one) rather than embedded in the coordinator, which then stores every update itself; implies --tier")
	fs.StringVar(&f.tierBlobs, "tier-blobs", "", "keep the updates' bytes in this object store, a `LOCATION` (a directory, or s3://bucket[/prefix] with VIGIL_MINIO_*), and only their hashes in the tier's streams (the coordinator's and frontends' --tier-blobs; default with the embedded tier: the coordinator's DIR/state/tier-blobs, \"off\" keeps them in the streams); implies --tier")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if f.attack != "" {
		return runAttackers(ctx, f, os.Stdin, stdout)
	}
	switch {
	case fs.NArg() > 0:
		return unexpectedArgument("loadtest", fs)
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
	case f.frontends < 0 || f.frontends > 16:
		return fmt.Errorf("loadtest: --frontends %d out of range 0..16", f.frontends)
	case f.frontendCPU < 0 || f.frontendCPU > 64 || (f.frontendCPU > 0 && f.frontendCPU < 0.01):
		return fmt.Errorf("loadtest: --frontend-cpu %g out of range 0.01..64", f.frontendCPU)
	case f.frontendCPU > 0 && f.frontends == 0:
		return errors.New("loadtest: --frontend-cpu caps the frontends: give --frontends too")
	}
	if f.frontendCPU > 0 {
		removeCPUCaps(cpuCapPrefix) // a killed run's
	}
	// Frontends are the tier's.
	f.tier = f.tier || f.frontends > 0 || f.natsServer != "" || f.tierBlobs != ""
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	if f.dir == "" {
		var err error
		if f.dir, err = os.MkdirTemp("", "vigil-loadtest-"); err != nil {
			return fmt.Errorf("loadtest: %w", err)
		}
		// Removed after the processes below have stopped (deferred calls run last first): a run
		// with the tier leaves over a GiB of JetStream store and device identities.
		defer os.RemoveAll(f.dir)
	}
	progress := func(format string, a ...any) { fmt.Fprintf(stderr, "loadtest: "+format+"\n", a...) }
	org, fleet, err := startLoad(ctx, f, progress)
	if org != nil {
		defer org.stop()
	}
	if err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	defer fleet.Close()
	rep, err := fleet.Run(ctx)
	if err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	for i, fe := range org.frontends {
		rep.Frontends[i].PeakMiB = processPeakMiB(fe.Process.Pid)
	}
	if org.nats != nil {
		if load, err := processesLoad([]*exec.Cmd{org.nats}, rep.Rounds); err == nil {
			rep.TierServer = load
		}
	}
	if load, err := processesLoad(org.trustees, rep.Rounds); err == nil {
		rep.Trustees = load
	}
	rep.CoordinatorMiB = org.stopCoordinator()
	if f.json {
		return json.NewEncoder(stdout).Encode(rep)
	}
	printLoadReport(stdout, rep)
	return nil
}

// processesLoad is what the processes used over the whole run, each on average, per update
// the rounds accepted.
func processesLoad(procs []*exec.Cmd, rounds []sim.LoadRound) (*sim.ServerLoad, error) {
	accepted := 0
	for _, r := range rounds {
		accepted += r.Accepted
	}
	var out sim.ServerLoad
	for _, p := range procs {
		cpu, err := processCPU(p.Process.Pid)
		if err != nil {
			return nil, err
		}
		out.CPUSec += cpu.Seconds() / float64(len(procs))
		out.PeakMiB = max(out.PeakMiB, processPeakMiB(p.Process.Pid))
	}
	out.CPUMillisPerUpdate = 1000 * out.CPUSec / float64(max(accepted, 1))
	return &out, nil
}

// loadOrg is the load test's organisation: three trustees, the enrolment authority and the
// coordinator, each a child vigil process.
type loadOrg struct {
	org, addr string
	enrolAddr string
	hidden    int
	procs     []*exec.Cmd
	trustees  []*exec.Cmd    // the trustee processes, among procs
	coord     *exec.Cmd      // the coordinator, the tier's round leader
	frontends []*exec.Cmd    // its aggregation frontends
	uncap     []func() error // remove the frontends' control groups (--frontend-cpu), once they have exited
	nats      *exec.Cmd      // the tier's nats-server, with --nats-server
	coordOut  *bufio.Scanner
}

// startLoad starts the organisation's processes and enrols the fleet (sim.Load) with them.
func startLoad(ctx context.Context, f loadFlags, progress func(string, ...any)) (*loadOrg, *sim.Load, error) {
	l := &loadOrg{org: filepath.Join(f.dir, "org"), hidden: max(1, (f.params-16)/33)}
	trustees := []string{"privacy-office", "security", "audit"}
	if err := setupOrg(l.org, trustees, 2, []string{"127.0.0.1", "localhost"}, defaultPolicyFlags(), time.Now()); err != nil {
		return l, nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return l, nil, err
	}
	var trusteeFlags []string
	for _, id := range trustees {
		dir := filepath.Join(l.org, orgTrustees, id)
		line, err := l.spawn(ctx, exe, "trustee "+id, "trustee", "serve", "--dir", dir, "--pki-dir", filepath.Join(dir, orgTrusteeTLS),
			"--root", filepath.Join(l.org, orgRoot), "--min-contributors", fmt.Sprint(f.devices), "--listen", "127.0.0.1:0", "--log-level", "warn")
		if err != nil {
			return l, nil, err
		}
		l.trustees = append(l.trustees, l.procs[len(l.procs)-1])
		trusteeFlags = append(trusteeFlags, "--trustee", id+"="+line[strings.LastIndex(line, " ")+1:])
	}
	line, err := l.spawn(ctx, exe, "enrolment authority listening on ", "enrol", "serve", "--dir", filepath.Join(l.org, orgEnrol),
		"--listen", "127.0.0.1:0", "--log-level", "warn")
	if err != nil {
		return l, nil, err
	}
	l.enrolAddr = strings.Fields(strings.TrimPrefix(line, "enrolment authority listening on "))[0]
	args := []string{"coordinator", "--org", l.org, "--dir", filepath.Join(f.dir, "coordinator"), "--listen", "127.0.0.1:0",
		"--metrics-listen", f.metrics, "--devices-per-round", fmt.Sprint(f.devices),
		"--min-updates", fmt.Sprint(f.devices), "--min-enrolled", fmt.Sprint(f.devices), "--round-timeout", "15m",
		"--model-layers", fmt.Sprintf("16,%d,16", l.hidden), "--log-level", "warn",
		// The load test measures throughput, not privacy: a budget large enough for its rounds
		// (the default stops the coordinator after about three of them), and training rounds
		// only (its devices send training updates).
		"--epsilon", "1000000", "--population-noise", "0"}
	if f.metrics != "" {
		args = append(args, "--pprof")
	}
	natsURL := ""
	switch {
	case f.natsServer != "":
		if natsURL, err = l.startNATS(ctx, f.natsServer, filepath.Join(f.dir, "nats")); err != nil {
			return l, nil, fmt.Errorf("--nats-server: %w", err)
		}
		args = append(args, "--nats", natsURL, "--nats-replicas", "1")
	case f.tier:
		args = append(args, "--nats", "embedded")
	}
	var blobFlags []string
	if f.tierBlobs != "" {
		blobFlags = []string{"--tier-blobs", f.tierBlobs}
		args = append(args, blobFlags...)
	}
	line, err = l.spawn(ctx, exe, "coordinator listening on ", append(args, trusteeFlags...)...)
	if err != nil {
		return l, nil, err
	}
	l.coord = l.procs[len(l.procs)-1]
	l.addr = strings.TrimPrefix(line, "coordinator listening on ")
	coordPID := l.coord.Process.Pid
	tier := "updates straight into the round's sum (--nats off)"
	var frontendAddrs []string
	var frontendPIDs []int
	if f.tier {
		url, tierFlags := natsURL, []string{}
		if url != "" {
			tier = fmt.Sprintf("its JetStream tier on a nats-server process of its own (pid %d) on %s", l.nats.Process.Pid, url)
		} else {
			if url, err = l.tierURL(); err != nil {
				return l, nil, err
			}
			tier = "its embedded JetStream tier on " + url
			tierFlags = []string{"--nats-token-file", filepath.Join(f.dir, "coordinator", "state", "nats.token")}
			if f.tierBlobs == "" {
				// Where the embedded tier's leader keeps them by default.
				blobFlags = []string{"--tier-blobs", filepath.Join(f.dir, "coordinator", "state", tierBlobsDir)}
			}
		}
		if len(blobFlags) > 0 && blobFlags[1] != blobsOff {
			tier += ", the updates' bytes in " + blobFlags[1]
		}
		for range f.frontends {
			args := append([]string{"coordinator", "--frontend", "--org", l.org, "--nats", url,
				// The tier is one node: the frontend's default of 3 replicas fails to open the
				// tier's bucket on it.
				"--nats-replicas", "1", "--listen", "127.0.0.1:0", "--log-level", "warn"}, append(tierFlags, blobFlags...)...)
			// The frontend has the trustees verify its updates itself, not the leader.
			line, err := l.spawn(ctx, exe, "frontend listening on ", append(args, trusteeFlags...)...)
			if err != nil {
				return l, nil, err
			}
			fe := l.procs[len(l.procs)-1]
			if f.frontendCPU > 0 {
				remove, err := capCPU(fe.Process.Pid, fmt.Sprintf("%s%d", cpuCapPrefix, fe.Process.Pid), f.frontendCPU)
				if err != nil {
					return l, nil, fmt.Errorf("--frontend-cpu: %w", err)
				}
				l.uncap = append(l.uncap, remove)
			}
			l.frontends = append(l.frontends, fe)
			frontendPIDs = append(frontendPIDs, fe.Process.Pid)
			frontendAddrs = append(frontendAddrs, strings.Fields(strings.TrimPrefix(line, "frontend listening on "))[0])
		}
	}
	capped := ""
	if f.frontendCPU > 0 {
		capped = fmt.Sprintf(" (each capped at %g CPU)", f.frontendCPU)
	}
	progress("coordinator (pid %d) on %s with %s, %d frontends %v%s, 3 trustee processes and the enrolment authority; enrolling %d devices",
		coordPID, l.addr, tier, len(frontendAddrs), frontendPIDs, capped, f.devices)
	start := time.Now()
	cfg := sim.LoadConfig{Devices: f.devices, Rounds: f.rounds, Concurrency: f.concurrency, Hostile: f.hostile,
		Coordinator: l.addr, Frontends: frontendAddrs, Enrolment: l.enrolAddr, Progress: progress, Dir: filepath.Join(f.dir, "devices"),
		CoordinatorCPU: func() (time.Duration, error) { return processCPU(coordPID) },
		FrontendCPU:    func(i int) (time.Duration, error) { return processCPU(frontendPIDs[i]) },
		Attack: func(ctx context.Context, n int) (func() (sim.AttackStats, error), error) {
			return l.attack(ctx, n, progress)
		}}
	auth, err := pki.OpenAuthority(filepath.Join(l.org, orgPKI))
	if err != nil {
		return l, nil, err
	}
	cfg.CA = auth.CA
	if cfg.Tokens, err = pki.OpenTokens(filepath.Join(l.org, orgEnrol, enrolment.TokensFile)); err != nil {
		return l, nil, err
	}
	if cfg.EnrolmentCA, err = pki.ReadCertificates(filepath.Join(l.org, orgEnrol, pki.CACertFile)); err != nil {
		return l, nil, err
	}
	if cfg.Root, err = os.ReadFile(filepath.Join(l.org, orgRoot)); err != nil {
		return l, nil, err
	}
	fleet, err := sim.NewLoad(ctx, cfg)
	if err != nil {
		return l, nil, err
	}
	progress("%d devices enrolled over mutual TLS in %.1fs", f.devices, time.Since(start).Seconds())
	return l, fleet, nil
}

// startNATS starts a single nats-server with JetStream in dir, speaking only mutual TLS with
// the organisation's coordinator certificate, as docs/tier.md configures one, and returns its
// URL once it accepts connections.
func (l *loadOrg) startNATS(ctx context.Context, bin, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	_, creds, err := orgCoordinator(l.org)
	if err != nil {
		return "", err
	}
	id, err := creds.Identity()
	if err != nil {
		return "", err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := lis.Addr().String()
	lis.Close()
	pkiDir := filepath.Join(l.org, orgPKI, pki.CoordinatorDir)
	conf := fmt.Sprintf(`listen: %q
max_payload: 8MB
jetstream { store_dir: %q }
tls {
  cert_file: %q, key_file: %q, ca_file: %q
  verify_and_map: true, min_version: "1.3", curve_preferences: ["X25519MLKEM768"], timeout: 5
}
authorization { users: [{user: %q}] }
`, addr, filepath.Join(dir, "store"), filepath.Join(pkiDir, pki.CertFile), filepath.Join(pkiDir, pki.KeyFile), filepath.Join(pkiDir, pki.RootsFile), id.String())
	path := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, bin, "-c", path)
	logf, err := os.Create(filepath.Join(dir, "nats.log"))
	if err != nil {
		return "", err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return "", err
	}
	l.procs = append(l.procs, cmd)
	l.nats = cmd
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return "tls://" + addr, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("nats-server did not listen on %s within 15s (its log: %s)", addr, filepath.Join(dir, "nats.log"))
		}
	}
}

// tierURL reads the embedded JetStream's URL from the coordinator's output.
func (l *loadOrg) tierURL() (string, error) {
	const prefix = "embedded JetStream on "
	for l.coordOut.Scan() {
		if rest, ok := strings.CutPrefix(l.coordOut.Text(), prefix); ok {
			return strings.Fields(rest)[0], nil
		}
	}
	return "", fmt.Errorf("the coordinator did not say where its embedded JetStream is (%q)", prefix)
}

// spawn starts a child vigil process and returns its first stdout line starting with ready;
// the coordinator's further output stays readable in l.coordOut.
func (l *loadOrg) spawn(ctx context.Context, exe, ready string, args ...string) (string, error) {
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
		if line := sc.Text(); strings.HasPrefix(line, ready) {
			if args[0] == "coordinator" && !slices.Contains(args, "--frontend") {
				l.coordOut = sc
			} else {
				// Read before this goroutine scans on: a frontend's next line came back once
				// as its address.
				go func() {
					for sc.Scan() {
					}
				}()
			}
			return line, nil
		}
	}
	return "", fmt.Errorf("vigil %s exited before it was ready", strings.Join(args[:2], " "))
}

// stopCoordinator stops the coordinator cleanly, which parks the round it opened next, and
// returns the peak memory it reports.
func (l *loadOrg) stopCoordinator() (mib int) {
	l.coord.Process.Signal(syscall.SIGTERM)
	for l.coordOut.Scan() {
		var m int
		if _, err := fmt.Sscanf(l.coordOut.Text(), "peak memory %d MiB", &m); err == nil {
			mib = m
		}
	}
	return mib
}

func (l *loadOrg) stop() {
	for _, p := range l.procs {
		p.Process.Kill()
		p.Wait()
	}
	for _, remove := range l.uncap {
		if err := remove(); err != nil {
			fmt.Fprintf(os.Stderr, "loadtest: a frontend's control group stays: %v\n", err)
		}
	}
}

// cpuCapPrefix names the frontends' control groups (--frontend-cpu), followed by their PIDs.
const cpuCapPrefix = "vigil-loadtest-frontend-"

// attack starts n attacking clients against the coordinator and returns the function that
// stops them and reports what they did; it lets them ramp up for two seconds first. They run
// in a process of their own at the lowest CPU priority, as attackers on other machines would:
// on the same cores at the same priority, the attackers' own work would be counted as the
// coordinator's loss.
func (l *loadOrg) attack(ctx context.Context, n int, progress func(string, ...any)) (stop func() (sim.AttackStats, error), err error) {
	idle, large, flood := sim.HostileMix(n)
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
	return func() (sim.AttackStats, error) {
		in.Close()
		var st sim.AttackStats
		err := json.NewDecoder(out).Decode(&st)
		cmd.Wait()
		return st, err
	}, nil
}

// runAttackers is the attacking process: it attacks f.attack until stdin closes, then prints
// its sim.AttackStats.
func runAttackers(ctx context.Context, f loadFlags, stdin io.Reader, stdout io.Writer) error {
	ca, err := pki.ReadCertificates(f.attackCA)
	if err != nil {
		return fmt.Errorf("loadtest: --attack-ca: %w", err)
	}
	idle, large, flood := sim.HostileMix(f.hostile)
	ctx, cancel := context.WithCancel(ctx)
	stats, wait := sim.StartHostile(ctx, sim.HostileConfig{Addr: f.attack, Roots: pki.Credentials{Roots: ca}.RootPool(),
		Idle: idle, Large: large, LargeBytes: 19 << 20, Flood: flood, Sources: min(f.hostile, 200)})
	io.Copy(io.Discard, stdin)
	cancel()
	wait()
	return json.NewEncoder(stdout).Encode(sim.AttackStats{Calls: stats.Calls.Load(), Refused: stats.String()})
}

func printLoadReport(w io.Writer, r sim.LoadReport) {
	fmt.Fprintf(w, "%d devices, %d-parameter encrypted updates of %d bytes, %d rounds\n", r.Devices, r.Params, r.UploadBytes, len(r.Rounds))
	fmt.Fprintf(w, "%-6s %-9s %-12s %-11s %-10s %-9s %-9s %s\n", "round", "accepted", "encrypt (s)", "submit (s)", "updates/s", "p50 (ms)", "p99 (ms)", "release (s)")
	for _, x := range r.Rounds {
		fmt.Fprintf(w, "%-6d %-9d %-12.1f %-11.1f %-10.0f %-9.0f %-9.0f %.1f\n", x.Round, x.Accepted, x.EncryptSec, x.SubmitSec, x.UpdatesPerSec, x.P50Millis, x.P99Millis, x.ReleaseSec)
	}
	fmt.Fprintf(w, "accepted updates per second while submitting: %.0f\n", r.UpdatesPerSec)
	if r.UpdatesPerCPUSec > 0 {
		fmt.Fprintf(w, "accepted updates per coordinator CPU-second while submitting: %.0f\n", r.UpdatesPerCPUSec)
	}
	if r.TierUpdatesPerCPUSec > 0 {
		fmt.Fprintf(w, "accepted updates per coordinator-tier CPU-second (leader and frontends, submissions to release): %.0f\n", r.TierUpdatesPerCPUSec)
		if r.LeaderCPUMillisPerUpdate > 0 {
			fmt.Fprintf(w, "accepted updates per leader CPU-second (submissions to release): %.0f\n", 1000/r.LeaderCPUMillisPerUpdate)
		}
		fmt.Fprintf(w, "leader CPU per update: %.1f ms", r.LeaderCPUMillisPerUpdate)
		if len(r.Frontends) > 0 {
			fmt.Fprintf(w, "; frontend CPU per update: %.1f ms; the leader took %d updates itself", r.FrontendCPUMillisPerUpdate, r.LeaderAccepted)
		}
		fmt.Fprintln(w)
	}
	for i, fe := range r.Frontends {
		fmt.Fprintf(w, "frontend %d (%s): %d updates (%d more answered Unavailable), %.1f CPU-s, %.0f updates per CPU-second, peak memory %d MiB\n",
			i, fe.Addr, fe.Accepted, fe.Unavailable, fe.CPUSec, fe.UpdatesPerCPUSec, fe.PeakMiB)
	}
	if t := r.Trustees; t != nil {
		fmt.Fprintf(w, "trustees (3 processes): each %.1f CPU-s over the whole run, %.1f ms per accepted update, peak memory %d MiB\n", t.CPUSec, t.CPUMillisPerUpdate, t.PeakMiB)
	}
	if t := r.TierServer; t != nil {
		fmt.Fprintf(w, "tier server (nats-server, its own process): %.1f CPU-s over the whole run, %.1f ms per accepted update (enrolment included), peak memory %d MiB\n",
			t.CPUSec, t.CPUMillisPerUpdate, t.PeakMiB)
	}
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

// processPeakMiB returns the peak resident memory of process pid (VmHWM, Linux), or 0.
func processPeakMiB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return kb >> 10
		}
	}
	return 0
}

// processCPU returns the user and system CPU time process pid has used, from /proc/PID/stat
// (Linux).
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may contain spaces: the fields counted are after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the name", pid, len(f))
	}
	var ticks int64
	for _, s := range f[11:13] { // utime and stime, fields 14 and 15 of stat(5)
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	// USER_HZ is 100 on every Linux ABI Go supports.
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}
