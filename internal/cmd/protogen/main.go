// Command protogen regenerates the Go code of Vigil's gRPC API from proto/.
//
// Run it as `go generate ./proto` from the repository root.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vigilauth/vigil/internal/protogen"
)

func main() {
	root := flag.String("root", ".", "directory holding the .proto import tree; output is written beside each .proto")
	flag.Parse()
	files, err := protogen.Generate(context.Background(), *root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for name, content := range files {
		p := filepath.Join(*root, filepath.FromSlash(name))
		if err := os.WriteFile(p, content, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("wrote", p)
	}
}
