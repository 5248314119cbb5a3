package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilauth/vigil/models/modelstest"
	"github.com/vigilauth/vigil/models/mouse"
)

func TestEvalTakeoverRejectsBadFlags(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string // the flag or word the error must name
	}{
		{[]string{"--data", filepath.Join(dir, "nope")}, "-data"},
		{[]string{"--data", dir, "--window", "3"}, "-window"},
		{[]string{"--data", dir, "--hop", "51"}, "-hop"},
		{[]string{"--data", dir, "--enrol", "0"}, "-enrol"},
		{[]string{"--data", dir, "--users", "-1"}, "-users"},
		{[]string{"--data", dir, "--users", "1"}, "-users"},
		{[]string{"--data", dir, "--skip", "-2"}, "-skip"},
		{[]string{"--data", dir, "--impostors", "0"}, "-impostors"},
		{[]string{"--data", dir, "--start", "yesterday"}, "-start"},
		{[]string{"--data", dir, "--rounds", "0"}, "-rounds"},
		{[]string{"--data", dir, "--scaling", "minmax"}, "-scaling"},
		{[]string{"--data", dir, "extra"}, "extra"},
		{[]string{"--data", dir}, "no *_keystrokes"},
	} {
		var out, errOut bytes.Buffer
		err := runEvalTakeover(context.Background(), tc.args, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("eval takeover %q: error %v, want one naming %q", tc.args, err, tc.want)
		}
	}
}

