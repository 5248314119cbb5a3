package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigilauth/vigil/aggregation"
	"github.com/vigilauth/vigil/coordinator/round"
	"github.com/vigilauth/vigil/crypto/sig"
	statev1 "github.com/vigilauth/vigil/proto/vigil/state/v1"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
)

// The Scale benchmarks measure what the registry and the sampling cost for a large fleet
// (docs/scale.md): 1,000,000 enrolled devices, 10,000 sampled per round. The devices are
// fabricated in memory, not enrolled over gRPC. A device record is about 8.3 kB and its
// parsed key more, so a million of them do not fit this machine's memory: the variants with
// records run at 10,000 devices and report per-device figures to scale from.
//
//	go test ./coordinator -run '^$' -bench Scale -benchmem -benchtime 3x

const (
	scaleEnrolled = 1_000_000
	scaleSampled  = 10_000
	scaleRecorded = 10_000 // devices with a device record (and update-signing key)
)

// scaleRecords returns n device records for dev-0000000 .. dev-n-1. One record is signed; the
// others carry its signature over another payload, which no code path measured here checks:
// the coordinator verifies a record at enrolment and decodes it unverified from its own state.
func scaleRecords(b testing.TB, n int) [][]byte {
	b.Helper()
	ks, err := release.NewKeySet(rand.Reader, time.Now().Add(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	k, err := sig.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	signed, err := ks.SignDeviceRecord(release.NewDeviceRecord(scaleID(0), "eu", k.Public(), now, now.Add(365*24*time.Hour)))
	if err != nil {
		b.Fatal(err)
	}
	env, err := release.ParseEnvelope(signed)
	if err != nil {
		b.Fatal(err)
	}
	out := make([][]byte, n)
	for i := range out {
		payload, err := json.Marshal(release.NewDeviceRecord(scaleID(i), "eu", k.Public(), now, now.Add(365*24*time.Hour)))
		if err != nil {
			b.Fatal(err)
		}
		e := *env
		e.Payload = payload
		if out[i], err = e.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
	return out
}

func scaleID(i int) string { return fmt.Sprintf("dev-%07d", i) }

// scaleCoordinator returns a coordinator holding n enrolled devices (with records if records
// is non-nil), persisting to dir when dir is not empty.
func scaleCoordinator(b testing.TB, dir string, n int, records [][]byte) *Coordinator {
	b.Helper()
	engine, err := round.New(round.Config{ExpectedParticipants: scaleSampled, Quorum: aggregation.Quorum{Min: 1}, Timeout: time.Hour}, 0)
	if err != nil {
		b.Fatal(err)
	}
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	c := &Coordinator{
		cfg: Config{ModelName: "scale", Now: time.Now}, sealing: Insecure{}, engine: engine, metrics: m, log: slog.New(slog.DiscardHandler),
		devices: make(map[string]device, n), lastSeen: map[string]time.Time{}, removed: map[string]removal{},
		pending: &commit{done: make(chan struct{})}, contribs: newContributionLog(dir),
	}
	if dir != "" {
		if c.state, err = newStateFile(dir); err != nil {
			b.Fatal(err)
		}
		if err := c.openRegistry(dir, nil); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.registry.f.Close() })
	}
	enrolled := time.Now()
	for i := range n {
		d := device{region: "eu", enrolled: enrolled}
		if records != nil {
			// A copy, as a record decoded from the registry log is the registry's own.
			if d, err = restoreDevice(scaleDevice(i, slices.Clone(records[i]), enrolled)); err != nil {
				b.Fatal(err)
			}
		}
		c.devices[scaleID(i)] = d
		c.lastSeen[scaleID(i)] = enrolled
		c.registryChangedLocked(scaleID(i))
	}
	if c.registry != nil {
		c.registry.seenDirt = true
	}
	return c
}

// startScaleRound opens a round the way Coordinator.start does, without trustees or a ledger.
func startScaleRound(b *testing.B, c *Coordinator) []string {
	b.Helper()
	ids := c.sortedIDs.sorted(c.devices)
	sum, err := c.sealing.NewSum(1)
	if err != nil {
		b.Fatal(err)
	}
	_, selected, err := c.engine.StartPlan(time.Now(), round.Plan{}, 1, ids, sum, rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	return selected
}

// BenchmarkScaleStartRound is starting a round at 1,000,000 enrolled devices: the registry's
// IDs in order, Poisson sampling with a cryptographic coin per device, a nonce per sampled
// device (round.Engine.StartPlan), all with the coordinator's lock held. "changes=1000" has
// 1,000 devices admitted and 1,000 removed since the previous round; "sort" sorts all the IDs
// again, as every round did before the coordinator kept them in order (and as the first
// round after a restart does).
func BenchmarkScaleStartRound(b *testing.B) {
	c := scaleCoordinator(b, "", scaleEnrolled, nil)
	next := scaleEnrolled
	for _, mode := range []string{"changes=0", "changes=1000", "sort"} {
		b.Run(mode, func(b *testing.B) {
			startScaleRound(b, c)
			c.engine.Finish()
			var cpu cpuClock
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				if mode == "sort" {
					c.sortedIDs = enrolledIDs{}
				}
				for range map[string]int{"changes=1000": 1000}[mode] {
					c.removeLocked(scaleID(next-scaleEnrolled), time.Now(), "bench")
					c.devices[scaleID(next)] = device{region: "eu", enrolled: time.Now()}
					c.registryChangedLocked(scaleID(next))
					next++
				}
				b.StartTimer()
				cpu.start()
				startScaleRound(b, c)
				cpu.stop()
				c.engine.Finish()
			}
			cpu.report(b)
		})
	}
}

// BenchmarkScaleLookup is what every device call costs the registry at 1,000,000 devices: the
// device's entry and its task in the open round.
func BenchmarkScaleLookup(b *testing.B) {
	c := scaleCoordinator(b, "", scaleEnrolled, nil)
	selected := startScaleRound(b, c)
	rng := mrand.New(mrand.NewPCG(1, 2))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		var id string
		if rng.IntN(2) == 0 {
			id = selected[rng.IntN(len(selected))]
		} else {
			id = scaleID(rng.IntN(scaleEnrolled))
		}
		c.mu.Lock()
		_, ok := c.devices[id]
		_, _ = c.engine.Task(id)
		c.mu.Unlock()
		if !ok {
			b.Fatal("not enrolled")
		}
	}
}

