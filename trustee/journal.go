package trustee

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"slices"
)

// State is what a trustee must remember across restarts so that it never decrypts the same
// ciphertext twice: the last round it answered, the digest of that request and the answer
// (so an identical retry gets the identical answer), and the fingerprint of every sum it has
// decrypted (so an old sum under a new round number is refused).
type State struct {
	LastRound uint64
	Request   [32]byte
	Response  [][]byte
	Sums      [][32]byte
}

// Journal persists State. Save must be durable when it returns: the trustee releases a share
// only after its decision is saved.
type Journal interface {
	Load() (State, error)
	Save(State) error
}

// FileJournal keeps State in one file, replaced atomically on every Save (mode 0600).
type FileJournal struct {
	Path string
}

var _ Journal = FileJournal{}

// Journal layout (little-endian): magic "VGTJ", version 1, last round (8), request digest
// (32), response count (4), each response { length (4), bytes }, sum count (4), sums (32
// each), SHA-256 of everything before (32).
const (
	journalMagic   = "VGTJ"
	journalVersion = 1
	maxResponses   = 1024
	maxSums        = 1 << 20
)

// Load reads the journal; a missing file is the empty state of a trustee that has never
// decrypted anything.
func (j FileJournal) Load() (State, error) {
	data, err := ReadSecretFile(j.Path)
	if errors.Is(err, fs.ErrNotExist) {
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

// Save replaces the journal durably.
func (j FileJournal) Save(st State) error {
	return WriteSecretFile(j.Path, marshalState(st))
}

func marshalState(st State) []byte {
	var b bytes.Buffer
	b.WriteString(journalMagic)
	b.WriteByte(journalVersion)
	b.Write(binary.LittleEndian.AppendUint64(nil, st.LastRound))
	b.Write(st.Request[:])
	b.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(st.Response))))
	for _, r := range st.Response {
		b.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(r))))
		b.Write(r)
	}
	b.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(st.Sums))))
	for _, s := range st.Sums {
		b.Write(s[:])
	}
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
	if err := binary.Read(r, binary.LittleEndian, &st.LastRound); err != nil {
		return State{}, errJournal
	}
	if _, err := r.Read(st.Request[:]); err != nil {
		return State{}, errJournal
	}
	n, err := u32()
	if err != nil || n > maxResponses {
		return State{}, fmt.Errorf("%w: response count", errJournal)
	}
	for range n {
		size, err := u32()
		if err != nil || int64(size) > int64(r.Len()) {
			return State{}, fmt.Errorf("%w: response length", errJournal)
		}
		resp := make([]byte, size)
		if _, err := r.Read(resp); err != nil && size > 0 {
			return State{}, errJournal
		}
		st.Response = append(st.Response, resp)
	}
	m, err := u32()
	if err != nil || m > maxSums || int64(m)*32 != int64(r.Len()) {
		return State{}, fmt.Errorf("%w: sum fingerprints", errJournal)
	}
	st.Sums = make([][32]byte, m)
	for i := range st.Sums {
		r.Read(st.Sums[i][:])
	}
	if !bytes.Equal(marshalState(st), data) {
		return State{}, fmt.Errorf("%w: not canonical", errJournal)
	}
	return st, nil
}

// decrypted reports whether the sum with fingerprint fp was decrypted before.
func (st *State) decrypted(fp [32]byte) bool { return slices.Contains(st.Sums, fp) }