// TestEvalTakeoverJSON runs the evaluation on 16 participants. The thresholds are loose (all
// 500 participants give a median of about 44 keystrokes, 1.4% missed and 0.35 false challenges
// per 1,000 genuine keystrokes) but fail when the pipeline breaks.
func TestEvalTakeoverJSON(t *testing.T) {
	if _, err := os.Stat(evalAaltoDir); err != nil {
		t.Skipf("Aalto keystroke data not available at %s", evalAaltoDir)
	}
	pngPath := filepath.Join(t.TempDir(), "takeover.png")
	var out, errOut bytes.Buffer
	err := runEval(context.Background(), []string{"takeover", "--data", evalAaltoDir, "--users", "16", "--impostors", "3",
		"--rounds", "2", "--seed", "7", "--json", "--png", pngPath}, &out, &errOut)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	var res map[string]any
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, out.String())
	}
	for _, k := range []string{"median_keystrokes_to_challenge", "missed_takeovers", "genuine_challenges_per_1000",
		"keystrokes_to_challenge", "protocol", "users", "seed", "dropped", "takeover", "genuine"} {
		if _, ok := res[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	median, _ := res["median_keystrokes_to_challenge"].(float64)
	missed, _ := res["missed_takeovers"].(float64)
	rate, _ := res["genuine_challenges_per_1000"].(float64)
	t.Logf("16 participants: median %v, missed %v, %v per 1,000", median, missed, rate)
	if res["seed"].(float64) != 7 || res["users"].(float64) < 15 {
		t.Errorf("seed %v, users %v", res["seed"], res["users"])
	}
	if !(median > 0 && median <= 150) || missed > 0.15 || rate > 3 {
		t.Errorf("median %v keystrokes, %v missed, %v per 1,000: far from what the guard and models reach", median, missed, rate)
	}
	f, err := os.Open(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Fatalf("curve is not a PNG: %v", err)
	}
	if !strings.Contains(errOut.String(), "seed 7") || !strings.Contains(errOut.String(), "replay") {
		t.Errorf("settings and progress not printed on stderr: %s", errOut.String())
	}
}

func TestEvalTakeoverText(t *testing.T) {
	if _, err := os.Stat(evalAaltoDir); err != nil {
		t.Skipf("Aalto keystroke data not available at %s", evalAaltoDir)
	}
	var out, errOut bytes.Buffer
	err := runEvalTakeover(context.Background(), []string{"--data", evalAaltoDir, "--users", "6", "--impostors", "1", "--rounds", "1", "--start", "new"}, &out, &errOut)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	for _, want := range []string{"median_keystrokes_to_challenge", "missed_takeovers", "genuine_challenges_per_1000", "protocol:", "--start new", "p90"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// writeMouseTakeoverData lays out three synthetic movers as the Balabit data: two training
// sessions and two legal test sessions each, and one illegal test session of each account by the
// next mover.
func writeMouseTakeoverData(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	n := 0
	labels := "filename,is_illegal\n"
	write := func(sub, user string, evs []mouse.Event, illegal bool) {
		n++
		name := fmt.Sprintf("session_%04d", n)
		modelstest.WriteBalabitSession(t, dir, sub, user, name, evs)
		if sub == "test_files" {
			labels += fmt.Sprintf("%s,%d\n", name, map[bool]int{false: 0, true: 1}[illegal])
		}
	}
	movers := []*mouse.Mover{mouse.NewMover(21), mouse.NewMover(22), mouse.NewMover(23)}
	for u, m := range movers {
		user := fmt.Sprintf("user%d", u+1)
		write("training_files", user, m.Move(200), false)
		write("training_files", user, m.Move(200), false)
		write("test_files", user, m.Move(50), false)
		write("test_files", user, m.Move(50), false)
		write("test_files", user, movers[(u+1)%len(movers)].Move(50), true)
	}
	if err := os.WriteFile(filepath.Join(dir, "public_labels.csv"), []byte(labels), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestEvalTakeoverMouseRejectsBadFlags(t *testing.T) {
	mice := writeMouseTakeoverData(t)
	typing := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--data", mice, "--window", "50"}, "-window: typing only"},
		{[]string{"--data", mice, "--users", "3"}, "-users: typing only"},
		{[]string{"--data", mice, "--impostors", "0"}, "-impostors"},
		{[]string{"--data", mice, "--fleet", "0", "--epsilon", "8"}, "-fleet"},
		{[]string{"--data", mice, "--mouse-window", "-1"}, "-mouse-window"},
		{[]string{"--data", mice, "--mouse-window", "100", "--mouse-hop", "150"}, "-mouse-hop"},
		{[]string{"--data", mice, "--enrol-actions", "-5"}, "-enrol-actions"},
		{[]string{"--data", mice, "--start", "later"}, "-start"},
		{[]string{"--data", typing, "--fleet", "100"}, "-fleet: mouse data only"},
		{[]string{"--data", typing, "--mouse-window", "400"}, "-mouse-window: mouse data only"},
		{[]string{"--data", typing, "--enrol-actions", "100"}, "-enrol-actions: mouse data only"},
	} {
		var out, errOut bytes.Buffer
		err := runEvalTakeover(context.Background(), tc.args, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("eval takeover %q: error %v, want one naming %q", tc.args, err, tc.want)
		}
	}
}

// TestEvalTakeoverMouse runs the mouse replay on synthetic movers laid out as the Balabit data,
// whose hands differ plainly, as JSON with its plot, and as text.
func TestEvalTakeoverMouse(t *testing.T) {
	dir := writeMouseTakeoverData(t)
	pngPath := filepath.Join(t.TempDir(), "mouse-takeover.png")
	var out, errOut bytes.Buffer
	err := runEval(context.Background(), []string{"takeover", "--data", dir, "--rounds", "1", "--seed", "3", "--epsilon", "inf", "--json", "--png", pngPath}, &out, &errOut)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	var res map[string]any
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, out.String())
	}
	for _, k := range []string{"genuine_challenges_per_hour", "genuine_challenges_per_1000_actions", "median_actions_to_challenge",
		"median_seconds_to_challenge", "missed_takeovers", "account_takeovers", "cross_user_takeovers", "protocol", "genuine", "dropped"} {
		if _, ok := res[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	if res["modality"] != "mouse" || res["epsilon"] != "inf" || res["users"].(float64) != 3 {
		t.Errorf("modality %v, epsilon %v, users %v", res["modality"], res["epsilon"], res["users"])
	}
	account := res["account_takeovers"].(map[string]any)
	if account["sessions"].(float64) != 3 || account["missed"].(float64) != 0 {
		t.Errorf("account takeovers of synthetic movers: %v", account)
	}
	if m, _ := res["median_actions_to_challenge"].(float64); !(m > 0 && m <= 10) {
		t.Errorf("median %v actions to challenge another synthetic mover", res["median_actions_to_challenge"])
	}
	f, err := os.Open(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Fatalf("plot is not a PNG: %v", err)
	}
	if !strings.Contains(errOut.String(), "mouse data") || !strings.Contains(errOut.String(), "replay") {
		t.Errorf("settings and progress not printed on stderr: %s", errOut.String())
	}

	out.Reset()
	if err := runEvalTakeover(context.Background(), []string{"--data", dir, "--rounds", "1", "--impostors", "1", "--start", "new", "--png", ""}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"account takeovers", "cross-user takeovers", "genuine_challenges_per_hour", "missed_takeovers",
		"protocol:", "--start new", "--impostors 1", "p90", "federated (plaintext simulation, not deployable)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
