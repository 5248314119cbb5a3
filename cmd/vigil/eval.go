package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/metrics"
)

// runEval measures the behavioural models on recorded data:
//
//	vigil eval keystrokes --data DIR [--window 50] [--enrol 5] [--seed 1] [--json] [--png FILE]
//	vigil eval mouse --data DIR [--seed 1] [--json] [--png FILE] [--dev]
func runEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		evalUsage(stderr)
		if len(args) == 0 {
			return errors.New("eval: name what to evaluate: keystrokes, mouse or takeover")
		}
		return nil
	}
	switch args[0] {
	case "keystrokes":
		return runEvalKeystrokes(ctx, args[1:], stdout, stderr)
	case "mouse":
		return runEvalMouse(ctx, args[1:], stdout, stderr)
	case "takeover":
		return runEvalTakeover(ctx, args[1:], stdout, stderr)
	case "feduv":
		return runEvalFedUV(ctx, args[1:], stdout, stderr)
	}
	evalUsage(stderr)
	return fmt.Errorf("eval: unknown evaluation %q, want keystrokes, mouse or takeover", args[0])
}

func evalUsage(w io.Writer) {
	fmt.Fprintln(w, `usage: vigil eval <keystrokes|mouse|takeover> [flags]

  keystrokes  per-user keystroke models on windows of typing (Aalto 136M Keystrokes layout)
  mouse       per-user mouse models on sessions of pointer events (Balabit layout)
  takeover    the session guard on replayed sessions in which another person takes over
              (typing on Aalto keystroke data; mouse alone on Balabit mouse data)
  feduv       experiment: FedUV embedding network trained by (DP-)FedAvg, one class per device

Run 'vigil eval <name> -h' for flags.`)
}

// commonEvalFlags are the flags both evaluations share.
type commonEvalFlags struct {
	data    string
	seed    uint64
	jsonOut bool
	png     string
	workers int
	scaling string
}

func (c *commonEvalFlags) register(fs *flag.FlagSet, data, png string) {
	fs.StringVar(&c.data, "data", data, "directory of the data set")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of every random choice (a run is repeated exactly with the same seed and flags)")
	fs.BoolVar(&c.jsonOut, "json", false, "print one JSON object instead of text")
	fs.StringVar(&c.png, "png", png, "write the curve to this PNG file (empty: none)")
	fs.IntVar(&c.workers, "workers", 0, "parallel workers (0: GOMAXPROCS)")
	fs.StringVar(&c.scaling, "scaling", string(models.ZScore), "per-user normalisation of window summaries: zscore or robust")
}

func (c *commonEvalFlags) check() error {
	if c.data == "" {
		return errors.New("flag -data: no directory given")
	}
	if st, err := os.Stat(c.data); err != nil || !st.IsDir() {
		return fmt.Errorf("flag -data: %s is not a readable directory", c.data)
	}
	if c.scaling != string(models.ZScore) && c.scaling != string(models.Robust) {
		return fmt.Errorf("flag -scaling: %q, want zscore or robust", c.scaling)
	}
	if c.workers < 0 {
		return fmt.Errorf("flag -workers: %d is negative", c.workers)
	}
	return nil
}

// progress prints each stage's progress to w at most every few percent.
func evalProgress(w io.Writer) func(stage string, done, total int) {
	last := map[string]int{}
	start := time.Now()
	return func(stage string, done, total int) {
		pct := 100 * done / max(total, 1)
		if prev, ok := last[stage]; ok && pct < prev+10 && done != total {
			return
		}
		last[stage] = pct
		fmt.Fprintf(w, "%6.1fs  %-14s %d/%d\n", time.Since(start).Seconds(), stage, done, total)
	}
}

func evalWritePNG(path string, det bool, title string, series ...metrics.Series) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("flag -png: %w", err)
	}
	write := metrics.WriteROC
	if det {
		write = metrics.WriteDET
	}
	if err := write(f, title, series...); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("flag -png: %w", err)
	}
	return nil
}

func evalWriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printDropped lists what was dropped, by reason, in a stable order.
func evalPrintDropped(w io.Writer, rows, kept int, dropped map[string]int) {
	fmt.Fprintf(w, "rows read %d, kept %d\n", rows, kept)
	if len(dropped) == 0 {
		fmt.Fprintln(w, "dropped: nothing")
		return
	}
	reasons := make([]string, 0, len(dropped))
	for r := range dropped {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	fmt.Fprintln(w, "dropped:")
	for _, r := range reasons {
		fmt.Fprintf(w, "  %-50s %d\n", r, dropped[r])
	}
}

func evalWrap(s string, width int) string {
	var b strings.Builder
	line := 0
	for _, word := range strings.Fields(s) {
		if line > 0 && line+1+len(word) > width {
			b.WriteString("\n")
			line = 0
		} else if line > 0 {
			b.WriteString(" ")
			line++
		}
		b.WriteString(word)
		line += len(word)
	}
	return b.String()
}
