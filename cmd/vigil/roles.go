package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vigilauth/vigil/client"
	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/dp"
	"github.com/vigilauth/vigil/models/keystroke"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/store"
)

const plaintextRefusal = "updates would travel in the clear, so the coordinator would see every device's update; " +
	"pass --insecure-plaintext to accept that for debugging"

func runCoordinator(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("coordinator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:7070", "gRPC address to serve devices on")
	metricsListen := fs.String("metrics-listen", "127.0.0.1:9464", "HTTP address for Prometheus /metrics (empty: off)")
	dir := fs.String("dir", "vigil-data", "directory of the model store (store/) and the coordinator's durable state (state/)")
	rounds := fs.Int("rounds", 0, "exit after this many completed rounds (0: run until interrupted)")
	perRound := fs.Int("devices-per-round", 10, "expected number of devices sampled per round")
	minUpdates := fs.Int("min-updates", 2, "fewest updates a round may release")
	minEnrolled := fs.Int("min-enrolled", 0, "devices to wait for before the first round (default --min-updates)")
	timeout := fs.Duration("round-timeout", 30*time.Second, "how long a round collects updates")
	seed := fs.Uint64("seed", 1, "seed of the first global model, when the store has none")
	plaintext := fs.Bool("insecure-plaintext", false, "accept updates in the clear (debugging only)")
	clip := fs.Float64("clip", 0, "L2 clip norm C of device updates (0: no clipping)")
	noise := fs.Float64("noise-multiplier", 0, "noise multiplier z for differential privacy (0: off)")
	epsilon := fs.Float64("epsilon", 0, "privacy budget epsilon (required with --noise-multiplier)")
	delta := fs.Float64("delta", 1e-5, "delta of the privacy budget")
	logLevel := slog.LevelInfo
	fs.TextVar(&logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("coordinator: unexpected argument %q", fs.Arg(0))
	}
	privacy := coordinator.Privacy{ClipNorm: *clip}
	if *noise != 0 {
		if *epsilon <= 0 {
			return errors.New("coordinator: --noise-multiplier needs a privacy budget: give --epsilon")
		}
		privacy = coordinator.Privacy{ClipNorm: *clip, NoiseMultiplier: *noise, Budget: dp.Budget{Epsilon: *epsilon, Delta: *delta},
			LedgerPath: filepath.Join(*dir, "state", "model.ledger")}
	}
	if !*plaintext {
		return fmt.Errorf("coordinator: %s", plaintextRefusal)
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: logLevel}))
	st, err := store.NewFS(filepath.Join(*dir, "store"))
	if err != nil {
		return fmt.Errorf("coordinator: --dir: %w", err)
	}
	reg := prometheus.NewRegistry()
	coord, err := coordinator.New(ctx, coordinator.Config{
		Spec: globalSpec(), FeatureSet: keystroke.FeatureSet, InitSeed: *seed,
		Rounds: *rounds, DevicesPerRound: *perRound, MinUpdates: *minUpdates, MinEnrolled: *minEnrolled,
		RoundTimeout: *timeout, Store: st, StateDir: filepath.Join(*dir, "state"), Privacy: privacy,
		Logger: logger, Metrics: reg,
	}, coordinator.Insecure{})
	if err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("coordinator: --listen: %w", err)
	}
	srv := grpc.NewServer(coordinator.ServerOptions()...)
	coord.Register(srv)
	go srv.Serve(lis)
	defer srv.GracefulStop()
	fmt.Fprintf(stdout, "coordinator listening on %s\n", lis.Addr())

	if *metricsListen != "" {
		mlis, err := net.Listen("tcp", *metricsListen)
		if err != nil {
			return fmt.Errorf("coordinator: --metrics-listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go hs.Serve(mlis)
		defer hs.Close()
		fmt.Fprintf(stdout, "metrics on http://%s/metrics\n", mlis.Addr())
	}
	err = coord.Run(ctx)
	switch {
	case errors.Is(err, context.Canceled):
		// SIGTERM or SIGINT: everything acknowledged is on disk; a restart resumes the round.
		err = nil
	case errors.Is(err, dp.ErrBudgetExhausted):
		fmt.Fprintf(stdout, "privacy budget reached: %v\n", err)
		err = nil
	}
	g := coord.Global()
	fmt.Fprintf(stdout, "stopped after %d rounds; global model v%d in %s\n", coord.Completed(), g.Meta.Version, *dir)
	return err
}

func runClient(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("coordinator", "127.0.0.1:7070", "gRPC address of the coordinator")
	id := fs.String("device-id", "", "this device's ID (required)")
	region := fs.String("region", "", "region where this device's data must stay")
	synthSeed := fs.Uint64("synthetic-seed", 0, "type as the synthetic user with this seed")
	aaltoFile := fs.String("aalto-file", "", "type as the participant of this Aalto keystroke file")
	windows := fs.Int("windows", 40, "windows of typing the synthetic user produces")
	window := fs.Int("window", 50, "keystrokes per window")
	rounds := fs.Int("rounds", 0, "exit after contributing to this many rounds (0: run until interrupted)")
	plaintext := fs.Bool("insecure-plaintext", false, "send updates in the clear (debugging only)")
	logLevel := slog.LevelInfo
	fs.TextVar(&logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("client: unexpected argument %q", fs.Arg(0))
	case *id == "":
		return errors.New("client: --device-id is required")
	case (*synthSeed == 0) == (*aaltoFile == ""):
		return errors.New("client: give exactly one of --synthetic-seed (non-zero) and --aalto-file")
	case *window < 10 || *windows < 4:
		return fmt.Errorf("client: --window %d or --windows %d too small", *window, *windows)
	case !*plaintext:
		return fmt.Errorf("client: %s", plaintextRefusal)
	}
	if err := vigilv1.ValidID("--device-id", *id); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	var data deviceData
	if *aaltoFile != "" {
		d, err := aaltoFileDevice(*id, *aaltoFile, *window)
		if err != nil {
			return fmt.Errorf("client: --aalto-file: %w", err)
		}
		data = d
	} else {
		data = syntheticDevice(*id, *synthSeed, *windows, *window)
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: logLevel}))
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(vigilv1.MaxMessageBytes), grpc.MaxCallSendMsgSize(vigilv1.MaxMessageBytes)))
	if err != nil {
		return fmt.Errorf("client: --coordinator: %w", err)
	}
	defer conn.Close()
	agent, err := client.New(client.Config{
		DeviceID: *id, Region: *region, Coordinator: vigilv1.NewCoordinatorClient(conn), Data: client.Rows(data.train),
		Sealer: client.InsecurePlaintext{}, FeatureSet: keystroke.FeatureSet, Seed: *synthSeed, Logger: logger,
	})
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	err = agent.RunRounds(ctx, *rounds, func(r client.Result) {
		fmt.Fprintf(stdout, "submitted round %d (%d updates in), local loss %.4f\n", r.Round, r.Accepted, r.TrainLoss)
	})
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
