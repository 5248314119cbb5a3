package keystroke

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigilauth/vigil/models"
)

// Participant is the typing of one person: one session per transcribed test section, keystrokes
// in press order, times relative to the person's first keystroke.
type Participant struct {
	ID       string
	Sessions [][]Keystroke
}

// Keystrokes returns all of the participant's keystrokes in time order.
func (p Participant) Keystrokes() []Keystroke {
	var all []Keystroke
	for _, s := range p.Sessions {
		all = append(all, s...)
	}
	return all
}

// ReadStats counts what a reader kept and what it dropped, by reason.
type ReadStats = models.ReadStats

// Reasons rows are dropped.
const (
	DropMalformed    = "malformed row"
	DropBadKey       = "unknown key code"
	DropNonMonotonic = "non-monotonic press time"
	DropOtherPerson  = "participant id differs from the file's"
)

const maxLineBytes = 1 << 20

// maxTimeMs bounds a row's press and release times (about the year 2109): any two such times
// differ by a span that still fits a time.Duration, where a larger one would wrap around and
// put a session's keystrokes out of order.
const maxTimeMs = 1 << 42

// ReadAalto reads one participant's file of the Aalto 136M Keystrokes data set: tab-separated,
// with header PARTICIPANT_ID TEST_SECTION_ID SENTENCE USER_INPUT KEYSTROKE_ID PRESS_TIME
// RELEASE_TIME LETTER KEYCODE, times in milliseconds since the epoch. Rows that cannot be
// trusted are dropped and counted in the stats, never fatal; only an unreadable stream is.
func ReadAalto(r io.Reader) (Participant, ReadStats, error) {
	type raw struct {
		section      string
		press, relMs int64
		code         int
	}
	var (
		st   ReadStats
		id   string
		rows []raw
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLineBytes)
	header := true
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if header {
			header = false
			if strings.HasPrefix(line, "PARTICIPANT_ID") {
				continue
			}
		}
		if line == "" {
			continue
		}
		st.Rows++
		f := strings.Split(line, "\t")
		pid, section, press, rel, code, ok := parseRow(f)
		if !ok {
			st.Drop(DropMalformed, 1)
			continue
		}
		if code < 0 || code > 1023 {
			st.Drop(DropBadKey, 1)
			continue
		}
		if id == "" {
			id = pid
		} else if pid != id {
			st.Drop(DropOtherPerson, 1)
			continue
		}
		rows = append(rows, raw{section: section, press: press, relMs: rel, code: code})
	}
	if err := sc.Err(); err != nil {
		return Participant{}, st, fmt.Errorf("keystroke: read: %w", err)
	}

	p := Participant{ID: id}
	if len(rows) == 0 {
		return p, st, nil
	}
	origin := rows[0].press
	for _, r := range rows {
		origin = min(origin, r.press)
	}
	var cur []Keystroke
	section := ""
	var last int64
	flush := func() {
		if len(cur) > 0 {
			p.Sessions = append(p.Sessions, cur)
		}
		cur = nil
	}
	for _, r := range rows {
		if r.section != section {
			flush()
			section, last = r.section, 0
		}
		if len(cur) > 0 && r.press < last {
			st.Drop(DropNonMonotonic, 1)
			continue
		}
		last = r.press
		k := Keystroke{Code: r.code, Press: time.Duration(r.press-origin) * time.Millisecond}
		if r.relMs >= r.press {
			k.Release = time.Duration(r.relMs-origin) * time.Millisecond
		}
		cur = append(cur, k)
		st.Kept++
	}
	flush()
	sort.SliceStable(p.Sessions, func(i, j int) bool { return p.Sessions[i][0].Press < p.Sessions[j][0].Press })
	return p, st, nil
}

// parseRow finds the fields of a row whose free-text columns may themselves hold tabs: the
// participant and section come first, the key code last, and the keystroke id, press and
// release times are the last three integers before the letter.
func parseRow(f []string) (pid, section string, press, release int64, code int, ok bool) {
	if len(f) < 9 {
		return "", "", 0, 0, 0, false
	}
	pid, section = f[0], f[1]
	if pid == "" || section == "" {
		return "", "", 0, 0, 0, false
	}
	code, err := strconv.Atoi(f[len(f)-1])
	if err != nil {
		return "", "", 0, 0, 0, false
	}
	// The letter is one field, or two empty ones when the letter itself is a tab.
	for _, j := range []int{len(f) - 3, len(f) - 4} {
		if j < 6 {
			continue
		}
		_, e1 := strconv.ParseInt(f[j-2], 10, 64)
		p, e2 := strconv.ParseInt(f[j-1], 10, 64)
		r, e3 := strconv.ParseInt(f[j], 10, 64)
		if e1 == nil && e2 == nil && e3 == nil && p > 0 && p <= maxTimeMs && r >= 0 && r <= maxTimeMs {
			return pid, section, p, r, code, true
		}
	}
	return "", "", 0, 0, 0, false
}

// ReadAaltoFile reads one participant file, gzip-compressed when its name ends in .gz.
func ReadAaltoFile(path string) (Participant, ReadStats, error) {
	r, err := models.OpenData(path)
	if err != nil {
		return Participant{}, ReadStats{}, fmt.Errorf("keystroke: %w", err)
	}
	defer r.Close()
	p, st, err := ReadAalto(r)
	if err != nil {
		return p, st, fmt.Errorf("%s: %w", path, err)
	}
	return p, st, nil
}

// AaltoFiles lists the participant files (*_keystrokes.txt or .txt.gz) in dir, sorted by name.
func AaltoFiles(dir string) ([]string, error) {
	var files []string
	for _, pat := range []string{"*_keystrokes.txt", "*_keystrokes.txt.gz"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			return nil, fmt.Errorf("keystroke: %w", err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("keystroke: %w", err)
		}
		return nil, fmt.Errorf("keystroke: no *_keystrokes.txt[.gz] files in %s", dir)
	}
	sort.Strings(files)
	return files, nil
}
