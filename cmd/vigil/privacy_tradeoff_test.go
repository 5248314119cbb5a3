package main

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPrivacyTradeoff(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--data", filepath.Join(t.TempDir(), "nope")}, "-data"},
		{[]string{"--data", t.TempDir(), "--epsilons", "8,zero"}, "-epsilons"},
		{[]string{"--data", t.TempDir(), "--clip", "-3"}, "-clip"},
	} {
		var out, errOut bytes.Buffer
		if err := runPrivacyTradeoff(ctx, tc.args, &out, &errOut); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("tradeoff %q: error %v, want one naming %q", tc.args, err, tc.want)
		}
	}
	if _, err := os.Stat(evalAaltoDir); err != nil {
		t.Skipf("Aalto keystroke data not available at %s", evalAaltoDir)
	}
	pngPath := filepath.Join(t.TempDir(), "tradeoff.png")
	var out, errOut bytes.Buffer
	if err := runPrivacyTradeoff(ctx, []string{"--data", evalAaltoDir, "--users", "15", "--epsilons", "8,inf", "--png", pngPath}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	for _, want := range []string{"\n8 ", "\ninf ", "\nalone ", "protocol:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	f, err := os.Open(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Fatalf("plot is not a PNG: %v", err)
	}
}