// BenchmarkScaleCommit is one group commit while a round collects updates: 10,000 devices
// sampled, half of them submitted. "steady" is the common case (updates arrive, the registry
// is unchanged); "changes=100" appends 100 registry changes (admissions, new records,
// removals); "seen" also saves every last-seen time, which happens at most every
// seenSaveEvery. state-bytes is what the state directory holds at the end.
func BenchmarkScaleCommit(b *testing.B) {
	for _, v := range scaleVariants(b) {
		for _, mode := range []string{"steady", "changes=100", "seen"} {
			b.Run(v.name+"/"+mode, func(b *testing.B) {
				dir := b.TempDir()
				c := scaleCoordinator(b, dir, v.n, v.records)
				startScaleRound(b, c)
				submitHalf(b, c)
				c.dirty = true
				if err := c.commit(context.Background()); err != nil {
					b.Fatal(err)
				}
				rng := mrand.New(mrand.NewPCG(1, 2))
				var cpu cpuClock
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					c.mu.Lock()
					c.dirty = true
					switch mode {
					case "changes=100":
						for range 100 {
							c.registryChangedLocked(scaleID(rng.IntN(v.n)))
						}
					case "seen":
						c.registry.seenAt, c.registry.seenDirt = time.Time{}, true
					}
					c.mu.Unlock()
					cpu.start()
					if err := c.commit(context.Background()); err != nil {
						b.Fatal(err)
					}
					cpu.stop()
				}
				b.StopTimer()
				cpu.report(b)
				b.ReportMetric(float64(dirBytes(b, dir)), "state-bytes")
				b.ReportMetric(float64(fileBytes(b, filepath.Join(dir, "coordinator.state"))), "statefile-bytes")
			})
		}
	}
}

