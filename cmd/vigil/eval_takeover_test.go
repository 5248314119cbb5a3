package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
