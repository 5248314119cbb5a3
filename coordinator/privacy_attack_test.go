package coordinator_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/dp"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/store"
)

// privateConfig is a coordinator with differential privacy over storeDir and stateDir.
func privateConfig(t *testing.T, storeDir, stateDir string, z float64) coordinator.Config {
	t.Helper()
	st, err := store.NewFS(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	return coordinator.Config{
		Store: st, StateDir: stateDir, Spec: spec, FeatureSet: keystroke.TimingFeatureSet,
		DevicesPerRound: 3, MinUpdates: 3, MinEnrolled: 3, RoundTimeout: time.Minute, Rounds: 1, LongPoll: 100 * time.Millisecond,
		Privacy: coordinator.Privacy{ClipNorm: 1, NoiseMultiplier: z, Budget: dp.Budget{Epsilon: 50, Delta: 1e-5}},
	}
}

// serveConfig runs a coordinator with cfg until the test ends or stop is called.
func serveConfig(t *testing.T, cfg coordinator.Config) (vigilv1.CoordinatorClient, *coordinator.Coordinator, func()) {
	t.Helper()
	c, err := coordinator.New(context.Background(), cfg, coordinator.Insecure{})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(coordinator.ServerOptions()...)
	c.Register(srv)
	go srv.Serve(lis)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
			srv.Stop()
			conn.Close()
		}
	}
	t.Cleanup(stop)
	return vigilv1.NewCoordinatorClient(conn), c, stop
}

func waitCompleted(t *testing.T, c *coordinator.Coordinator, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); c.Completed() < n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d rounds completed, want %d", c.Completed(), n)
		}
	}
}

// releaseOneRound enrols a, b and c and has them complete one round.
func releaseOneRound(t *testing.T, cfg coordinator.Config) {
	t.Helper()
	api, c, stop := serveConfig(t, cfg)
	defer stop()
	enrol(t, api, []string{"a", "b", "c"}...)
	for _, d := range []string{"a", "b", "c"} {
		if _, err := api.SubmitUpdate(context.Background(), update(waitTask(t, api, d), d, 0.1)); err != nil {
			t.Fatal(err)
		}
	}
	waitCompleted(t, c, 1)
}

// TestAttackRestartChangesNoise is issue 12's attack 2: devices noised a round for z = 1, the
// coordinator restarted with z = 3 and charged the ledger for z = 3 (epsilon 1.39 instead of
// about 2.27). Now the round's privacy is saved with it before any device is asked, a restart
// with other settings is refused naming them, and the ledger is charged with the saved ones.
func TestAttackRestartChangesNoise(t *testing.T) {
	storeDir, stateDir := t.TempDir(), t.TempDir()
	ctx := context.Background()
	api, _, stop := serveConfig(t, privateConfig(t, storeDir, stateDir, 1))
	enrol(t, api, []string{"a", "b", "c"}...)
	ta := waitTask(t, api, "a")
	if p := ta.GetPrivacy(); p.GetNoiseMultiplier() != 1 || p.GetToleratedDevices() != 1 || p.GetMinParticipants() != 3 {
		t.Fatalf("task privacy %v, want z 1, m_min 3, t_dev 1", p)
	}
	if _, err := api.SubmitUpdate(ctx, update(ta, "a", 0.1)); err != nil {
		t.Fatal(err)
	}
	stop()

	_, err := coordinator.New(ctx, privateConfig(t, storeDir, stateDir, 3), coordinator.Insecure{})
	if !errors.Is(err, coordinator.ErrRoundSettingsChanged) || !strings.Contains(err.Error(), "noise multiplier z was 1, is now 3") {
		t.Fatalf("restart with z = 3: %v, want ErrRoundSettingsChanged naming z", err)
	}

	api, c, _ := serveConfig(t, privateConfig(t, storeDir, stateDir, 1))
	for _, d := range []string{"b", "c"} {
		tk := waitTask(t, api, d)
		if tk.GetPrivacy().GetNoiseMultiplier() != 1 {
			t.Fatalf("resumed task says z = %v", tk.GetPrivacy().GetNoiseMultiplier())
		}
		if _, err := api.SubmitUpdate(ctx, update(tk, d, 0.1)); err != nil {
			t.Fatal(err)
		}
	}
	waitCompleted(t, c, 1)
	l, err := dp.ReadLedger(filepath.Join(stateDir, "model.ledger"))
	if err != nil {
		t.Fatal(err)
	}
	g := c.Global()
	want, _, _ := dp.Epsilon([]dp.Event{{SamplingRate: 1, NoiseMultiplier: 1, Steps: 1, Mechanism: dp.KnownParticipation}}, 1e-5, dp.Options{})
	e := l.Entries[0]
	if len(l.Entries) != 1 || e.NoiseMultiplier != 1 || e.ClipNorm != 1 || e.MinParticipants != 3 || e.ToleratedDevices != 1 ||
		e.Participants != 3 || e.Time == "" || e.ModelSHA256 != g.Meta.ParamsSHA256 || e.Mechanism != "known-participation" || e.Epsilon != want {
		t.Fatalf("ledger %+v, want one round at z 1 with its parameters, epsilon %v and the released hash %s", l.Entries, want, g.Meta.ParamsSHA256)
	}
}

