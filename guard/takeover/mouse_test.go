package takeover

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilauth/vigil/guard"
	"github.com/vigilauth/vigil/models/eval"
	"github.com/vigilauth/vigil/models/modelstest"
	"github.com/vigilauth/vigil/models/mouse"
)

const balabitDir = "../../../shared/datasets/balabit-mouse"

// writeSyntheticBalabit lays out users synthetic movers as the Balabit data: two training
// sessions and genuine test sessions of each mover, and test sessions of each account moved by
// the next mover (illegal), with their labels.
func writeSyntheticBalabit(t *testing.T, users, train, genuine, illegal int) string {
	t.Helper()
	dir := t.TempDir()
	var labels strings.Builder
	labels.WriteString("filename,is_illegal\n")
	movers := make([]*mouse.Mover, users)
	for u := range movers {
		movers[u] = mouse.NewMover(uint64(100 + u))
	}
	n := 0
	session := func() string { n++; return fmt.Sprintf("session_%010d", n) }
	for u, m := range movers {
		user := fmt.Sprintf("user%d", u+1)
		for range 2 {
			modelstest.WriteBalabitSession(t, dir, "training_files", user, session(), m.Move(train))
		}
		for range genuine {
			s := session()
			modelstest.WriteBalabitSession(t, dir, "test_files", user, s, m.Move(60))
			fmt.Fprintf(&labels, "%s,0\n", s)
		}
	}
	for u := range movers {
		user := fmt.Sprintf("user%d", u+1)
		for k := range illegal {
			s := session()
			modelstest.WriteBalabitSession(t, dir, "test_files", user, s, movers[(u+1+k)%users].Move(60))
			fmt.Fprintf(&labels, "%s,1\n", s)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "public_labels.csv"), []byte(labels.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestRunMouseCatchesAnotherMover replays synthetic movers, whose hands differ plainly: the
// guard must challenge every takeover by another mover within a window or so of their actions,
// and the owner far less often (about one challenge per 240 of the owner's actions here, against
// a median of 10-11 actions for another mover, at the guard's default window of 1200 events).
func TestRunMouseCatchesAnotherMover(t *testing.T) {
	dir := writeSyntheticBalabit(t, 4, 200, 3, 2)
	res, err := RunMouse(context.Background(), MouseConfig{Dir: dir, Seed: 5, Fed: eval.FedConfig{Rounds: 2}})
	if err != nil {
		t.Fatal(err)
	}
	g, a, c := res.Genuine, res.Account, res.CrossUser
	t.Logf("genuine %+v", g)
	t.Logf("account: %d, median %v actions, %v s, missed %d; cross-user: %d, median %v actions, missed %d; control: %d, median %v actions, %d never challenged",
		a.Sessions, a.Actions.Median, a.Seconds.Median, a.Missed, c.Sessions, c.Actions.Median, c.Missed, res.Control.Sessions, res.Control.Actions.Median, res.Control.Missed)
	// The control puts the owner's own movement where the impostor's would be: it must be
	// challenged far later than another mover, if at all.
	if ctl := res.Control; ctl.Sessions+ctl.PrefixTerminated != 12 || ctl.Actions.Median < 3*max(a.Actions.Median, c.Actions.Median) {
		t.Errorf("control: %d sessions, median %v actions to a challenge, against %v and %v for another mover",
			ctl.Sessions, ctl.Actions.Median, a.Actions.Median, c.Actions.Median)
	}
	if res.Users != 4 || g.Sessions != 12 || a.Sessions+a.PrefixTerminated != 8 || c.Sessions+c.PrefixTerminated != 12 {
		t.Fatalf("%d users, %d genuine sessions, %d account and %d cross-user takeovers", res.Users, g.Sessions, a.Sessions, c.Sessions)
	}
	if g.Actions < 12*40 || g.Hours <= 0 || g.Events < g.Actions {
		t.Fatalf("genuine sessions of %d actions, %d events, %.3f h", g.Actions, g.Events, g.Hours)
	}
	// Enrolled as the agent enrols, on each user's first actions only.
	few, err := RunMouse(context.Background(), MouseConfig{Dir: dir, Seed: 5, Fed: eval.FedConfig{Rounds: 2}, EnrolActions: 50})
	if err != nil {
		t.Fatal(err)
	}
	if few.TrainActions != 4*50 || res.TrainActions <= few.TrainActions || !strings.Contains(few.Protocol, "first 50 actions") {
		t.Errorf("enrolled on %d actions (%d without the limit): %s", few.TrainActions, res.TrainActions, few.Protocol)
	}
	for name, to := range map[string]MouseTakeovers{"account": a, "cross-user": c} {
		if to.Missed > 0 || !(to.Actions.Median <= 20) || !(to.Seconds.Median > 0) {
			t.Errorf("%s takeovers: %d of %d missed, median %v actions, %v s", name, to.Missed, to.Sessions, to.Actions.Median, to.Seconds.Median)
		}
		if len(to.ToChallengeActions) != to.Sessions-to.Missed || to.Actions.P25 > to.Actions.Median || to.Seconds.Median > to.Seconds.P75 {
			t.Errorf("%s takeovers: inconsistent distribution %+v", name, to)
		}
	}
	// A replay that mixed up whose model scores whose movement would challenge the owner as
	// fast as another mover.
	if perChallenge := 1000 / max(g.Per1000, 1e-9); perChallenge < 4*max(a.Actions.Median, c.Actions.Median) {
		t.Errorf("the owner challenged %d times in %d of %d sessions, one per %.1f actions, against a median of %v and %v actions for another mover",
			g.Challenges, g.SessionsChallenged, g.Sessions, perChallenge, a.Actions.Median, c.Actions.Median)
	}
	var b bytes.Buffer
	if err := WriteMousePNG(&b, res); err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(&b); err != nil {
		t.Fatalf("plot is not a PNG: %v", err)
	}
}

// TestRunMouseOnBalabit replays the real data at epsilon 8. The thresholds are loose (the full
// run at the guard's default mouse window gives 0.64 false challenges per hour, 0.83 per 1,000
// actions, and misses 60% of the account takeovers, whose sessions are short) but fail when
// the models, the guard or the protocol break: the owner's own movement must be challenged
// less often than the impostors'.
func TestRunMouseOnBalabit(t *testing.T) {
	if _, err := os.Stat(balabitDir); err != nil {
		t.Skipf("Balabit mouse data not available at %s", balabitDir)
	}
	// Fewer training summaries than the default 3,000 per user keep the test quick.
	res, err := RunMouse(context.Background(), MouseConfig{Dir: balabitDir, Seed: 1, Impostors: 3, MaxRows: 1000, Privacy: eval.PrivacyConfig{Epsilon: 8}})
	if err != nil {
		t.Fatal(err)
	}
	g, a, ctl := res.Genuine, res.Account, res.Control
	t.Logf("genuine: %.2f challenges per hour, %.2f per 1,000 actions; account takeovers: %d, %.1f%% missed; control: %d, %.1f%% never challenged",
		g.PerHour, g.Per1000, a.Sessions, 100*a.MissedShare, ctl.Sessions, 100*ctl.MissedShare)
	if res.Users != 10 || g.Sessions != 200 || a.Sessions+a.PrefixTerminated != 208 || res.CrossUser.Sessions+res.CrossUser.PrefixTerminated != 30 {
		t.Fatalf("%d users, %d genuine sessions, %d account and %d cross-user takeovers (the data: 10 users, 200 legal and 208 illegal test sessions)",
			res.Users, g.Sessions, a.Sessions, res.CrossUser.Sessions)
	}
	if ctl.Sessions+ctl.PrefixTerminated != 200 || !(ctl.MissedShare > a.MissedShare+0.1) {
		t.Errorf("control: %d sessions, %.3f of the owner's own never challenged, against %.3f of the impostors'",
			ctl.Sessions, ctl.MissedShare, a.MissedShare)
	}
	if a.MissedShare > 0.8 || g.Per1000 > 5 || g.Hours < 10 {
		t.Fatalf("%.3f missed, %.2f false challenges per 1,000 actions in %.1f h: far from what the guard and models reach",
			a.MissedShare, g.Per1000, g.Hours)
	}
	if !strings.Contains(res.Protocol, "No test session is used in any training") {
		t.Errorf("protocol: %s", res.Protocol)
	}
}

func TestRunMouseRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		cfg  MouseConfig
		want string
	}{
		{MouseConfig{}, "no data directory"},
		{MouseConfig{Dir: dir, Impostors: -1}, "impostors"},
		{MouseConfig{Dir: dir, Start: "sometime"}, "start"},
		{MouseConfig{Dir: dir, Guard: guard.Config{MouseWindow: 50}}, "hop"},
		{MouseConfig{Dir: dir}, "public_labels.csv"},
	} {
		_, err := RunMouse(context.Background(), c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one naming %q", c.cfg, err, c.want)
		}
	}
}

func TestPointerCountsActionsAndUse(t *testing.T) {
	evs := mouse.NewMover(3).Move(30)
	// An idle pause of two minutes, which is no mouse use, in the middle.
	for i := len(evs) / 2; i < len(evs); i++ {
		evs[i].T += 2 * 60e9
	}
	var st mouse.ReadStats
	p, err := newPointer("u", "s", evs, &st)
	if err != nil {
		t.Fatal(err)
	}
	// A drag is cut into the move before the press and the drag itself.
	if n := len(p.ends); n < 25 || n > 40 {
		t.Fatalf("%d actions in 30 of a synthetic mover's", n)
	}
	if got := p.actionsBy(p.len() - 1); got != len(p.ends) {
		t.Errorf("actions by the last event: %d of %d", got, len(p.ends))
	}
	if p.actionsBy(0) != 0 {
		t.Errorf("an action complete at the first event")
	}
	span := evs[len(evs)-1].T - evs[0].T
	if d := span - p.active; d < 2*60e9 || d > 2*60e9+IdleGap {
		t.Errorf("mouse use %v of a span of %v with a two-minute pause", p.active, span)
	}
	if got := activeUntil(p, p.len()-1); got != p.active {
		t.Errorf("use until the last event %v, want %v", got, p.active)
	}
	if math.Abs(activeUntil(p, len(evs)/2-1).Seconds()-(evs[len(evs)/2-1].T-evs[0].T).Seconds()) > IdleGap.Seconds() {
		t.Errorf("use until the middle: %v", activeUntil(p, len(evs)/2-1))
	}
}

func TestReleasedCutsBetweenActions(t *testing.T) {
	ev := []mouse.Event{{State: mouse.Move}, {State: mouse.Move}, {Button: mouse.Left, State: mouse.Pressed},
		{State: mouse.Drag}, {State: mouse.Drag}, {Button: mouse.Left, State: mouse.Released}, {State: mouse.Move}}
	p := &pointer{ev: ev}
	for _, c := range []struct{ from, want int }{{0, 0}, {1, 1}, {2, 2}, {3, 6}, {5, 6}, {6, 6}, {7, 7}} {
		if got := p.released(c.from); got != c.want {
			t.Errorf("released(%d) = %d, want %d", c.from, got, c.want)
		}
	}
	open := &pointer{ev: ev[:4]}
	if got := open.released(3); got != 4 {
		t.Errorf("a press never released: released(3) = %d, want 4 (the whole session)", got)
	}
}
