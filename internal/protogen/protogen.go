// Package protogen turns Vigil's .proto files into Go with pinned tools only: the .proto files are
// compiled by protocompile (pure Go) and the code is written by protoc-gen-go and
// protoc-gen-go-grpc, both run as `go tool` at the versions go.mod pins. No system protoc is
// needed, so every machine with Go produces byte-identical output.
package protogen

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/pluginpb"
)

// Plugins are the code generators run, as `go tool` names, with their parameters.
var plugins = []struct{ tool, param string }{
	{"protoc-gen-go", "paths=source_relative"},
	{"protoc-gen-go-grpc", "paths=source_relative"},
}

// Generate compiles every .proto file under root and returns the generated Go files, keyed by
// their path relative to root.
func Generate(ctx context.Context, root string) (map[string][]byte, error) {
	var names []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".proto") {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			names = append(names, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("protogen: %w", err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("protogen: no .proto files under %s", root)
	}
	sort.Strings(names)

	c := protocompile.Compiler{
		Resolver:       protocompile.WithStandardImports(&protocompile.SourceResolver{ImportPaths: []string{root}}),
		SourceInfoMode: protocompile.SourceInfoStandard,
	}
	compiled, err := c.Compile(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("protogen: compile: %w", err)
	}
	req := &pluginpb.CodeGeneratorRequest{FileToGenerate: names}
	seen := map[string]bool{}
	for _, f := range compiled {
		addWithDeps(req, f, seen)
	}

	out := map[string][]byte{}
	for _, p := range plugins {
		req.Parameter = proto.String(p.param)
		files, err := run(ctx, root, p.tool, req)
		if err != nil {
			return nil, err
		}
		for name, content := range files {
			out[name] = content
		}
	}
	return out, nil
}

// addWithDeps appends f's dependencies and then f, each once, as CodeGeneratorRequest requires.
func addWithDeps(req *pluginpb.CodeGeneratorRequest, f protoreflect.FileDescriptor, seen map[string]bool) {
	if seen[f.Path()] {
		return
	}
	seen[f.Path()] = true
	imports := f.Imports()
	for i := 0; i < imports.Len(); i++ {
		addWithDeps(req, imports.Get(i).FileDescriptor, seen)
	}
	req.ProtoFile = append(req.ProtoFile, protodesc.ToFileDescriptorProto(f))
}

func run(ctx context.Context, dir, tool string, req *pluginpb.CodeGeneratorRequest) (map[string][]byte, error) {
	in, err := proto.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("protogen: %w", err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "go", "tool", tool)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(in)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("protogen: go tool %s: %w: %s", tool, err, stderr.Bytes())
	}
	var resp pluginpb.CodeGeneratorResponse
	if err := proto.Unmarshal(stdout.Bytes(), &resp); err != nil {
		return nil, fmt.Errorf("protogen: %s response: %w", tool, err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("protogen: %s: %s", tool, resp.GetError())
	}
	files := map[string][]byte{}
	for _, f := range resp.File {
		if f.GetInsertionPoint() != "" {
			return nil, fmt.Errorf("protogen: %s: insertion points are not supported", tool)
		}
		files[f.GetName()] = []byte(f.GetContent())
	}
	return files, nil
}
