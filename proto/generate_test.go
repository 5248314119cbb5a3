package proto

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigilauth/vigil/internal/protogen"
)

// TestGeneratedCodeIsFresh fails when the committed Go code differs from what the .proto files
// generate, so that an edit to the API cannot land without `go generate ./proto`.
func TestGeneratedCodeIsFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the pinned code generators; skipped in -short mode")
	}
	files, err := protogen.Generate(context.Background(), ".")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("generator produced no files")
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.FromSlash(name))
		if err != nil {
			t.Errorf("%s: %v (run `go generate ./proto`)", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run `go generate ./proto`", name)
		}
	}
	committed, _ := filepath.Glob("vigil/v1/*.pb.go")
	for _, name := range committed {
		if _, ok := files[filepath.ToSlash(name)]; !ok {
			t.Errorf("%s is not produced by any .proto file: delete it", name)
		}
	}
}
