package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cgroupRoot is where the kernel's control groups are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// capCPU moves process pid into a control group of its own, named name, that may use at most
// cpus of one CPU, and returns the function that removes the group once the process has exited.
// It takes the cpu controller of cgroup v1 where it is mounted and v2's otherwise, and needs
// the right to write there (root, usually).
func capCPU(pid int, name string, cpus float64) (remove func(), err error) {
	const period = 100_000 // microseconds
	quota := strconv.Itoa(int(cpus * period))
	var dir string
	var files [][2]string
	if v1 := filepath.Join(cgroupRoot, "cpu"); exists(filepath.Join(v1, "cpu.cfs_quota_us")) {
		dir = filepath.Join(v1, name)
		files = [][2]string{{"cpu.cfs_period_us", strconv.Itoa(period)}, {"cpu.cfs_quota_us", quota}}
	} else if c, err := os.ReadFile(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil && strings.Contains(" "+strings.TrimSpace(string(c))+" ", " cpu ") {
		if err := os.WriteFile(filepath.Join(cgroupRoot, "cgroup.subtree_control"), []byte("+cpu"), 0o644); err != nil {
			return nil, fmt.Errorf("cgroup v2: enable the cpu controller: %w", err)
		}
		dir = filepath.Join(cgroupRoot, name)
		files = [][2]string{{"cpu.max", quota + " " + strconv.Itoa(period)}}
	} else {
		return nil, fmt.Errorf("no cgroup cpu controller under %s", cgroupRoot)
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	remove = func() { os.Remove(dir) }
	for _, f := range append(files, [2]string{"cgroup.procs", strconv.Itoa(pid)}) {
		if err := os.WriteFile(filepath.Join(dir, f[0]), []byte(f[1]), 0o644); err != nil {
			remove()
			return nil, fmt.Errorf("cgroup: %w", err)
		}
	}
	return remove, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
