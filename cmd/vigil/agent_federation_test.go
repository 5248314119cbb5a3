package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/vigilauth/vigil/agent"
	"github.com/vigilauth/vigil/models/keystroke"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// inProcess runs `vigil args...` in this process until the test ends and returns its stdout
// lines and its stderr.
func inProcess(t *testing.T, ctx context.Context, args ...string) (*lineWaiter, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	stderr := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		err := run(ctx, args, pw, stderr)
		pw.CloseWithError(err)
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		go io.Copy(io.Discard, pr) // the role may still be writing its last lines
		if err := <-done; err != nil && ctx.Err() == nil {
			t.Errorf("vigil %s: %v\n%s", args[0], err, stderr.String())
		}
	})
	return watch(t, pr), stderr
}

// seen reads the lines already written, without waiting, and reports whether any line so far
// starts with prefix.
func (w *lineWaiter) seen(prefix string) bool {
	for more := true; more; {
		select {
		case l, ok := <-w.lines:
			if !ok {
				more = false
				break
			}
			w.all.WriteString(l + "\n")
		default:
			more = false
		}
	}
	for _, l := range strings.Split(w.all.String(), "\n") {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// waitSeen is wait for a line that may have been read already.
func (w *lineWaiter) waitSeen(t *testing.T, prefix string) {
	t.Helper()
	if !w.seen(prefix) {
		w.wait(t, prefix)
	}
}

// waitSeenAny waits until a line starting with one of prefixes has been read, and returns that
// prefix.
func (w *lineWaiter) waitSeenAny(t *testing.T, prefixes ...string) string {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		for _, p := range prefixes {
			if w.seen(p) {
				return p
			}
		}
		select {
		case l, ok := <-w.lines:
			if !ok {
				t.Fatalf("output ended before a line starting with any of %q; got:\n%s", prefixes, w.all.String())
			}
			w.all.WriteString(l + "\n")
		case <-timeout:
			t.Fatalf("no line starting with any of %q within 60s; got:\n%s", prefixes, w.all.String())
		}
	}
}

// drain keeps reading a role's output so that it never blocks on it.
func (w *lineWaiter) drain() {
	go func() {
		for range w.lines {
		}
	}()
}

// TestAgentTakesPartAndInstallsReleases runs `vigil agent` as a device of a real organisation
// started in this process (enrolment authority, three trustees over mutual TLS, coordinator with
// differential privacy and a region store) beside two `vigil client` devices. A user enrols on
// the agent by typing; the agent enrols with the authority and coordinator and, once idle, takes
// part in the rounds from its stored feature windows (its privacy ledger is charged). It
// installs what the rounds release while a session stays open: the first autoencoder at once,
// the population model when the organisation publishes one, and the next autoencoder after it
// has been scored in shadow on the open session's windows. The session keeps its trust and its
// Authorize throughout.
func TestAgentTakesPartAndInstallsReleases(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an organisation")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	orgDir, coordDir, region := org(t), t.TempDir(), t.TempDir()

	enrolLines, _ := inProcess(t, ctx, "enrol", "serve", "--dir", filepath.Join(orgDir, "enrol"), "--listen", "127.0.0.1:0", "--log-level", "warn")
	enrolAddr := strings.Fields(enrolLines.wait(t, "enrolment authority listening on "))[0]
	enrolLines.drain()
	var trustees []string
	for _, id := range []string{"privacy-office", "security", "audit"} {
		dir := filepath.Join(orgDir, "trustees", id)
		lines, _ := inProcess(t, ctx, "trustee", "serve", "--dir", dir, "--pki-dir", filepath.Join(dir, "tls"), "--root", filepath.Join(orgDir, "root.json"),
			"--min-contributors", "3", "--listen", "127.0.0.1:0", "--log-level", "warn")
		line := lines.wait(t, "trustee "+id)
		trustees = append(trustees, "--trustee", id+"="+line[strings.LastIndex(line, " ")+1:])
		lines.drain()
	}
	// No --metrics-listen: its default is the fixed port 9464, which may be taken on a test host.
	coordLines, _ := inProcess(t, ctx, append([]string{"coordinator", "--org", orgDir, "--dir", coordDir, "--listen", "127.0.0.1:0", "--metrics-listen", "",
		"--region", "eu=" + region, "--rounds", "2", "--devices-per-round", "3", "--min-updates", "3", "--log-level", "warn",
		// Three devices' noise would outweigh any round's progress: a small clip keeps the
		// release close to its parent, so that it passes its shadow evaluation on the user.
		"--clip", "0.01"}, trustees...)...)
	coordAddr := coordLines.wait(t, "coordinator listening on ")
	coordLines.drain()

	// The agent, with a user who enrols by typing before the agent is ever idle.
	agentDir := t.TempDir()
	root := filepath.Join(orgDir, "root.json")
	agentLines, agentErr := inProcess(t, ctx, append([]string{"agent", "--dir", agentDir, "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0",
		"--coordinator", coordAddr, "--device-id", "laptop-1", "--root", root, "--region-store", region, "--poll", "100ms",
		"--idle-after", "1s", "--shadow-windows", "3",
		"--event-skew", "1h"}, // the typist's minutes of typing are sent at once
		enrolFlags(t, orgDir, enrolAddr, "laptop-1")...)...)
	agentLines.wait(t, "enrolled as laptop-1")
	grpcAddr := strings.TrimSuffix(strings.Fields(agentLines.wait(t, "vigil agent: gRPC "))[0], ",")
	secret, err := os.ReadFile(filepath.Join(agentDir, agent.SecretFile))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	api := vigilv1.NewAgentClient(conn)
	actx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+strings.TrimSpace(string(secret)))
	owner := keystroke.NewTypist(11)
	typing := &typist{t: t, api: api, ctx: actx, ty: owner}
	typing.start("enrol", "nora")
	if st := typing.typeKeys("enrol", 300); !st.Enrolment.Enrolled {
		// The model is fitted in the background: the status may not say so yet. The fit
		// takes what the machine gives it, so wait for the agent's log line, not a fixed time.
		for deadline := time.Now().Add(time.Minute); !strings.Contains(agentErr.String(), `msg="user enrolled" user=nora `); time.Sleep(20 * time.Millisecond) {
			if ctx.Err() != nil || time.Now().After(deadline) {
				t.Fatalf("nora not enrolled a minute after typing 300 keys; agent stderr:\n%s", agentErr.String())
			}
		}
	}
	if _, err := api.EndSession(actx, &vigilv1.EndSessionRequest{Session: "enrol"}); err != nil {
		t.Fatal(err)
	}

	// Two more devices make the round's quorum.
	for i := 1; i <= 2; i++ {
		id := fmt.Sprintf("phone-%d", i)
		lines, _ := inProcess(t, ctx, append([]string{"client", "--coordinator", coordAddr, "--device-id", id, "--dir", filepath.Join(t.TempDir(), id),
			"--root", root, "--synthetic-seed", fmt.Sprint(100 + i), "--log-level", "error"}, enrolFlags(t, orgDir, enrolAddr, id)...)...)
		lines.drain()
	}

	// The session that stays open while the releases are installed. The agent stays idle
	// (no events) until it has taken part.
	typing.start("work", "nora")
	agentLines.waitSeen(t, "enrolled as laptop-1")
	agentLines.waitSeen(t, "global model installed: keystroke-ae v1")
	// The updater stages v2, or v3 alone when both rounds released before it polled again.
	agentLines.waitSeenAny(t, "release keystroke-ae v2 staged", "release keystroke-ae v3 staged")
	if !agentLines.seen("submitted round ") {
		t.Fatalf("a release was staged but the agent took part in no round:\n%s", agentLines.all.String())
	}

	// The candidate is scored in shadow on the open session's windows, then promoted and
	// installed into the user's model without ending the session.
	// Both rounds may have released before the updater polls again: it then installs the
	// newest promoted release, v3, without ever installing v2.
	var st *vigilv1.SessionStatus
	installed := func() string {
		for _, v := range []string{"v2", "v3"} {
			if agentLines.seen("global model installed: keystroke-ae " + v) {
				return v
			}
		}
		return ""
	}
	promoted := func() bool {
		return agentLines.seen("release keystroke-ae v2 promoted") || agentLines.seen("release keystroke-ae v3 promoted")
	}
	// Typing until the candidate is promoted: the shadow scoring needs the session's windows.
	// The synthetic typing runs ahead of the clock, so this can go on only so long before the
	// agent would refuse its events as from the future.
	for !promoted() && installed() == "" {
		if ctx.Err() != nil || time.Until(typing.next) > 4*time.Minute {
			t.Fatalf("no release promoted after v1 installed; last status %v; agent output:\n%s\nagent stderr:\n%s", st, agentLines.all.String(), agentErr.String())
		}
		st = typing.typeKeys("work", 50)
		time.Sleep(20 * time.Millisecond) // the updater scores the windows in its own time
	}
	// The installation, which refits the user's model, follows the promotion in its own time
	// and needs no more typing: typing on while a loaded machine refitted ran out of the
	// synthetic typing's lead (a run failed with v2 promoted and its installation under way).
	for deadline := time.Now().Add(time.Minute); installed() == ""; time.Sleep(20 * time.Millisecond) {
		if ctx.Err() != nil || time.Now().After(deadline) {
			t.Fatalf("a release was promoted but not installed within a minute; last status %v; agent output:\n%s\nagent stderr:\n%s", st, agentLines.all.String(), agentErr.String())
		}
	}
	v := installed()
	if st == nil {
		st = typing.typeKeys("work", 50)
	}
	if !agentLines.seen("release keystroke-ae " + v + " promoted") {
		t.Fatalf("%s installed without a promotion:\n%s", v, agentLines.all.String())
	}
	t.Logf("agent output:\n%s", agentLines.all.String())
	agentLines.drain()
	// The installation swapped the user's model under the open session: its trust is where the
	// last batch left it, and the session goes on being scored by the refitted model.
	d, err := api.Authorize(actx, &vigilv1.AuthorizeRequest{Session: "work", Resource: "transfer"})
	if err != nil {
		t.Fatal(err)
	}
	if d.Trust != st.Trust || st.Revoked {
		t.Fatalf("installing %s changed the open session: trust %.2f before, %.2f after (revoked %v)", v, st.Trust, d.Trust, st.Revoked)
	}
	after := typing.typeKeys("work", 100)
	t.Logf("trust %.1f (%s) when %s was installed, %.1f (%s) after 100 more keystrokes scored by the refitted model",
		st.Trust, st.Tier, v, after.Trust, after.Tier)
	if after.Ended || after.Revoked {
		t.Fatalf("the open session did not survive the installation: %v", after)
	}
	ledger, err := os.ReadFile(filepath.Join(agentDir, "privacy.ledger"))
	if err != nil || len(ledger) == 0 {
		t.Fatalf("the agent's privacy ledger: %d bytes, %v", len(ledger), err)
	}
}