// TestAttackLedgerReset is issue 12's attack 3: deleting the ledger (or putting back an older
// copy) and restarting reset epsilon to 0 with the model at v2. The ledger is now bound to the
// store: start-up is refused. Turning differential privacy on after rounds without it is
// refused too.
func TestAttackLedgerReset(t *testing.T) {
	storeDir, stateDir := t.TempDir(), t.TempDir()
	cfg := privateConfig(t, storeDir, stateDir, 1)
	ledger := filepath.Join(stateDir, "model.ledger")
	if _, err := dp.OpenLedger(ledger, "keystroke-ae", cfg.Privacy.Budget); err != nil {
		t.Fatal(err)
	}
	empty, _ := os.ReadFile(ledger)
	releaseOneRound(t, cfg)
	cfg.Rounds = 2
	for name, tamper := range map[string]func(){
		"deleted":     func() { os.Remove(ledger) },
		"key deleted": func() { os.Remove(dp.LedgerKeyPath(ledger)) },
		"both":        func() { os.Remove(ledger); os.Remove(dp.LedgerKeyPath(ledger)) },
		"older copy":  func() { os.WriteFile(ledger, empty, 0o600) },
	} {
		t.Run(name, func(t *testing.T) {
			saved, _ := os.ReadFile(ledger)
			key, _ := os.ReadFile(dp.LedgerKeyPath(ledger))
			tamper()
			defer func() { os.WriteFile(ledger, saved, 0o600); os.WriteFile(dp.LedgerKeyPath(ledger), key, 0o600) }()
			_, err := coordinator.New(context.Background(), cfg, coordinator.Insecure{})
			if !errors.Is(err, coordinator.ErrLedgerBehind) && !errors.Is(err, dp.ErrLedgerCorrupt) {
				t.Fatalf("start-up with the ledger %s: %v, want it refused", name, err)
			}
		})
	}
	if _, err := coordinator.New(context.Background(), cfg, coordinator.Insecure{}); err != nil {
		t.Fatalf("the intact ledger is refused: %v", err)
	}

	// Rounds without differential privacy, then privacy turned on.
	storeDir, stateDir = t.TempDir(), t.TempDir()
	off := privateConfig(t, storeDir, stateDir, 1)
	off.Privacy = coordinator.Privacy{InsecureNoDP: true, ClipNorm: 1}
	releaseOneRound(t, off)
	on := privateConfig(t, storeDir, stateDir, 1)
	on.Rounds = 2
	if _, err := coordinator.New(context.Background(), on, coordinator.Insecure{}); !errors.Is(err, dp.ErrNotPrivate) {
		t.Fatalf("privacy turned on after a round without it: %v, want dp.ErrNotPrivate", err)
	}
}

// TestPrivacyIsNotOffByDefault is issue 12's item 4 for the library: a zero Privacy is refused,
// and so are contradictory settings.
func TestPrivacyIsNotOffByDefault(t *testing.T) {
	for name, p := range map[string]coordinator.Privacy{
		"zero":          {},
		"clip only":     {ClipNorm: 1},
		"both":          {InsecureNoDP: true, NoiseMultiplier: 1, ClipNorm: 1},
		"t_dev = m_min": {NoiseMultiplier: 1, ClipNorm: 1, Budget: dp.Budget{Epsilon: 1, Delta: 1e-5}, LedgerPath: "x", ToleratedDevices: 3},
	} {
		cfg := privateConfig(t, t.TempDir(), t.TempDir(), 1)
		cfg.Privacy = p
		if _, err := coordinator.New(context.Background(), cfg, coordinator.Insecure{}); err == nil {
			t.Errorf("%s: privacy %+v accepted", name, p)
		}
	}
}

// TestAttackTargetUpdates is issue 12's attack 7: closing a round at the first TargetUpdates
// answers breaks Poisson sampling. It is refused with differential privacy.
func TestAttackTargetUpdates(t *testing.T) {
	cfg := privateConfig(t, t.TempDir(), t.TempDir(), 1)
	cfg.TargetUpdates = 2
	if _, err := coordinator.New(context.Background(), cfg, coordinator.Insecure{}); err == nil || !strings.Contains(err.Error(), "TargetUpdates") {
		t.Fatalf("TargetUpdates with differential privacy: %v", err)
	}
}

// TestAttackPlaintextLeaks is issue 12's attack 1: every release's meta.json published the
// participants' mean training loss and their number, neither charged. The meta.json of a
// released round now holds only fixed settings and the charged epsilon.
func TestAttackPlaintextLeaks(t *testing.T) {
	storeDir, stateDir := t.TempDir(), t.TempDir()
	releaseOneRound(t, privateConfig(t, storeDir, stateDir, 1))
	st, _ := store.NewFS(storeDir)
	raw, err := st.Get(context.Background(), "models/keystroke-ae/v0000000002/"+models.ArtifactMeta)
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]any
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatal(err)
	}
	privacy, _ := meta["privacy"].(map[string]any)
	delete(meta, "privacy")
	// Every key a release may carry, and why it is not a statistic of the users' data.
	allowed := map[string]string{
		"name": "fixed", "version": "counter", "parent": "counter", "round": "counter", "created": "clock",
		"feature_set": "fixed", "layers": "fixed", "activation": "fixed", "num_params": "fixed",
		"params_sha256": "digest of the noised parameters",
	}
	allowedPrivacy := map[string]string{
		"differential_privacy": "setting", "mechanism": "setting", "adjacency": "setting", "noise_multiplier": "setting",
		"clip_norm": "setting", "min_participants": "setting", "tolerated_devices": "setting",
		"sampling_rate": "K/N, enrolment is public to the analysis", "epsilon": "function of the settings", "delta": "setting",
	}
	var extra []string
	for k := range meta {
		if _, ok := allowed[k]; !ok {
			extra = append(extra, k)
		}
	}
	for k := range privacy {
		if _, ok := allowedPrivacy[k]; !ok {
			extra = append(extra, "privacy."+k)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 || privacy["differential_privacy"] != true || privacy["tolerated_devices"] != 1.0 {
		t.Fatalf("meta.json holds unaccounted fields %v (privacy %v):\n%s", extra, privacy, raw)
	}
}
