package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vigilauth/vigil/internal/cputime"
)

func TestWriteReplacesAndLeavesNothingBehind(t *testing.T) {
	for name, write := range map[string]func(string, []byte, fs.FileMode) error{"Write": Write, "WriteUnsynced": WriteUnsynced} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "f")
			for _, content := range []string{"one", "two"} {
				if err := write(p, []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
				if got, _ := os.ReadFile(p); string(got) != content {
					t.Fatalf("read %q, want %q", got, content)
				}
			}
			fi, _ := os.Stat(p)
			if fi.Mode().Perm() != 0o600 {
				t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Fatalf("directory holds %d entries, want only the file", len(entries))
			}
		})
	}
}

func TestCreateHasOneWinner(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = Create(p, []byte{byte(i)}, 0o644) }()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, fs.ErrExist):
			t.Fatalf("unexpected error %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d writers won, want exactly 1", won)
	}
}

func TestIsTemp(t *testing.T) {
	for name, want := range map[string]bool{".f.tmp-123": true, "f": false, ".hidden": false, "f.tmp-1": false} {
		if IsTemp(name) != want {
			t.Errorf("IsTemp(%q) = %v", name, !want)
		}
	}
}

// BenchmarkWriteUpdates is what the coordinator tier's frontends do with the updates' bytes in
// a directory (--tier-blobs): 3.4 MB files written by eight writers at once, each into place
// with and without the syncs.
func BenchmarkWriteUpdates(b *testing.B) {
	data := make([]byte, 3409121)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for name, write := range map[string]func(string, []byte, fs.FileMode) error{"synced": Write, "unsynced": WriteUnsynced} {
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			var n atomic.Int64
			cputime.Report(b)
			b.SetParallelism(4) // eight writers on two cores
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := write(filepath.Join(dir, strconv.FormatInt(n.Add(1), 10)), data, 0o644); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
