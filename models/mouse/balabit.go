package mouse

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigilauth/vigil/models"
)

// maxCoordinate bounds plausible screen coordinates; Balabit marks a pointer outside the remote
// screen with 65535.
const maxCoordinate = 16384

func parseButton(s string) (Button, bool) {
	switch s {
	case "NoButton":
		return NoButton, true
	case "Left":
		return Left, true
	case "Right":
		return Right, true
	case "Middle":
		return Middle, true
	case "Scroll":
		return Scroll, true
	case "XButton":
		return XButton, true
	}
	return 0, false
}

func parseState(s string) (State, bool) {
	switch s {
	case "Move":
		return Move, true
	case "Pressed":
		return Pressed, true
	case "Released":
		return Released, true
	case "Drag":
		return Drag, true
	case "Down":
		return Down, true
	case "Up":
		return Up, true
	}
	return 0, false
}

// ReadBalabit reads one session of the Balabit Mouse Dynamics Challenge: comma-separated rows
// "record timestamp,client timestamp,button,state,x,y" with times in seconds. Times are taken
// from the client timestamp, relative to the first kept row. Rows that cannot be trusted are
// dropped and counted, never fatal; only an unreadable stream is.
func ReadBalabit(r io.Reader) ([]Event, ReadStats, error) {
	var (
		st     ReadStats
		events []Event
		origin = math.NaN()
		last   float64
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 1<<16)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "record timestamp") {
			continue
		}
		st.Rows++
		f := strings.Split(line, ",")
		if len(f) != 6 {
			st.Drop(DropMalformed, 1)
			continue
		}
		t, err1 := strconv.ParseFloat(f[1], 64)
		x, err2 := strconv.ParseFloat(f[4], 64)
		y, err3 := strconv.ParseFloat(f[5], 64)
		if err1 != nil || err2 != nil || err3 != nil || math.IsNaN(t) || math.IsInf(t, 0) || t < 0 || t > 1e9 {
			st.Drop(DropMalformed, 1)
			continue
		}
		b, okB := parseButton(f[2])
		s, okS := parseState(f[3])
		if !okB || !okS {
			st.Drop(DropUnknown, 1)
			continue
		}
		if !(x >= 0 && x < maxCoordinate && y >= 0 && y < maxCoordinate) {
			st.Drop(DropOffScreen, 1)
			continue
		}
		if math.IsNaN(origin) {
			origin = t
		} else if t < last {
			st.Drop(DropNonMonotonic, 1)
			continue
		}
		last = t
		// Rounded to the microsecond: the file holds decimal seconds.
		events = append(events, Event{T: time.Duration(math.Round((t-origin)*1e6)) * time.Microsecond, Button: b, State: s, X: x, Y: y})
		st.Kept++
	}
	if err := sc.Err(); err != nil {
		return events, st, fmt.Errorf("mouse: read: %w", err)
	}
	return events, st, nil
}

// ReadBalabitFile reads one session file, gzip-compressed when its name ends in .gz.
func ReadBalabitFile(path string) ([]Event, ReadStats, error) {
	r, err := models.OpenData(path)
	if err != nil {
		return nil, ReadStats{}, fmt.Errorf("mouse: %w", err)
	}
	defer r.Close()
	ev, st, err := ReadBalabit(r)
	if err != nil {
		return ev, st, fmt.Errorf("%s: %w", path, err)
	}
	return ev, st, nil
}

// Session is one recorded session file of a user.
type Session struct {
	User string // e.g. "user7"
	Name string // e.g. "session_0041905381", without extension
	Path string
}

// BalabitSessions lists the session files under dir/sub (sub is "training_files" or
// "test_files"), one directory per user, sorted by user and session name.
func BalabitSessions(dir, sub string) ([]Session, error) {
	root := filepath.Join(dir, sub)
	users, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("mouse: %w", err)
	}
	var out []Session
	for _, u := range users {
		if !u.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(root, u.Name()))
		if err != nil {
			return nil, fmt.Errorf("mouse: %w", err)
		}
		for _, f := range files {
			name := f.Name()
			if f.IsDir() || !strings.HasPrefix(name, "session_") {
				continue
			}
			out = append(out, Session{User: u.Name(), Name: strings.TrimSuffix(name, ".gz"), Path: filepath.Join(root, u.Name(), name)})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("mouse: no session_* files under %s/<user>/", root)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].User != out[j].User {
			return out[i].User < out[j].User
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// BalabitLabels reads dir/public_labels.csv (see ReadLabels).
func BalabitLabels(dir string) (map[string]bool, error) {
	path := filepath.Join(dir, "public_labels.csv")
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("mouse: %w", err)
	}
	defer f.Close()
	l, err := ReadLabels(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return l, nil
}

// ReadLabels reads public_labels.csv: "filename,is_illegal" rows, returning whether each session
// (by name) was produced by someone other than the account's owner. Malformed rows are an
// error: labels decide what is measured, so a silently skipped label would bias the result.
func ReadLabels(r io.Reader) (map[string]bool, error) {
	labels := map[string]bool{}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || line == 1 && strings.HasPrefix(text, "filename") {
			continue
		}
		f := strings.Split(text, ",")
		if len(f) != 2 || (f[1] != "0" && f[1] != "1") || f[0] == "" {
			return nil, fmt.Errorf("mouse: labels line %d: want \"session_name,0|1\", got %q", line, text)
		}
		if _, dup := labels[f[0]]; dup {
			return nil, fmt.Errorf("mouse: labels line %d: session %s labelled twice", line, f[0])
		}
		labels[f[0]] = f[1] == "1"
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("mouse: labels: %w", err)
	}
	return labels, nil
}
