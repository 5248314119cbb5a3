package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/vigilauth/vigil/agent"
	"github.com/vigilauth/vigil/agent/attest"
	"github.com/vigilauth/vigil/guard"
)

// useCores has agent a serve on n cores (Agent.ServeOn) unless n is 0 (the runtime's own
// choice, which follows a container's CPU limit) or the GOMAXPROCS environment variable says
// otherwise, and returns what restores the previous setting.
func useCores(a *agent.Agent, n int) (restore func()) {
	if _, set := os.LookupEnv("GOMAXPROCS"); set || n == 0 {
		return func() {}
	}
	return a.ServeOn(n)
}

// runAgent runs the device agent: the local API (gRPC and HTTP/JSON), the capture script, and
// optionally the demo application.
func runAgent(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("agent", stdout, slices.Concat(envMinIO, []string{
		"GOGC=400  the Go collector's pace: for the lowest tail latency of the gRPC API (p99 of a local Authorize about halved), at some 20 MiB more peak memory under load; default 100",
		"GOMAXPROCS=N  overrides --cores"})...)
	home, _ := os.UserHomeDir()
	dir := fs.String("dir", filepath.Join(home, ".vigil", "agent"), "the agent's keys, encrypted state and audit log `DIR`")
	grpcAddr := fs.String("grpc", "127.0.0.1:7411", "gRPC API `ADDR`: a loopback host:port or unix:/path/to/socket (the faster); empty to disable")
	httpAddr := fs.String("http", "127.0.0.1:7412", "HTTP/JSON API, /vigil.js and the demo `ADDR`: loopback host:port or unix:/path")
	demo := fs.Bool("demo-app", false, "serve the demo web application at /demo/")
	policyPath := fs.String("policy", "", "minimum trust per resource, one 'resource trust' per line `FILE` (default: "+
		"profile.read 40, documents.read 50, transfer 70, admin 85)")
	heads := fs.Duration("head-interval", time.Minute, "how often to export a signed head of the audit log")
	cores := fs.Int("cores", 1, "how many cores the agent answers on once it serves (0: the runtime's choice, every core or a container's limit); start-up refits use the runtime's choice, and a fit gets one core more while it runs. One answers an application in another process sooner and for less CPU than two (docs/agent.md, Figures)")
	eventSkew := fs.Duration("event-skew", 30*time.Second, "how far ahead of the agent's clock an event's time may lie; further is refused (a page's script that dates events ahead would earn trust in time that has not passed)")
	var sites listFlag
	fs.Var(&sites, "site", "a web site `ORIGIN` (https://bank.example) whose pages may start sessions on this device themselves and get decisions signed for its server (docs/agent.md, Web sites); repeatable")
	siemFlags := addSIEMFlags(fs)
	fed := addAgentFederationFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return unexpectedArgument("agent", fs)
	}
	if *cores < 0 {
		return fmt.Errorf("agent: --cores %d: want 0 (all) or more", *cores)
	}
	if *grpcAddr == "" && *httpAddr == "" {
		return errors.New("agent: --grpc and --http are both empty: nothing to serve")
	}
	if err := fed.check(fs, *dir); err != nil {
		return err
	}
	for _, o := range sites {
		if _, err := attest.Origin(o); err != nil {
			return usageErr(fmt.Errorf("agent: --site: %w", err))
		}
	}
	// A head every few milliseconds would keep an idle agent busy signing (a review's 1ns ran a
	// core at 97%), and 0 meant the default minute without saying so.
	if *heads < time.Second {
		return usageErr(fmt.Errorf("agent: --head-interval %v: want 1s or more", *heads))
	}
	if *eventSkew <= 0 {
		return usageErr(fmt.Errorf("agent: --event-skew %v: want a positive duration", *eventSkew))
	}
	cfg := agent.Config{Dir: *dir, HeadInterval: *heads, Sites: sites, Logger: slog.New(slog.NewTextHandler(stderr, nil))}
	cfg.Guard.MaxClockSkew = *eventSkew
	export, stopExport, siemErr := siemFlags.start(cfg.Logger)
	if siemErr != nil {
		return fmt.Errorf("agent: %w", siemErr)
	}
	defer stopExport() // after Serve, so the sessions ended by shutdown are exported too
	cfg.Export = export
	if *policyPath != "" {
		p, err := guard.LoadPolicy(*policyPath)
		if err != nil {
			return fmt.Errorf("agent: --policy: %w", err)
		}
		cfg.Policy = p
	}
	// Locked before anything in it is opened: opening the release streams already cleans up
	// after a crash, which would take what a running agent is writing for a crash's leftovers.
	// And before listening: a unix socket's path is taken over only when a previous run left
	// it, which a second agent on the same directory must not decide while the first serves.
	unlock, err := lockDeviceDir("--dir", *dir)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	defer unlock()
	// Listen next: a wrong address fails before any key or state is created (the lock creates
	// only its own file).
	var gl, hl = nilListener(), nilListener()
	if *grpcAddr != "" {
		if gl, err = agent.Listen(*grpcAddr); err != nil {
			return fmt.Errorf("--grpc: %w", err)
		}
		defer gl.Close()
	}
	if *httpAddr != "" {
		if hl, err = agent.Listen(*httpAddr); err != nil {
			return fmt.Errorf("--http: %w", err)
		}
		defer hl.Close()
	}
	// The release streams are opened before the agent, so that users' models are fitted on the
	// running releases at once.
	rel, err := fed.openReleases(ctx)
	if err != nil {
		return err
	}
	cfg.Global = agent.GlobalOf(rel.current())
	cfg.MouseGlobal = rel.mouseCurrent()
	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	defer useCores(a, *cores)()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bg, err := fed.start(ctx, a, rel, stdout, cfg.Logger)
	if err != nil {
		return err
	}
	defer bg.Wait()
	defer cancel() // before the wait: the federation and the updaters end with the agent
	logPath, pubPath := a.AuditPaths()
	fmt.Fprintf(stdout, "vigil agent: gRPC %s, HTTP %s; secret in %s; audit log %s (key %s)\n",
		addrOf(gl), addrOf(hl), filepath.Join(*dir, agent.SecretFile), logPath, pubPath)
	if *demo && hl != nil {
		fmt.Fprintf(stdout, "demo application: http://%s/demo/\n", hl.Addr())
	}
	return a.Serve(ctx, gl, hl, agent.HTTPOptions{DemoApp: *demo})
}