// typist types a synthetic user's keystrokes into agent sessions, each batch after the last.
type typist struct {
	t    *testing.T
	api  vigilv1.AgentClient
	ctx  context.Context
	ty   *keystroke.Typist
	next time.Time
}

func (p *typist) start(session, user string) {
	p.t.Helper()
	if _, err := p.api.StartSession(p.ctx, &vigilv1.StartSessionRequest{Session: session, User: user}); err != nil {
		p.t.Fatal(err)
	}
}

// typeKeys sends n keystrokes in batches of 25 and returns the last status.
func (p *typist) typeKeys(session string, n int) *vigilv1.SessionStatus {
	p.t.Helper()
	ks := p.ty.Type(n)
	start := time.Now()
	if start.Before(p.next) {
		start = p.next
	}
	base := float64(start.UnixNano()) / 1e6
	keys := make([]*vigilv1.KeyTiming, 0, len(ks))
	for _, k := range ks {
		pr := base + float64(k.Press-ks[0].Press)/1e6
		rel := pr
		if h, ok := k.Hold(); ok {
			rel = pr + float64(h)/1e6
		}
		keys = append(keys, &vigilv1.KeyTiming{PressMs: pr, ReleaseMs: rel, Code: uint32(k.Code)})
	}
	p.next = time.UnixMilli(int64(keys[len(keys)-1].ReleaseMs)).Add(time.Second)
	var st *vigilv1.SessionStatus
	for i := 0; i < len(keys); i += 25 {
		r, err := p.api.SendEvents(p.ctx, &vigilv1.SendEventsRequest{Session: session, Keys: keys[i:min(i+25, len(keys))]})
		if err != nil {
			p.t.Fatal(err)
		}
		if r.Rejected > 0 {
			p.t.Fatalf("%d events rejected: %s", r.Rejected, r.RejectedReason)
		}
		st = r.Status
	}
	return st
}
