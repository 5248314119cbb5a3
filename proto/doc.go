// Package proto holds Vigil's gRPC API: the .proto sources under vigil/v1 and the Go code
// generated from them (package vigilv1). The generated code is committed; regenerate it with
//
//	go generate ./proto
//
// which uses only the tool versions pinned in go.mod (see internal/protogen).
package proto

//go:generate go run ../internal/cmd/protogen -root .
