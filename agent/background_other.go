//go:build !linux

package agent

// inBackground runs fn: only Linux gives a thread a priority of its own.
func inBackground[T any](fn func() (T, error)) (T, error) { return fn() }
