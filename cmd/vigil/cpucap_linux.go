package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// cgroupRoot is where the kernel's control groups are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// cpuController returns the directory under which control groups with a CPU quota are made:
// cgroup v1's cpu hierarchy where it is mounted, v2's root otherwise (its cpu controller
// enabled for the groups under it).
func cpuController() (dir string, v1 bool, err error) {
	if v1 := filepath.Join(cgroupRoot, "cpu"); fileExists(filepath.Join(v1, "cpu.cfs_quota_us")) {
		return v1, true, nil
	}
	c, err := os.ReadFile(filepath.Join(cgroupRoot, "cgroup.controllers"))
	if err != nil || !strings.Contains(" "+strings.TrimSpace(string(c))+" ", " cpu ") {
		return "", false, fmt.Errorf("no cgroup cpu controller under %s", cgroupRoot)
	}
	switch err := os.WriteFile(filepath.Join(cgroupRoot, "cgroup.subtree_control"), []byte("+cpu"), 0o644); {
	case errors.Is(err, syscall.EBUSY):
		// cgroup v2 enables a controller for the groups below only where no process is: the
		// root of a container's cgroup namespace holds the container's own.
		return "", false, fmt.Errorf("cgroup v2: %s holds processes (a container?), so its groups cannot get the cpu controller: run the load test in a group of its own with the controller delegated, e.g. systemd-run --scope -p Delegate=yes", cgroupRoot)
	case err != nil:
		return "", false, fmt.Errorf("cgroup v2: enable the cpu controller: %w", err)
	}
	return cgroupRoot, false, nil
}

// capCPU moves process pid into a control group of its own, named name, that may use at most
// cpus of one CPU, and returns the function that removes the group once the process has
// exited. It needs the right to write to the control groups (root, usually).
func capCPU(pid int, name string, cpus float64) (remove func() error, err error) {
	const period = 100_000 // microseconds
	root, v1, err := cpuController()
	if err != nil {
		return nil, err
	}
	quota := strconv.Itoa(int(math.Round(cpus * period)))
	files := [][2]string{{"cpu.max", quota + " " + strconv.Itoa(period)}}
	if v1 {
		files = [][2]string{{"cpu.cfs_period_us", strconv.Itoa(period)}, {"cpu.cfs_quota_us", quota}}
	}
	dir := filepath.Join(root, name)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	remove = func() error { return os.Remove(dir) }
	for _, f := range append(files, [2]string{"cgroup.procs", strconv.Itoa(pid)}) {
		if err := os.WriteFile(filepath.Join(dir, f[0]), []byte(f[1]), 0o644); err != nil {
			remove()
			return nil, fmt.Errorf("cgroup: %w", err)
		}
	}
	return remove, nil
}

// removeCPUCaps removes the control groups named prefix* that no process is in any more: those
// of a run killed before it removed its own. A group still in use stays (rmdir refuses it).
func removeCPUCaps(prefix string) {
	root, _, err := cpuController()
	if err != nil {
		return
	}
	dirs, _ := filepath.Glob(filepath.Join(root, prefix+"*"))
	for _, dir := range dirs {
		os.Remove(dir)
	}
}