// BenchmarkScaleRestart is loading the state saved by a commit into a new coordinator: the
// registry (log and last-seen times) and the state file with the open round.
func BenchmarkScaleRestart(b *testing.B) {
	for _, v := range scaleVariants(b) {
		b.Run(v.name, func(b *testing.B) {
			dir := b.TempDir()
			c := scaleCoordinator(b, dir, v.n, v.records)
			startScaleRound(b, c)
			submitHalf(b, c)
			c.mu.Lock()
			c.dirty = true
			c.registry.seenAt, c.registry.seenDirt = time.Time{}, true
			c.mu.Unlock()
			if err := c.commit(context.Background()); err != nil {
				b.Fatal(err)
			}
			c = nil
			var cpu cpuClock
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				cpu.start()
				r := scaleCoordinator(b, "", 0, nil)
				st, err := (&stateFile{path: filepath.Join(dir, "coordinator.state")}).load()
				if err != nil {
					b.Fatal(err)
				}
				if err := r.openRegistry(dir, st); err != nil {
					b.Fatal(err)
				}
				cpu.stop()
				r.registry.f.Close()
				if len(r.devices) != v.n || len(r.lastSeen) != v.n {
					b.Fatalf("restored %d devices and %d last-seen times, want %d", len(r.devices), len(r.lastSeen), v.n)
				}
			}
			cpu.report(b)
		})
	}
}

// BenchmarkScaleSigningKey is what reading a device's update-signing key from its record costs
// each update, now that the registry keeps no parsed keys.
func BenchmarkScaleSigningKey(b *testing.B) {
	d, err := restoreDevice(scaleDevice(0, scaleRecords(b, 1)[0], time.Now()))
	if err != nil {
		b.Fatal(err)
	}
	var cpu cpuClock
	b.ReportAllocs()
	cpu.start()
	for b.Loop() {
		if _, _, err := d.signingKey(); err != nil {
			b.Fatal(err)
		}
	}
	cpu.stop()
	cpu.report(b)
}

// BenchmarkScaleMemory reports the heap each enrolled device takes (B/device), with and
// without a device record and its parsed update-signing key.
func BenchmarkScaleMemory(b *testing.B) {
	for _, v := range scaleVariants(b) {
		b.Run(v.name, func(b *testing.B) {
			for b.Loop() {
				before := heapInUse()
				c := scaleCoordinator(b, "", v.n, v.records)
				after := heapInUse()
				runtime.KeepAlive(c)
				b.ReportMetric(float64(after-before)/float64(v.n), "B/device")
			}
		})
	}
}

type scaleVariant struct {
	name    string
	n       int
	records [][]byte
}

func scaleVariants(b *testing.B) []scaleVariant {
	return []scaleVariant{
		{name: fmt.Sprintf("enrolled=%d/records=no", scaleEnrolled), n: scaleEnrolled},
		{name: fmt.Sprintf("enrolled=%d/records=yes", scaleRecorded), n: scaleRecorded, records: scaleRecords(b, scaleRecorded)},
	}
}

func submitHalf(b *testing.B, c *Coordinator) {
	b.Helper()
	rs, _ := c.engine.State()
	for i, t := range rs.Tasks {
		if i%2 == 1 {
			continue
		}
		_, err := c.engine.Submit(time.Now(), round.Submission{Device: t.Device, Round: rs.Round, Nonce: t.Nonce, BaseVersion: rs.BaseVersion, Update: &vigilv1.Update{
			Encoding: vigilv1.UpdateEncoding_UPDATE_ENCODING_PLAINTEXT, Dimension: 1, Values: []float64{1}}})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func dirBytes(b *testing.B, dir string) int64 {
	b.Helper()
	var n int64
	ents, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			b.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

func scaleDevice(i int, record []byte, enrolled time.Time) *statev1.Device {
	return &statev1.Device{Id: scaleID(i), Region: "eu", Enrolled: timestamppb.New(enrolled), Record: record}
}

func fileBytes(b *testing.B, path string) int64 {
	b.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}

// cpuClock adds up the process's CPU time (every thread's, the collector's included) over the
// measured parts of a benchmark: on this shared machine wall time says more about the other
// processes than about the code.
type cpuClock struct{ total, at time.Duration }

func (c *cpuClock) start() { c.at = processCPU() }
func (c *cpuClock) stop()  { c.total += processCPU() - c.at }

func (c *cpuClock) report(b *testing.B) {
	if b.N > 0 {
		b.ReportMetric(float64(c.total.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
