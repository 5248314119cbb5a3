package guard

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParsePolicy(t *testing.T) {
	p, err := ParsePolicy(strings.NewReader("# comment\n\n  docs.read 50\nbilling\t85 # money\napi:/v1/export-all 62.5\nhelp 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	for r, want := range map[string]float64{"docs.read": 50, "billing": 85, "api:/v1/export-all": 62.5, "help": 0} {
		if got, ok := p.MinTrust(r); !ok || got != want {
			t.Errorf("%s: %v %v, want %v", r, got, ok, want)
		}
	}
	if _, ok := p.MinTrust("Billing"); ok {
		t.Error("resource names must be case-sensitive")
	}
	if got := strings.Join(p.Resources(), ","); got != "api:/v1/export-all,billing,docs.read,help" {
		t.Errorf("resources %s", got)
	}
}

func TestParsePolicyErrorsNameTheLine(t *testing.T) {
	cases := []struct {
		name, text string
		line       int
		msg        string
	}{
		{"one field", "docs 50\nbilling\n", 2, "got 1 fields"},
		{"three fields", "billing 85 90\n", 1, "3 fields"},
		{"percent", "billing 85%\n", 1, "not a decimal"},
		{"negative", "billing -5\n", 1, "not a decimal"},
		{"exponent", "billing 1e2\n", 1, "not a decimal"},
		{"NaN", "billing NaN\n", 1, "not a decimal"},
		{"above 100", "billing 100.5\n", 1, "outside 0..100"},
		{"bare point", "billing .\n", 1, "not a decimal"},
		{"leading point", "billing .5\n", 1, "not a decimal"},
		{"two points", "billing 8.5.1\n", 1, "not a decimal"},
		{"bad character", "bill ing\n", 1, "not a decimal"},
		{"unicode name", "bïlling 50\n", 1, "not allowed"},
		{"duplicate", "billing 85\ndocs 50\n\nbilling 90\n", 4, "already set on line 1"},
		{"long name", strings.Repeat("a", MaxResourceBytes+1) + " 50\n", 1, "limit 128"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParsePolicy(strings.NewReader(c.text))
			var pe *PolicyError
			if !errors.As(err, &pe) || !errors.Is(err, ErrPolicy) {
				t.Fatalf("error %v, want a *PolicyError", err)
			}
			if pe.Line != c.line || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %q, want line %d mentioning %q", err, c.line, c.msg)
			}
		})
	}
	for _, text := range []string{"", "# only comments\n\n", strings.Repeat("#", MaxPolicyBytes+1)} {
		if _, err := ParsePolicy(strings.NewReader(text)); !errors.Is(err, ErrPolicy) {
			t.Errorf("policy %.20q: %v, want ErrPolicy", text, err)
		}
	}
}

func TestLoadPolicyNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.txt")
	if err := os.WriteFile(path, []byte("billing 85\nbilling 90\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadPolicy(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("error %v does not name the file and line", err)
	}
	if _, err := LoadPolicy(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing file: %v", err)
	}
}

// FuzzParsePolicy checks that the parser never panics, and that what it accepts prints back to
// a policy that parses to the same thing.
func FuzzParsePolicy(f *testing.F) {
	f.Add(testPolicy)
	f.Add("billing 85 # x\n\n#\n a 0\nb 100\nc 99.999\n")
	f.Add("billing 85\nbilling 90\n")
	f.Add("x 1e2\n")
	f.Add("\xff 50\n")
	f.Fuzz(func(t *testing.T, text string) {
		p, err := ParsePolicy(strings.NewReader(text))
		if err != nil {
			if !errors.Is(err, ErrPolicy) {
				t.Fatalf("error %v does not wrap ErrPolicy", err)
			}
			return
		}
		again, err := ParsePolicy(strings.NewReader(p.String()))
		if err != nil {
			t.Fatalf("printed policy does not parse: %v\n%s", err, p)
		}
		if len(again.min) != len(p.min) {
			t.Fatalf("round trip changed the policy")
		}
		for r, v := range p.min {
			if v < 0 || v > MaxTrust || again.min[r] != v {
				t.Fatalf("resource %q: %v then %v", r, v, again.min[r])
			}
		}
	})
}
