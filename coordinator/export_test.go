package coordinator_test

import (
	"os"

	"github.com/vigilauth/vigil/store"
)

func writeFile(path string, b []byte) error { return os.WriteFile(path, b, 0o600) }

func newFS(dir string) (*store.FS, error) { return store.NewFS(dir) }
