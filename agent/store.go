package agent

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/vigilauth/vigil/audit"
	"github.com/vigilauth/vigil/guard"
	"github.com/vigilauth/vigil/internal/atomicfile"
	"github.com/vigilauth/vigil/models"
)

// stateMagic starts the state file and is the AEAD's associated data, so a file of another
// kind or version does not decrypt as state.
const stateMagic = "vigil/agent/state/v1\n"

// State is what the agent keeps across restarts. It holds feature summaries and baselines,
// never raw input events.
type State struct {
	Users map[string]*UserState
	// Sessions are the sessions open at the last save (periodic or at shutdown), which New
	// restores; SavedAt is when that save took them.
	Sessions []SavedSession
	SavedAt  time.Time
	// AuditHead is the head of the audit log this agent signed and exported last. A log found
	// shorter than it, or different up to it, at start was cut or rewritten: the agent refuses
	// to start rather than sign a shorter chain over the gap. Nil until the first export.
	AuditHead *audit.Head
}

// SavedSession is an open session in the State: its standing in the guard (trust, tier, risk,
// revocation, open challenge) and what the agent counts of it. No events, no window contents.
type SavedSession struct {
	Standing guard.SavedSession
	// Token is the session's page token, a bearer credential for the session: it is kept so
	// that the page keeps working across a restart, which is safe only because the state file
	// is sealed under the device key (XChaCha20-Poly1305) and written 0600 in the agent's 0700
	// directory, beside the install secret that is a stronger credential still.
	Token           string
	Start           time.Time
	MinTrust        float64
	Allowed, Denied int64
}

// UserState is one user's part of the State.
type UserState struct {
	// Enrolment holds the feature summaries of the user's enrolment windows (models.Window
	// Dense summaries and per-bucket timings; no key sequence) and Seed the seed their model
	// was fitted with, so the same model is fitted again after a restart.
	Enrolment models.Enrolment
	Seed      uint64
	Enrolled  bool
	// Learnt holds the windows (feature summaries) that passed challenges and analysts'
	// confirmations taught the model since enrolment, oldest first: a refit replays them.
	Learnt []models.Window
	// MouseEnrolment holds the features of the user's enrolment mouse actions (one
	// models.Window per action: movement, shape and click features; no positions) and
	// MouseEnrolled says their mouse model was fitted from it (seeded as the keystroke model).
	MouseEnrolment models.Enrolment
	MouseEnrolled  bool
	// Baseline is the guard's context baseline (devices, networks, hours, maturity).
	Baseline *guard.Baseline
	// History lists the user's last sessions, newest last.
	History []SessionSummary
}

// SessionSummary is one finished (or interrupted) session in a user's trust history.
// EndedByShutdown marks a session that was open when the agent stopped and that the next start
// did not restore (older than MaxRestoredSessionAge, or its standing did not restore); End is
// then when the agent last saved it.
type SessionSummary struct {
	Session         string
	Start, End      time.Time
	FinalTrust      float64
	MinTrust        float64
	Tier            string
	Allowed, Denied int
	EndedByShutdown bool
}

// sealState encrypts st under key: magic || nonce || XChaCha20-Poly1305(gob(st)).
func sealState(key []byte, st *State) ([]byte, error) {
	var plain bytes.Buffer
	if err := gob.NewEncoder(&plain).Encode(st); err != nil {
		return nil, fmt.Errorf("agent: encode state: %w", err)
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	nonce, err := randomBytes(aead.NonceSize())
	if err != nil {
		return nil, err
	}
	out := append([]byte(stateMagic), nonce...)
	return aead.Seal(out, nonce, plain.Bytes(), []byte(stateMagic)), nil
}

// openState decrypts and decodes a sealed state.
func openState(key, data []byte) (*State, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if len(data) < len(stateMagic)+aead.NonceSize()+aead.Overhead() || string(data[:len(stateMagic)]) != stateMagic {
		return nil, fmt.Errorf("%w: not an agent state file", ErrState)
	}
	nonce := data[len(stateMagic) : len(stateMagic)+aead.NonceSize()]
	plain, err := aead.Open(nil, nonce, data[len(stateMagic)+aead.NonceSize():], []byte(stateMagic))
	if err != nil {
		return nil, fmt.Errorf("%w: the state file does not decrypt under this device's key (altered, or another device's)", ErrState)
	}
	st := &State{}
	if err := gob.NewDecoder(bytes.NewReader(plain)).Decode(st); err != nil {
		return nil, fmt.Errorf("%w: decode state: %v", ErrState, err)
	}
	if st.Users == nil {
		st.Users = map[string]*UserState{}
	}
	return st, nil
}

// forgetOrder takes the order out of what a state written by an older agent kept in it: the
// keystroke windows' events in typing order and the mouse actions in the order made. The next
// save writes the state without it. It reports whether there was anything to change.
func (st *State) forgetOrder() bool {
	for _, us := range st.Users {
		for _, ws := range [][]models.Window{us.Enrolment.Windows, us.Learnt} {
			for i := range ws {
				ws[i].Events = unordered(ws[i].Events)
			}
		}
		rand.Shuffle(len(us.MouseEnrolment.Windows), func(i, j int) {
			us.MouseEnrolment.Windows[i], us.MouseEnrolment.Windows[j] = us.MouseEnrolment.Windows[j], us.MouseEnrolment.Windows[i]
		})
	}
	return len(st.Users) > 0
}

// loadState reads dir's state file; a missing one is an empty state.
func loadState(dir string, key []byte) (*State, error) {
	f, err := os.Open(filepath.Join(dir, StateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return &State{Users: map[string]*UserState{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxStateBytes+1))
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if len(data) > MaxStateBytes {
		return nil, fmt.Errorf("%w: state file beyond %d bytes", ErrState, MaxStateBytes)
	}
	return openState(key, data)
}

// writeState writes a sealed state to dir's state file, all or nothing.
func writeState(dir string, data []byte) error {
	if err := atomicfile.Write(filepath.Join(dir, StateFile), data, 0o600); err != nil {
		return fmt.Errorf("agent: save state: %w", err)
	}
	return nil
}
