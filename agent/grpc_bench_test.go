package agent_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
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
// client runs in the benchmark's process.

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
	tb.Helper()
	l, err := agent.Listen("127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := grpc.NewServer(agent.GRPCServerOptions()...)
	healthpb.RegisterHealthServer(s, health.NewServer())
	go s.Serve(l)
	tb.Cleanup(s.Stop)
	return l.Addr().String()
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

// BenchmarkHealthGRPC is the floor of BenchmarkAuthorizeGRPC: a bare gRPC unary call (the
// health service's Check) over loopback, client and server in the benchmark's process.
func BenchmarkHealthGRPC(b *testing.B) {
	benchHealth(b, nil, 0, serveHealth(b))
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
	proc                                   *os.Process
}

const helperEnv = "VIGIL_AGENT_BENCH_HELPER"

// startHelper runs TestAgentBenchHelper in a copy of this test binary and reads where it serves.
// The helper stops when its standard input closes, at the benchmark's cleanup.
func startHelper(b *testing.B) helper {
	b.Helper()
	args := []string{"-test.run=^TestAgentBenchHelper$", "-test.count=1"}
	// Flags for the helper's test binary, -test.cpuprofile=FILE say, to profile the agent's side.
	args = append(args, strings.Fields(os.Getenv(helperEnv+"_FLAGS"))...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), helperEnv+"=1")
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
	if f := strings.Fields(line); len(f) != 5 || f[0] != "helper" {
		b.Fatalf("helper process said %q", line)
	} else {
		h = helper{agentAddr: f[1], secret: f[2], session: f[3], healthAddr: f[4], proc: cmd.Process}
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
	healthAddr := serveHealth(t)
	fmt.Printf("helper %s %s %s %s\n", bt.r.conn.Target(), bt.r.secret, bt.sess[0].id, healthAddr)
	io.Copy(io.Discard, os.Stdin) // until the benchmark closes it
}
