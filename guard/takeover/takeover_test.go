package takeover

import (
	"compress/gzip"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilauth/vigil/guard"
	"github.com/vigilauth/vigil/models/eval"
	"github.com/vigilauth/vigil/models/keystroke"
)

const aaltoDir = "../../../shared/datasets/aalto-keystrokes"

// TestRunOnAalto runs the evaluation on the first 30 participants of the real data. The
// thresholds are loose (all 500 give about 44 keystrokes, 1.4% missed and 0.35 false challenges
// per 1,000 keystrokes) but fail when the models, the guard or the protocol break.
func TestRunOnAalto(t *testing.T) {
	if _, err := os.Stat(aaltoDir); err != nil {
		t.Skipf("Aalto keystroke data not available at %s", aaltoDir)
	}
	res, err := Run(context.Background(), Config{Dir: aaltoDir, Users: 30, Impostors: 3, Seed: 1, Fed: eval.FedConfig{Rounds: 3}})
	if err != nil {
		t.Fatal(err)
	}
	g, to := res.Genuine, res.Takeover
	t.Logf("%d users: median %v keystrokes to challenge (p90 %v), %.1f%% missed, %.2f challenges per 1,000 genuine keystrokes",
		res.Users, to.Median, to.P90, 100*to.MissedShare, g.Per1000)
	if res.Users < 28 || g.Sessions != res.Users || g.Keystrokes < 300*res.Users {
		t.Fatalf("%d users, %d genuine sessions of %d keystrokes", res.Users, g.Sessions, g.Keystrokes)
	}
	if to.Sessions+to.PrefixTerminated != 3*res.Users || to.ImpostorKeystrokes == 0 {
		t.Fatalf("%d takeovers (%d terminated before the takeover) of %d users", to.Sessions, to.PrefixTerminated, res.Users)
	}
	if !(to.Median <= 150) || to.MissedShare > 0.1 || g.Per1000 > 3 {
		t.Fatalf("median %v, missed %.3f, %.2f per 1,000: far from what the guard and models reach", to.Median, to.MissedShare, g.Per1000)
	}
	if len(to.ToChallenge) != to.Sessions-to.Missed || to.P25 > to.Median || to.Median > to.P75 {
		t.Fatalf("inconsistent distribution: %+v", to)
	}
	if !strings.Contains(res.Protocol, "No held-out keystroke is used in any training") {
		t.Errorf("protocol: %s", res.Protocol)
	}
}

// writeAalto writes a participant file in the layout of the Aalto data set, gzip-compressed.
func writeAalto(t *testing.T, dir, id string, ks []keystroke.Keystroke, mangle func(i int, row string) string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, id+"_keystrokes.txt.gz"))
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	fmt.Fprintln(zw, "PARTICIPANT_ID\tTEST_SECTION_ID\tSENTENCE\tUSER_INPUT\tKEYSTROKE_ID\tPRESS_TIME\tRELEASE_TIME\tLETTER\tKEYCODE")
	const epoch = 1_473_000_000_000
	for i, k := range ks {
		row := fmt.Sprintf("%s\t%d\tthe quick brown fox\tthe quick brown fox\t%d\t%d\t%d\tx\t%d",
			id, 1+i/60, i, epoch+k.Press.Milliseconds(), epoch+k.Release.Milliseconds(), k.Code)
		if mangle != nil {
			row = mangle(i, row)
		}
		fmt.Fprintln(zw, row)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRunCountsWhatItDrops runs on a directory laid out like the Aalto data, with synthetic
// typists and the faults of real files: malformed rows, a file that is not gzip, a participant
// with too little typing, keystrokes without a key code.
func TestRunCountsWhatItDrops(t *testing.T) {
	dir := t.TempDir()
	for s := uint64(1); s <= 4; s++ {
		var mangle func(int, string) string
		ks := keystroke.NewTypist(s).Type(800)
		if s == 1 {
			mangle = func(i int, row string) string {
				if i == 10 {
					return "garbage"
				}
				return row
			}
			ks[700].Code = 0
		}
		writeAalto(t, dir, fmt.Sprintf("10%d", s), ks, mangle)
	}
	writeAalto(t, dir, "200", keystroke.NewTypist(9).Type(120), nil)
	if err := os.WriteFile(filepath.Join(dir, "300_keystrokes.txt.gz"), []byte("not gzip"), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), Config{Dir: dir, Impostors: 2, Seed: 3, Fed: eval.FedConfig{Rounds: 1}, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 6 || res.Users != 4 {
		t.Fatalf("%d files, %d users", res.Files, res.Users)
	}
	for reason, want := range map[string]int{
		keystroke.DropMalformed: 1,
		DropUnreadable:          1,
		DropFewWindows:          1,
		DropNoKeyCode:           1,
	} {
		if got := res.Read.Dropped[reason]; got != want {
			t.Errorf("dropped for %q: %d, want %d (all: %v)", reason, got, want, res.Read.Dropped)
		}
	}
	if res.Takeover.Sessions != 8 || res.Genuine.Sessions != 4 {
		t.Fatalf("%d takeovers, %d genuine sessions", res.Takeover.Sessions, res.Genuine.Sessions)
	}
	// Synthetic typists differ plainly: every takeover is caught within a few windows.
	if res.Takeover.Missed != 0 || !(res.Takeover.Median <= 75) {
		t.Fatalf("synthetic takeovers: %+v", res.Takeover)
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "no data directory"},
		{Config{Dir: dir, Window: 5}, "window"},
		{Config{Dir: dir, Hop: 60}, "hop"},
		{Config{Dir: dir, Enrol: -1}, "enrolment"},
		{Config{Dir: dir, Impostors: -2}, "impostors"},
		{Config{Dir: dir, Start: "sometime"}, "start"},
		{Config{Dir: dir, Skip: -1}, "negative"},
		{Config{Dir: dir, Guard: guard.Config{Tiers: guard.TierConfig{SoftBelow: 20, HardBelow: 30}}}, "tiers"},
		{Config{Dir: dir}, "no *_keystrokes"},
		{Config{Dir: filepath.Join(dir, "absent")}, "no such file"},
	} {
		_, err := Run(context.Background(), c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one naming %q", c.cfg, err, c.want)
		}
	}
}

func TestRank(t *testing.T) {
	detected := []int{10, 20, 30, 40}
	for _, c := range []struct {
		n    int
		q    float64
		want float64
	}{
		{4, 0.5, 20}, {4, 0.25, 10}, {4, 1, 40},
		{5, 0.5, 30}, {5, 0.9, math.NaN()}, // one of five never challenged
		{10, 0.5, math.NaN()}, // most never challenged
		{0, 0.5, math.NaN()},
	} {
		got := rank(detected[:min(len(detected), c.n)], c.n, c.q)
		if !(got == c.want || math.IsNaN(got) && math.IsNaN(c.want)) {
			t.Errorf("rank(n=%d, q=%v) = %v, want %v", c.n, c.q, got, c.want)
		}
	}
}

func TestImpostorsAreOthersAndDistinct(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for self := 0; self < 10; self++ {
		got := impostors(rng, 10, self, 5)
		seen := map[int]bool{}
		for _, j := range got {
			if j == self || seen[j] || j < 0 || j >= 10 {
				t.Fatalf("impostors of %d: %v", self, got)
			}
			seen[j] = true
		}
		if len(got) != 5 {
			t.Fatalf("impostors of %d: %v", self, got)
		}
	}
	if got := impostors(rng, 3, 0, 5); len(got) != 2 {
		t.Fatalf("with 3 participants: %v", got)
	}
}
