package trustee

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// State is what a trustee must remember across restarts so that it never decrypts two
// participant sets of one round, nor one round twice: the last round it decrypted, the digest
// of that request and the answer (so an identical retry gets the identical answer), and its
// latest commitment with the c1 sum it computed for it (so that decrypting after a restart
// needs no second stream of the round's updates).
type State struct {
	LastRound uint64
	Request   [32]byte
	Response  [][]byte
	Committed Committed
}

// Committed is a trustee's commitment to one participant set of one round.
type Committed struct {
	Round        uint64 // 0: none
	SetDigest    [32]byte
	Contributors uint32
	C1Digest     [32]byte
	// Commitment is the signed SumCommitment as sent (deterministic protobuf), answered again
	// to a repeated CommitSum for the same set.
	Commitment []byte
	// C1 is the trustee's own sum of the set's c1 polynomials (he.C1Sum.MarshalBinary).
	C1 []byte
}

// Journal persists State. Save must be durable when it returns: the trustee answers only
// after its decision is saved.
type Journal interface {
	Load() (State, error)
	Save(State) error
}

// ErrJournalMissing reports a trustee that has served before but whose journal is gone:
// starting with an empty one would let it decrypt old rounds again.
var ErrJournalMissing = errors.New("trustee: journal missing")

// FileJournal keeps State in one file, replaced atomically on every Save (mode 0600).
//
// Marker, if set, is a file written (durably) before the first Save and never removed: once
// it exists, Load refuses a missing journal instead of starting afresh. Put it beside the
// share, so that a journal lost or deleted on its own is noticed.
type FileJournal struct {
	Path   string
	Marker string
}

var _ Journal = FileJournal{}

// Journal layout (little-endian): magic "VGTJ", version 2, last round (8), request digest
// (32), response count (4), each response { length (4), bytes }, committed round (8), set
// digest (32), contributors (4), c1 digest (32), commitment { length (4), bytes }, c1 sum
// { length (4), bytes }, SHA-256 of everything before (32).
const (
	journalMagic   = "VGTJ"
	journalVersion = 2
	maxResponses   = 1024
)

// Load reads the journal. A missing file is the empty state of a trustee that has never
// served anything, unless the marker says it has (ErrJournalMissing).
func (j FileJournal) Load() (State, error) {
	data, err := ReadSecretFile(j.Path)
	if errors.Is(err, fs.ErrNotExist) {
		if j.Marker != "" {
			if _, merr := os.Stat(j.Marker); merr == nil {
				return State{}, fmt.Errorf("%w: %s does not exist, but %s says this trustee has served before; restore the journal from its backup (starting afresh would let old rounds be decrypted again)",
					ErrJournalMissing, j.Path, j.Marker)
			}
		}
		return State{}, nil
	}
	if err != nil {
		return State{}, err
	}
	st, err := parseState(data)
	if err != nil {
		return State{}, fmt.Errorf("trustee: journal %s: %w", j.Path, err)
	}
	return st, nil
}

// Save replaces the journal durably, writing the marker first if there is none yet.
func (j FileJournal) Save(st State) error {
	if j.Marker != "" {
		if _, err := os.Stat(j.Marker); errors.Is(err, fs.ErrNotExist) {
			note := fmt.Sprintf("this trustee keeps its decisions in %s; it refuses to start without it\n", j.Path)
			if err := WriteSecretFile(j.Marker, []byte(note)); err != nil {
				return err
			}
		}
	}
	return WriteSecretFile(j.Path, marshalState(st))
}

func marshalState(st State) []byte {
	var b bytes.Buffer
	u32 := func(x int) { b.Write(binary.LittleEndian.AppendUint32(nil, uint32(x))) }
	b.WriteString(journalMagic)
	b.WriteByte(journalVersion)
	b.Write(binary.LittleEndian.AppendUint64(nil, st.LastRound))
	b.Write(st.Request[:])
	u32(len(st.Response))
	for _, r := range st.Response {
		u32(len(r))
		b.Write(r)
	}
	c := st.Committed
	b.Write(binary.LittleEndian.AppendUint64(nil, c.Round))
	b.Write(c.SetDigest[:])
	u32(int(c.Contributors))
	b.Write(c.C1Digest[:])
	u32(len(c.Commitment))
	b.Write(c.Commitment)
	u32(len(c.C1))
	b.Write(c.C1)
	sum := sha256.Sum256(b.Bytes())
	b.Write(sum[:])
	return b.Bytes()
}

var errJournal = errors.New("malformed journal")

func parseState(data []byte) (State, error) {
	if len(data) < sha256.Size {
		return State{}, errJournal
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if want := sha256.Sum256(body); !bytes.Equal(sum, want[:]) {
		return State{}, fmt.Errorf("%w: checksum mismatch (file damaged?)", errJournal)
	}
	r := bytes.NewReader(body)
	var st State
	magic := make([]byte, 5)
	if _, err := r.Read(magic); err != nil || string(magic[:4]) != journalMagic || magic[4] != journalVersion {
		return State{}, fmt.Errorf("%w: not a version %d journal", errJournal, journalVersion)
	}
	u32 := func() (uint32, error) {
		var x uint32
		err := binary.Read(r, binary.LittleEndian, &x)
		return x, err
	}
	fixed := func(dst []byte) error {
		if n, _ := r.Read(dst); n != len(dst) {
			return errJournal
		}
		return nil
	}
	blob := func(what string) ([]byte, error) {
		size, err := u32()
		if err != nil || int64(size) > int64(r.Len()) {
			return nil, fmt.Errorf("%w: %s length", errJournal, what)
		}
		out := make([]byte, size)
		if size > 0 {
			if err := fixed(out); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	if err := binary.Read(r, binary.LittleEndian, &st.LastRound); err != nil {
		return State{}, errJournal
	}
	if err := fixed(st.Request[:]); err != nil {
		return State{}, err
	}
	n, err := u32()
	if err != nil || n > maxResponses {
		return State{}, fmt.Errorf("%w: response count", errJournal)
	}
	for range n {
		resp, err := blob("response")
		if err != nil {
			return State{}, err
		}
		st.Response = append(st.Response, resp)
	}
	c := &st.Committed
	if err := binary.Read(r, binary.LittleEndian, &c.Round); err != nil {
		return State{}, errJournal
	}
	if err := fixed(c.SetDigest[:]); err != nil {
		return State{}, err
	}
	if c.Contributors, err = u32(); err != nil {
		return State{}, errJournal
	}
	if err := fixed(c.C1Digest[:]); err != nil {
		return State{}, err
	}
	if c.Commitment, err = blob("commitment"); err != nil {
		return State{}, err
	}
	if c.C1, err = blob("c1 sum"); err != nil {
		return State{}, err
	}
	if r.Len() != 0 {
		return State{}, fmt.Errorf("%w: trailing bytes", errJournal)
	}
	if !bytes.Equal(marshalState(st), data) {
		return State{}, fmt.Errorf("%w: not canonical", errJournal)
	}
	return st, nil
}
