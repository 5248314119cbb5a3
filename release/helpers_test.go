package release

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vigilauth/vigil/store"
)

func removeFile(fs *store.FS, key string) error {
	return os.Remove(filepath.Join(fs.Dir(), filepath.FromSlash(key)))
}

func newFSAt(t testing.TB, dir string) *store.FS {
	t.Helper()
	s, err := store.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
