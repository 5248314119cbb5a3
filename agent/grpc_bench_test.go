package agent_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vigilauth/vigil/agent"
	"github.com/vigilauth/vigil/internal/cputime"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// The benchmarks here place BenchmarkAuthorizeGRPC against what gRPC-go itself costs on the
// same machine (a bare unary call of the standard health service over loopback, the floor), and
// measure both from a separate process, as a real application calls the agent: the agent (or the
// bare health server) runs in a helper process, a second copy of this test binary, and only the
// client runs in the benchmark's process. The ...Unix benchmarks are the same over a unix socket.
//
// Their p99 on a shared 2-core machine is mostly not the calls' own work: runtimeReport adds the
// garbage collections, scheduling delays and kernel preemptions that make it, and
// VIGIL_AGENT_BENCH_HELPER_ENV=GOGC=400 (say) sets the agent's process apart from the client's.

// benchCalls times b.N calls of call and reports their p50 and p99, and the CPU time they cost
// this process (cpu-ns/op) and, if server is not nil, the server's process (server-cpu-ns/op):
// on a shared machine the latencies grow with the load, the CPU time much less.
func benchCalls(b *testing.B, server *os.Process, call func() error) {
	benchPaced(b, server, 0, call)
}

// benchPaced is benchCalls with a pause of gap before each call, as an application asks
// between its users' actions rather than back to back: the agent's and the client's threads
// go idle between calls and each call wakes them. The pauses count in ns/op, not in p50 and p99.
func benchPaced(b *testing.B, server *os.Process, gap time.Duration, call func() error) {
	b.Helper()
	lat := make(latencies, 0, b.N)
	b.ReportAllocs()
	cputime.Report(b)
	runtimeReport(b)
	reads, writes := syscalls(b, "self")
	b.Cleanup(func() {
		r, w := syscalls(b, "self")
		b.ReportMetric(float64(r-reads)/float64(b.N), "reads/op")
		b.ReportMetric(float64(w-writes)/float64(b.N), "writes/op")
	})
	if server != nil {
		pid := strconv.Itoa(server.Pid)
		start := processCPU(b, pid)
		reads, writes := syscalls(b, pid)
		b.Cleanup(func() {
			b.ReportMetric(float64(processCPU(b, pid)-start)/float64(b.N), "server-cpu-ns/op")
			r, w := syscalls(b, pid)
			b.ReportMetric(float64(r-reads)/float64(b.N), "server-reads/op")
			b.ReportMetric(float64(w-writes)/float64(b.N), "server-writes/op")
			b.ReportMetric(peakRSS(b, pid), "server-peak-MiB")
		})
	}
	b.ResetTimer()
	for range b.N {
		if gap > 0 {
			time.Sleep(gap)
		}
		t0 := time.Now()
		err := call()
		lat = append(lat, time.Since(t0))
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	lat.report(b)
}

// runtimeReport adds to b's results what, besides the calls' own work, makes their tail in
// this process: how many garbage collections ran per 1,000 calls (gc/kop; a call that meets a
// collection's stop-the-world phases, its mark assists or its worker holding a P is slowed, and
// at 2 per 1,000 back-to-back Authorize calls those are most of the slowest 1%), the 99th
// percentile of the runtime's scheduling latency (a runnable goroutine waiting for a P;
// sched-p99-µs) and how often the kernel switched this process's threads out while they could
// still run (nivcsw/op: to another process, or to a thread of this one that a call woke).
func runtimeReport(b *testing.B) {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/sched/latencies:seconds"}}
	metrics.Read(s)
	gcs := s[0].Value.Uint64()
	lat := s[1].Value.Float64Histogram()
	counts := slices.Clone(lat.Counts)
	nivcsw := preemptions()
	b.Cleanup(func() {
		if b.N == 0 {
			return
		}
		metrics.Read(s)
		b.ReportMetric(float64(s[0].Value.Uint64()-gcs)*1000/float64(b.N), "gc/kop")
		h := s[1].Value.Float64Histogram()
		var total uint64
		for i := range h.Counts {
			h.Counts[i] -= counts[i]
			total += h.Counts[i]
		}
		var seen uint64
		for i, n := range h.Counts {
			if seen += n; total > 0 && float64(seen) >= 0.99*float64(total) {
				b.ReportMetric(h.Buckets[i+1]*1e6, "sched-p99-µs") // the bucket's upper bound
				break
			}
		}
		b.ReportMetric(float64(preemptions()-nivcsw)/float64(b.N), "nivcsw/op")
	})
}

// preemptions returns how many times the kernel has preempted this process's threads so far.
func preemptions() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Nivcsw
}

