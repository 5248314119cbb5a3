package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilauth/vigil/models/eval"
)

const evalAaltoDir = "../../../shared/datasets/aalto-keystrokes"

func TestEvalRejectsBadArguments(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		args []string
		want string // the flag or word the error must name
	}{
		{nil, "keystrokes, mouse or takeover"},
		{[]string{"typing"}, "typing"},
		{[]string{"keystrokes", "--data", filepath.Join(t.TempDir(), "nope")}, "-data"},
		{[]string{"keystrokes", "--data", t.TempDir(), "--window", "3"}, "-window"},
		{[]string{"keystrokes", "--data", t.TempDir(), "--enrol", "0"}, "-enrol"},
		{[]string{"keystrokes", "--data", t.TempDir(), "--users", "-1"}, "-users"},
		{[]string{"keystrokes", "--data", t.TempDir(), "--scaling", "minmax"}, "-scaling"},
		{[]string{"keystrokes", "--data", t.TempDir(), "extra"}, "extra"},
		{[]string{"keystrokes", "--data", t.TempDir()}, "no *_keystrokes"},
		{[]string{"mouse", "--data", t.TempDir()}, "training_files"},
		{[]string{"takeover", "--data", filepath.Join(t.TempDir(), "nope")}, "-data"},
		{[]string{"keystrokes", "--data", t.TempDir(), "--epsilon", "0"}, "-epsilon"},
		{[]string{"keystrokes", "--data", t.TempDir(), "--epsilon", "-1"}, "-epsilon"},
		{[]string{"keystrokes", "--data", t.TempDir(), "--epsilon", "lots"}, "-epsilon"},
		{[]string{"keystrokes", "--data", t.TempDir(), "--clip", "5"}, "-clip"},
		{[]string{"mouse", "--data", t.TempDir(), "--epsilon", "8", "--fleet", "0"}, "-fleet"},
		{[]string{"takeover", "--data", t.TempDir(), "--epsilon", "8", "--background", "-2"}, "-background"},
	} {
		var out, errOut bytes.Buffer
		err := runEval(ctx, tc.args, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("eval %q: error %v, want one naming %q", tc.args, err, tc.want)
		}
	}
}

func TestEvalKeystrokesJSON(t *testing.T) {
	if _, err := os.Stat(evalAaltoDir); err != nil {
		t.Skipf("Aalto keystroke data not available at %s", evalAaltoDir)
	}
	pngPath := filepath.Join(t.TempDir(), "det.png")
	var out, errOut bytes.Buffer
	err := runEval(context.Background(), []string{"keystrokes", "--data", evalAaltoDir, "--users", "12", "--rounds", "2", "--seed", "7", "--json", "--png", pngPath}, &out, &errOut)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	var res map[string]any
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, out.String())
	}
	for _, k := range []string{"eer_mean", "eer_pooled", "users", "genuine_trials", "impostor_trials", "seed", "dropped", "alone"} {
		if _, ok := res[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	if res["seed"].(float64) != 7 || res["users"].(float64) < 10 {
		t.Errorf("seed %v, users %v", res["seed"], res["users"])
	}
	f, err := os.Open(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Fatalf("curve is not a PNG: %v", err)
	}
	if !strings.Contains(errOut.String(), "seed 7") {
		t.Errorf("settings not printed on stderr: %s", errOut.String())
	}
}

// TestEvalKeystrokesDeployable runs the deployable federation on a few participants and checks
// that the JSON says what was deployed, with intervals.
func TestEvalKeystrokesDeployable(t *testing.T) {
	if _, err := os.Stat(evalAaltoDir); err != nil {
		t.Skipf("Aalto keystroke data not available at %s", evalAaltoDir)
	}
	var out, errOut bytes.Buffer
	err := runEval(context.Background(), []string{"keystrokes", "--data", evalAaltoDir, "--users", "20", "--epsilon", "8", "--json", "--png", ""}, &out, &errOut)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	var res struct {
		Epsilon    any  `json:"epsilon"`
		Deployable bool `json:"deployable"`
		EERMeanCI  struct {
			Lo, Hi float64
		} `json:"eer_mean_ci95"`
		EERMean float64 `json:"eer_mean"`
		Private struct {
			NoiseMultiplier, EpsilonSpent float64
		} `json:"private_rounds"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, out.String())
	}
	if res.Epsilon != 8.0 || !res.Deployable || !(res.Private.NoiseMultiplier > 0) || !(res.Private.EpsilonSpent <= 8) {
		t.Fatalf("epsilon %v, deployable %v, rounds %+v", res.Epsilon, res.Deployable, res.Private)
	}
	if !(res.EERMeanCI.Lo <= res.EERMean && res.EERMean <= res.EERMeanCI.Hi) {
		t.Errorf("EER %v outside its interval %+v", res.EERMean, res.EERMeanCI)
	}
}

// The rounds at epsilon inf (no noise) are written to JSON, which has no infinity, as "inf":
// `vigil eval mouse --epsilon inf --json` failed on them.
func TestPrivateRoundsJSONAtInfinity(t *testing.T) {
	for _, r := range []*eval.PrivateRounds{
		{Epsilon: math.Inf(1), EpsilonSpent: math.Inf(1), Delta: 1e-5, Fleet: 500},
		{Epsilon: 8, EpsilonSpent: 7.9, Delta: 1e-5, NoiseMultiplier: 0.6},
		nil,
	} {
		raw, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("%+v: %v", r, err)
		}
		var got map[string]any
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		switch {
		case r == nil:
			if got != nil {
				t.Errorf("nil rounds: %s", raw)
			}
		case math.IsInf(r.Epsilon, 1):
			if got["Epsilon"] != "inf" || got["EpsilonSpent"] != "inf" || got["Fleet"] != 500.0 {
				t.Errorf("rounds at infinity: %s", raw)
			}
		default:
			if got["Epsilon"] != 8.0 || got["NoiseMultiplier"] != 0.6 {
				t.Errorf("rounds at epsilon 8: %s", raw)
			}
		}
	}
}
