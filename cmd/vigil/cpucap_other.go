//go:build !linux

package main

import "errors"

// capCPU needs Linux's control groups.
func capCPU(pid int, name string, cpus float64) (remove func() error, err error) {
	return nil, errors.New("capping a process's CPU needs Linux control groups")
}

func removeCPUCaps(prefix string) {}
