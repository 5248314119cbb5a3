package coordinator_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigilauth/vigil/cluster"
	"github.com/vigilauth/vigil/coordinator"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// TestClusterPublishReplyLost is the network losing the tier's answer to a frontend's store:
// the nats-server stores the update and acknowledges it, and the acknowledgement never
// reaches the frontend (a proxy between them drops that one message, the connection staying
// up). The frontend cannot say the update is stored and tells the device to send it again;
// sent again, the tier holds it already and the device hears that it is in. The round counts
// it once.
func TestClusterPublishReplyLost(t *testing.T) {
	for _, tc := range []struct {
		name string
		part bool // the frontend keeps a part and hands it to the trustees
	}{{name: "the leader reads every update"}, {name: "the frontend keeps a part", part: true}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			open, serverURL := tiersOfOneServer(t, ctx)
			leader := open(nil)
			devices := []string{"a", "b", "c"}
			f, done := clusterRoundOn(t, ctx, leader, devices, len(devices))

			proxy := newAckDropper(t, serverURL)
			nc, err := nats.Connect(proxy.url())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			tier, err := cluster.Open(ctx, nc, cluster.Config{Model: "keystroke-ae", Replicas: 1})
			if err != nil {
				t.Fatal(err)
			}
			var front vigilv1.CoordinatorClient
			if tc.part {
				fronts, _ := partFrontends(t, ctx, f, tier, "fe-proxied")
				front = fronts[0]
			} else {
				front = serveFrontend(t, f, tier)
			}

			var scales []float64
			for i, d := range devices {
				scale := 0.1 * float64(i+1)
				req := f.sealedUpdate(t, waitTask(t, f.api, d), d, vector(scale))
				if i == 1 {
					proxy.dropNextAck()
					// No deadline of the device's: the frontend's wait for the tier ends first.
					_, err := front.SubmitUpdate(ctx, req)
					if status.Code(err) != codes.Unavailable || coordinator.Reason(err) != coordinator.ReasonNotDurable {
						t.Fatalf("device %s, its store's acknowledgement lost: %v, want UNAVAILABLE %s", d, err, coordinator.ReasonNotDurable)
					}
					if proxy.dropped.Load() != 1 {
						t.Fatalf("the proxy dropped %d acknowledgements, want 1", proxy.dropped.Load())
					}
					_, err = front.SubmitUpdate(ctx, req)
					if coordinator.Reason(err) != coordinator.ReasonDuplicate {
						t.Fatalf("device %s sending again: %v, want %s (the tier holds it)", d, err, coordinator.ReasonDuplicate)
					}
				} else if _, err := front.SubmitUpdate(ctx, req); err != nil {
					t.Fatalf("device %s: %v", d, err)
				}
				scales = append(scales, scale)
			}
			waitRun(t, done, "the round did not complete")
			checkAverage(t, f, f.coord.Global(), scales)
		})
	}
}

// ackDropper forwards NATS connections to a server and, when armed, drops the next JetStream
// publish acknowledgement the server sends, whole, so that the protocol stays in step.
type ackDropper struct {
	t       *testing.T
	l       net.Listener
	target  string
	arm     atomic.Bool
	dropped atomic.Int32
	wg      sync.WaitGroup
}

func newAckDropper(t *testing.T, serverURL string) *ackDropper {
	t.Helper()
	u, err := url.Parse(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &ackDropper{t: t, l: l, target: u.Host}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() { l.Close(); p.wg.Wait() })
	return p
}

func (p *ackDropper) url() string  { return "nats://" + p.l.Addr().String() }
func (p *ackDropper) dropNextAck() { p.arm.Store(true) }
func (p *ackDropper) isAck(b []byte) bool {
	return bytes.HasPrefix(b, []byte(`{"stream":`)) && bytes.Contains(b, []byte(`"seq":`))
}

func (p *ackDropper) serve() {
	defer p.wg.Done()
	for {
		client, err := p.l.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			io.Copy(server, client)
			server.Close()
		}()
		go func() {
			defer p.wg.Done()
			p.forward(client, server)
			client.Close()
		}()
	}
}

// forward copies the server's protocol to the client line by line, with each message's
// payload, leaving out one publish acknowledgement when armed.
func (p *ackDropper) forward(client io.Writer, server io.Reader) {
	r := bufio.NewReader(server)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		frame := line
		if f := bytes.Fields(line); len(f) > 0 && (string(f[0]) == "MSG" || string(f[0]) == "HMSG") {
			// The payload's length (headers and body for HMSG) is the line's last field; a
			// CRLF follows it.
			n, err := strconv.Atoi(string(f[len(f)-1]))
			if err != nil {
				p.t.Errorf("proxy: %q", line)
				return
			}
			payload := make([]byte, n+2)
			if _, err := io.ReadFull(r, payload); err != nil {
				return
			}
			body := payload[:n]
			if string(f[0]) == "HMSG" {
				hdr, _ := strconv.Atoi(string(f[len(f)-2]))
				body = payload[hdr:n]
			}
			if p.isAck(body) && p.arm.CompareAndSwap(true, false) {
				p.dropped.Add(1)
				continue
			}
			frame = append(line, payload...)
		}
		if _, err := client.Write(frame); err != nil {
			return
		}
	}
}