// processCPU returns the user and system CPU time process pid has used so far, from
// /proc/PID/stat (Linux, in clock ticks of 10 ms).
func processCPU(b *testing.B, pid string) time.Duration {
	data, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		b.Skipf("the server's CPU time: %v", err)
	}
	// The fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	if len(f) < 13 {
		b.Fatalf("/proc/%s/stat: %q", pid, data)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%s/stat: %q", pid, data)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// peakRSS returns the peak resident memory of process pid so far in MiB, from /proc/PID/status
// (Linux): what a laxer garbage collector (GOGC) costs the agent.
func peakRSS(b *testing.B, pid string) float64 {
	data, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		b.Skipf("the server's memory: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				b.Fatalf("/proc/%s/status: %q", pid, line)
			}
			return kb / 1024
		}
	}
	b.Fatalf("/proc/%s/status: no VmHWM", pid)
	return 0
}

// syscalls returns how many read and write system calls process pid ("self" for this one) has
// made so far, from /proc/PID/io (Linux): each flush of gRPC's frames is a write, each wake-up
// of a connection's reader at least one read.
func syscalls(b *testing.B, pid string) (reads, writes int64) {
	data, err := os.ReadFile("/proc/" + pid + "/io")
	if err != nil {
		b.Skipf("system call counts: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		switch k {
		case "syscr":
			reads, _ = strconv.ParseInt(v, 10, 64)
		case "syscw":
			writes, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return reads, writes
}

// serveHealth serves gRPC's standard health service, and nothing else, on a fresh loopback
// port, with the agent's transport settings (GRPCServerOptions).
func serveHealth(tb testing.TB) string {
	return serveHealthOn(tb, "127.0.0.1:0")
}

// serveHealthOn is serveHealth on addr, "unix:/path" for a unix socket; it returns the
// address to dial ("unix:///path" for a socket).
func serveHealthOn(tb testing.TB, addr string) string {
	tb.Helper()
	l, err := agent.Listen(addr)
	if err != nil {
		tb.Fatal(err)
	}
	s := grpc.NewServer(agent.GRPCServerOptions()...)
	healthpb.RegisterHealthServer(s, health.NewServer())
	go s.Serve(l)
	tb.Cleanup(s.Stop)
	return target(l)
}

// target returns the address a gRPC client dials to reach l.
func target(l net.Listener) string {
	if l.Addr().Network() == "unix" {
		return "unix://" + l.Addr().String()
	}
	return l.Addr().String()
}

// socketPath returns a fresh unix socket path. Not under tb.TempDir: a socket's path is limited
// to 108 bytes, which a benchmark's temporary directory can exceed.
func socketPath(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "vigil")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s")
}

// serveAgentUnix serves a's gRPC face, as Serve does, on a fresh unix socket as well, and
// returns the address to dial.
func serveAgentUnix(tb testing.TB, a *agent.Agent) string {
	tb.Helper()
	l, err := agent.Listen("unix:" + socketPath(tb))
	if err != nil {
		tb.Fatal(err)
	}
	s := a.GRPCServer()
	go s.Serve(l)
	tb.Cleanup(s.Stop)
	return target(l)
}

// staticWindows are the client's side of the agent's fixed flow-control windows: without them
// the client's gRPC sends a bandwidth-delay ping after nearly every response it receives.
var staticWindows = []grpc.DialOption{grpc.WithStaticStreamWindowSize(agent.MaxBodyBytes), grpc.WithStaticConnWindowSize(agent.MaxBodyBytes)}

// dial connects to addr as an application does: with gRPC's defaults and opts.
func dial(tb testing.TB, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	tb.Helper()
	conn, err := grpc.NewClient(addr, append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

func benchHealth(b *testing.B, server *os.Process, gap time.Duration, addr string, opts ...grpc.DialOption) {
	c := healthpb.NewHealthClient(dial(b, addr, opts...))
	req := &healthpb.HealthCheckRequest{}
	ctx := context.Background()
	benchPaced(b, server, gap, func() error {
		r, err := c.Check(ctx, req)
		if err == nil && r.Status != healthpb.HealthCheckResponse_SERVING {
			err = fmt.Errorf("health %v", r.Status)
		}
		return err
	})
}

func benchAuthorize(b *testing.B, server *os.Process, gap time.Duration, c vigilv1.AgentClient, ctx context.Context, session string) {
	req := &vigilv1.AuthorizeRequest{Session: session, Resource: "transfer"}
	benchPaced(b, server, gap, func() error {
		d, err := c.Authorize(ctx, req)
		if err == nil && !d.Allow {
			err = fmt.Errorf("denied: %s", d.Explanation)
		}
		return err
	})
}

// benchAuthorizeStream is benchAuthorize over one AuthorizeStream: each request is sent and
// its answer read before the next.
func benchAuthorizeStream(b *testing.B, server *os.Process, c vigilv1.AgentClient, ctx context.Context, session string) {
	st, err := c.AuthorizeStream(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.CloseSend() })
	req := &vigilv1.AuthorizeRequest{Session: session, Resource: "transfer"}
	benchPaced(b, server, 0, func() error {
		if err := st.Send(req); err != nil {
			return err
		}
		d, err := st.Recv()
		if err == nil && !d.Allow {
			err = fmt.Errorf("denied: %s", d.Explanation)
		}
		return err
	})
}

// BenchmarkAuthorizeGRPCStream is BenchmarkAuthorizeGRPC over one AuthorizeStream.
func BenchmarkAuthorizeGRPCStream(b *testing.B) {
	bt := newBenchTyping(b)
	benchAuthorizeStream(b, nil, bt.r.grpc, bt.ctx, bt.sess[0].id)
}

// BenchmarkAuthorizeGRPCStreamUnix is BenchmarkAuthorizeGRPCStream over a unix socket.
func BenchmarkAuthorizeGRPCStreamUnix(b *testing.B) {
	bt := newBenchTyping(b)
	benchAuthorizeStream(b, nil, vigilv1.NewAgentClient(dial(b, serveAgentUnix(b, bt.r.a))), bt.ctx, bt.sess[0].id)
}

// BenchmarkAuthorizeGRPCProcessStream is BenchmarkAuthorizeGRPCProcess over one AuthorizeStream.
func BenchmarkAuthorizeGRPCProcessStream(b *testing.B) {
	h := startHelper(b)
	benchAuthorizeStream(b, h.proc, vigilv1.NewAgentClient(dial(b, h.agentAddr)), as(context.Background(), h.secret), h.session)
}

// BenchmarkAuthorizeGRPCProcessStreamUnix is BenchmarkAuthorizeGRPCProcessStream over a unix
// socket.
func BenchmarkAuthorizeGRPCProcessStreamUnix(b *testing.B) {
	h := startHelper(b)
	benchAuthorizeStream(b, h.proc, vigilv1.NewAgentClient(dial(b, h.agentUnix)), as(context.Background(), h.secret), h.session)
}

// BenchmarkAuthorizeGRPCProcessStreamRefitting is BenchmarkAuthorizeGRPCProcessStream while the
// agent fits its user's models again and again, as it does once when a user completes their
// enrolment and once for each release it installs: the worst case of a call arriving during a
// fit.
func BenchmarkAuthorizeGRPCProcessStreamRefitting(b *testing.B) {
	h := startHelper(b, refitEnv+"=1")
	benchAuthorizeStream(b, h.proc, vigilv1.NewAgentClient(dial(b, h.agentUnix)), as(context.Background(), h.secret), h.session)
}

// refitEnv has the helper process refit its user's models without pause (refitForever).
const refitEnv = "VIGIL_AGENT_BENCH_REFIT"

// coresEnv, set in VIGIL_AGENT_BENCH_HELPER_ENV, has the helper's agent serve on that many
// cores (Agent.ServeOn), as vigil agent --cores does: unlike GOMAXPROCS, it lets a fit have a
// core more.
const coresEnv = "VIGIL_AGENT_BENCH_CORES"

// refitForever fits a's users' models again, over and over, until ctx is done.
func refitForever(ctx context.Context, a *agent.Agent) {
	for ctx.Err() == nil {
		if err := a.RefitAll(); err != nil {
			panic(err)
		}
	}
}

// BenchmarkHealthGRPC is the floor of BenchmarkAuthorizeGRPC: a bare gRPC unary call (the
// health service's Check) over loopback, client and server in the benchmark's process.
func BenchmarkHealthGRPC(b *testing.B) {
	benchHealth(b, nil, 0, serveHealth(b))
}

// BenchmarkAuthorizeGRPCUnix is BenchmarkAuthorizeGRPC over a unix socket.
func BenchmarkAuthorizeGRPCUnix(b *testing.B) {
	bt := newBenchTyping(b)
	c := vigilv1.NewAgentClient(dial(b, serveAgentUnix(b, bt.r.a)))
	benchAuthorize(b, nil, 0, c, bt.ctx, bt.sess[0].id)
}

// BenchmarkHealthGRPCUnix is BenchmarkHealthGRPC over a unix socket: the floor of
// BenchmarkAuthorizeGRPCUnix.
func BenchmarkHealthGRPCUnix(b *testing.B) {
	benchHealth(b, nil, 0, serveHealthOn(b, "unix:"+socketPath(b)))
}

// BenchmarkAuthorizeGRPCStaticClient is BenchmarkAuthorizeGRPC from a client that also fixes
// its flow-control windows.
func BenchmarkAuthorizeGRPCStaticClient(b *testing.B) {
	bt := newBenchTyping(b)
	benchAuthorize(b, nil, 0, vigilv1.NewAgentClient(dial(b, bt.r.conn.Target(), staticWindows...)), bt.ctx, bt.sess[0].id)
}

// BenchmarkHealthGRPCStaticClient is the floor of BenchmarkAuthorizeGRPCStaticClient.
func BenchmarkHealthGRPCStaticClient(b *testing.B) {
	benchHealth(b, nil, 0, serveHealth(b), staticWindows...)
}

// BenchmarkAuthorizeGRPCProcess is BenchmarkAuthorizeGRPC with the agent in another process.
func BenchmarkAuthorizeGRPCProcess(b *testing.B) {
	h := startHelper(b)
	benchAuthorize(b, h.proc, 0, vigilv1.NewAgentClient(dial(b, h.agentAddr)), as(context.Background(), h.secret), h.session)
}

// BenchmarkHealthGRPCProcess is BenchmarkHealthGRPC with the server in another process: the
// floor of BenchmarkAuthorizeGRPCProcess.
func BenchmarkHealthGRPCProcess(b *testing.B) {
	h := startHelper(b)
	benchHealth(b, h.proc, 0, h.healthAddr)
}

// BenchmarkAuthorizeGRPCProcessUnix is BenchmarkAuthorizeGRPCProcess over a unix socket.
func BenchmarkAuthorizeGRPCProcessUnix(b *testing.B) {
	h := startHelper(b)
	benchAuthorize(b, h.proc, 0, vigilv1.NewAgentClient(dial(b, h.agentUnix)), as(context.Background(), h.secret), h.session)
}

// BenchmarkHealthGRPCProcessUnix is BenchmarkHealthGRPCProcess over a unix socket: the floor of
// BenchmarkAuthorizeGRPCProcessUnix.
func BenchmarkHealthGRPCProcessUnix(b *testing.B) {
	h := startHelper(b)
	benchHealth(b, h.proc, 0, h.healthUnix)
}

// BenchmarkAuthorizeGRPCProcessStaticClient is BenchmarkAuthorizeGRPCProcess from a client that
// also fixes its flow-control windows.
func BenchmarkAuthorizeGRPCProcessStaticClient(b *testing.B) {
	h := startHelper(b)
	benchAuthorize(b, h.proc, 0, vigilv1.NewAgentClient(dial(b, h.agentAddr, staticWindows...)), as(context.Background(), h.secret), h.session)
}

// BenchmarkHealthGRPCProcessStaticClient is the floor of
// BenchmarkAuthorizeGRPCProcessStaticClient.
func BenchmarkHealthGRPCProcessStaticClient(b *testing.B) {
	h := startHelper(b)
	benchHealth(b, h.proc, 0, h.healthAddr, staticWindows...)
}

// paceGap is the pause before each call of the ...Paced benchmarks.
const paceGap = time.Millisecond

// BenchmarkAuthorizeGRPCPaced is BenchmarkAuthorizeGRPC with a pause before each call.
func BenchmarkAuthorizeGRPCPaced(b *testing.B) {
	bt := newBenchTyping(b)
	benchAuthorize(b, nil, paceGap, bt.r.grpc, bt.ctx, bt.sess[0].id)
}

// BenchmarkAuthorizeGRPCProcessPaced is BenchmarkAuthorizeGRPCProcess with a pause before each
// call.
func BenchmarkAuthorizeGRPCProcessPaced(b *testing.B) {
	h := startHelper(b)
	benchAuthorize(b, h.proc, paceGap, vigilv1.NewAgentClient(dial(b, h.agentAddr)), as(context.Background(), h.secret), h.session)
}

// BenchmarkHealthGRPCProcessPaced is the floor of BenchmarkAuthorizeGRPCProcessPaced.
func BenchmarkHealthGRPCProcessPaced(b *testing.B) {
	h := startHelper(b)
	benchHealth(b, h.proc, paceGap, h.healthAddr)
}

// helper is a helper process serving an agent with an enrolled user's open session, and a bare
// health server.
type helper struct {
	agentAddr, secret, session, healthAddr string
	agentUnix, healthUnix                  string // the same servers' unix sockets
	proc                                   *os.Process
}

const helperEnv = "VIGIL_AGENT_BENCH_HELPER"

// startHelper runs TestAgentBenchHelper in a copy of this test binary, with env added to its
// environment, and reads where it serves. The helper stops when its standard input closes, at
// the benchmark's cleanup.
func startHelper(b *testing.B, env ...string) helper {
	b.Helper()
	args := []string{"-test.run=^TestAgentBenchHelper$", "-test.count=1"}
	// Flags for the helper's test binary, -test.cpuprofile=FILE say, to profile the agent's side.
	args = append(args, strings.Fields(os.Getenv(helperEnv+"_FLAGS"))...)
	cmd := exec.Command(os.Args[0], args...)
	// And its environment's additions, GOMAXPROCS=1 or GOGC=off say, to measure the agent's
	// process under runtime settings the benchmark's process does not share.
	cmd.Env = append(append(append(os.Environ(), helperEnv+"=1"), env...), strings.Fields(os.Getenv(helperEnv+"_ENV"))...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				b.Errorf("helper process: %v", err)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			b.Errorf("helper process did not stop")
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("helper process: %v", err)
	}
	go io.Copy(io.Discard, stdout)
	var h helper
	if f := strings.Fields(line); len(f) != 7 || f[0] != "helper" {
		b.Fatalf("helper process said %q", line)
	} else {
		h = helper{agentAddr: f[1], secret: f[2], session: f[3], healthAddr: f[4], agentUnix: f[5], healthUnix: f[6], proc: cmd.Process}
	}
	return h
}

// TestAgentBenchHelper is the helper process of the ...Process benchmarks; it does nothing
// unless started by one.
func TestAgentBenchHelper(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("the benchmarks' helper process")
	}
	bt := newBenchTyping(t)
	if v := os.Getenv(coresEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a number of cores", coresEnv, v)
		}
		defer bt.r.a.ServeOn(n)()
	}
	if os.Getenv(refitEnv) != "" {
		go refitForever(t.Context(), bt.r.a)
	}
	healthAddr := serveHealth(t)
	agentUnix := serveAgentUnix(t, bt.r.a)
	healthUnix := serveHealthOn(t, "unix:"+socketPath(t))
	fmt.Printf("helper %s %s %s %s %s %s\n", bt.r.conn.Target(), bt.r.secret, bt.sess[0].id, healthAddr, agentUnix, healthUnix)
	io.Copy(io.Discard, os.Stdin) // until the benchmark closes it
}
