package updater

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

var errCrash = errors.New("injected crash")

// crashScenario is one operation that changes the state directory, from a set-up starting
// point.
type crashScenario struct {
	name  string
	setup func(t *testing.T, tr *trust, st *storeFS, u *Updater)
	op    func(u *Updater) error
}

func pollOp(u *Updater) error {
	_, err := u.Poll(context.Background())
	return err
}

func observeOp(u *Updater) error {
	for _, w := range windows(10) {
		ev, err := u.Observe(w)
		if err != nil {
			return err
		}
		if ev.Kind != NoChange {
			return nil
		}
	}
	return errors.New("shadow evaluation did not end")
}

func rollbackOp(u *Updater) error {
	_, err := u.Rollback()
	return err
}

// TestCrashAtEveryStep stops each state-changing operation at every file system step it takes
// (leaving a half-written file where the step writes one), reopens the state directory as a
// restarted device would, and checks that the device runs either the old state or, only if
// the crash came after the state file's rename, the new one; that nothing a crash left behind
// survives the restart; and that repeating the operation then completes it.
func TestCrashAtEveryStep(t *testing.T) {
	base := baseParams(t)
	installed := func(t *testing.T, tr *trust, st *storeFS, u *Updater) {
		tr.publishModel(t, st, 1, shifted(base, 0.5))
		mustPoll(t, u, Installed, 1)
	}
	staged := func(params []float64) func(t *testing.T, tr *trust, st *storeFS, u *Updater) {
		return func(t *testing.T, tr *trust, st *storeFS, u *Updater) {
			installed(t, tr, st, u)
			tr.publishModel(t, st, 2, params)
			mustPoll(t, u, Staged, 2)
		}
	}
	for _, sc := range []crashScenario{
		{"install", func(t *testing.T, tr *trust, st *storeFS, u *Updater) { tr.publishModel(t, st, 1, base) }, pollOp},
		{"stage", func(t *testing.T, tr *trust, st *storeFS, u *Updater) {
			installed(t, tr, st, u)
			tr.publishModel(t, st, 2, base)
		}, pollOp},
		{"promote", staged(base), observeOp},
		{"reject", staged(shifted(base, 3)), observeOp},
		{"rollback", func(t *testing.T, tr *trust, st *storeFS, u *Updater) {
			staged(base)(t, tr, st, u)
			if err := observeOp(u); err != nil {
				t.Fatal(err)
			}
		}, rollbackOp},
	} {
		t.Run(sc.name, func(t *testing.T) { crashEveryStep(t, sc) })
	}
}

// crashEveryStep runs sc without a crash, then once for every step it took with a crash at that
// step, followed by a restart; see TestCrashAtEveryStep.
func crashEveryStep(t *testing.T, sc crashScenario) {
	t.Helper()
	// A run without a crash gives the steps and the states before and after.
	var steps []string
	d, u := crashSetup(t, sc)
	old := stable(u.Status())
	u = reopen(t, d, func(step string) error { steps = append(steps, step); return nil })
	if err := sc.op(u); err != nil {
		t.Fatal(err)
	}
	want := stable(u.Status())
	if reflect.DeepEqual(old, want) || len(steps) == 0 {
		t.Fatalf("operation changed nothing: %+v, steps %v", want, steps)
	}
	renamed := slices.Index(steps, stateFile+":rename")
	if renamed < 0 {
		t.Fatalf("steps %v do not replace %s", steps, stateFile)
	}
	for k, step := range steps {
		d, _ := crashSetup(t, sc)
		n := 0
		u := reopen(t, d, func(string) error {
			if n++; n == k+1 {
				return errCrash
			}
			return nil
		})
		if err := sc.op(u); !errors.Is(err, errCrash) {
			t.Fatalf("crash at %s: operation returned %v", step, err)
		}
		u = d.open() // the restart
		got := stable(u.Status())
		switch {
		case reflect.DeepEqual(got, old):
			if k > renamed {
				t.Fatalf("crash at %s, after the switch, lost the change", step)
			}
			if err := sc.op(u); err != nil {
				t.Fatalf("crash at %s: repeating the operation: %v", step, err)
			}
		case reflect.DeepEqual(got, want):
			if k <= renamed {
				t.Fatalf("crash at %s, before the switch, made the change", step)
			}
		default:
			t.Fatalf("crash at %s: state %+v is neither %+v nor %+v", step, got, old, want)
		}
		if got := stable(u.Status()); !reflect.DeepEqual(got, want) {
			t.Fatalf("crash at %s: ended in %+v, want %+v", step, got, want)
		}
		checkClean(t, d.cfg.Dir, u)
	}
	t.Logf("%s: crashed at each of %d steps: %s", sc.name, len(steps), strings.Join(steps, ", "))
}

func crashSetup(t *testing.T, sc crashScenario) (*device, *Updater) {
	t.Helper()
	tr := newTrust(t)
	st := &storeFS{newFS(t)}
	d := newDevice(t, tr, st)
	u := d.open()
	sc.setup(t, tr, st, u)
	return d, u
}

func reopen(t *testing.T, d *device, crash func(string) error) *Updater {
	t.Helper()
	cfg := d.cfg
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	u, err := open(cfg, &disk{dir: cfg.Dir, crash: crash})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// stable is the part of a status that is on disk.
func stable(s Status) Status {
	s.ShadowWindows = 0
	if len(s.Rejected) == 0 {
		s.Rejected = nil
	}
	return s
}

// checkClean checks that the state directory holds only what state.json names, and that
// every model loads with the parameters recorded for it.
func checkClean(t *testing.T, dir string, u *Updater) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			t.Fatalf("temporary file %s survived a restart", e.Name())
		}
	}
	u.mu.Lock()
	var want []string
	for _, x := range u.st.slots() {
		want = append(want, x.dir())
	}
	u.mu.Unlock()
	slices.Sort(want)
	entries, _ = os.ReadDir(filepath.Join(dir, versionsDir))
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("versions directory holds %v, state names %v", got, want)
	}
	for _, m := range []*Model{u.Current(), u.Previous(), u.Candidate()} {
		if m != nil {
			if _, err := m.NewScorer(); err != nil {
				t.Fatalf("v%d does not load: %v", m.Version, err)
			}
		}
	}
}
