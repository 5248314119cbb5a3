package sim

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progressBar draws one line per round that fills up as updates arrive and is finished with
// the round's result. On a terminal the line is redrawn in place; elsewhere (a log file, CI)
// only the finished line is written.
type progressBar struct {
	w      io.Writer
	rounds int
	live   bool
}

func newProgressBar(w io.Writer, rounds int) progressBar {
	return progressBar{w: w, rounds: rounds, live: isTerminal(w)}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (p progressBar) draw(round uint64, got, of int) {
	if p.live {
		p.line(round, got, of)
	}
}

func (p progressBar) line(round uint64, got, of int) {
	const width = 24
	filled := 0
	if of > 0 {
		filled = min(width, got*width/of)
	}
	if p.live {
		fmt.Fprint(p.w, "\r")
	}
	fmt.Fprintf(p.w, "%s [%s%s] %d/%d updates", p.label(round),
		strings.Repeat("█", filled), strings.Repeat("░", width-filled), got, of)
}

// label names the round, out of the rounds planned while it is one of them: a round that fails
// to start still takes its number, so later ones count past the plan.
func (p progressBar) label(round uint64) string {
	if round > uint64(p.rounds) {
		return fmt.Sprintf("round %d", round)
	}
	return fmt.Sprintf("round %d/%d", round, p.rounds)
}

func (p progressBar) done(round uint64, got, of int, d time.Duration, loss, epsilon float64) {
	p.line(round, got, of)
	fmt.Fprintf(p.w, "  %6.2fs  held-out loss %.4f  epsilon %.3f\n", d.Seconds(), loss, epsilon)
}

// population ends the line of a population round: how much of the population model survived
// the noise.
func (p progressBar) population(round uint64, label string, got, of int, d time.Duration, modelled, buckets int, epsilon float64) {
	p.line(round, got, of)
	fmt.Fprintf(p.w, "  %6.2fs  %s: %d of %d buckets  epsilon %.3f\n", d.Seconds(), label, modelled, buckets, epsilon)
}

// reference ends the line of a reference round.
func (p progressBar) reference(round uint64, got, of int, d time.Duration, epsilon float64) {
	p.line(round, got, of)
	fmt.Fprintf(p.w, "  %6.2fs  mouse reference learnt  epsilon %.3f\n", d.Seconds(), epsilon)
}

func (p progressBar) failed(round uint64, err error) {
	if p.live {
		fmt.Fprint(p.w, "\r")
	}
	fmt.Fprintf(p.w, "%s failed: %v\n", p.label(round), err)
}
