package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCapCPU moves a process into a control group of its own with the quota asked for, and
// removes the group once the process has exited; removeCPUCaps removes a killed run's groups.
// It needs a writable cgroup cpu controller (root, outside most containers' restrictions),
// and says so when there is none.
func TestCapCPU(t *testing.T) {
	root, v1, err := cpuController()
	if err == nil {
		probe := filepath.Join(root, fmt.Sprintf("vigil-test-probe-%d", os.Getpid()))
		if err = os.Mkdir(probe, 0o755); err == nil {
			os.Remove(probe)
		}
	}
	if err != nil {
		t.Skipf("no control group to cap a process in here (loadtest --frontend-cpu needs one): %v", err)
	}
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	name := fmt.Sprintf("vigil-test-cap-%d", cmd.Process.Pid)
	dir := filepath.Join(root, name)
	t.Cleanup(func() { os.Remove(dir) })
	remove, err := capCPU(cmd.Process.Pid, name, 0.29)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(groups), "/"+name+"\n") {
		t.Fatalf("the process's control groups do not name %s:\n%s", name, groups)
	}
	quota, want := filepath.Join(dir, "cpu.max"), "29000 100000"
	if v1 {
		quota, want = filepath.Join(dir, "cpu.cfs_quota_us"), "29000"
	}
	if got, err := os.ReadFile(quota); err != nil || strings.TrimSpace(string(got)) != want {
		t.Fatalf("%s holds %q (%v), want %q", quota, got, err, want)
	}
	removeCPUCaps("vigil-test-cap-")
	if !fileExists(dir) {
		t.Fatal("removeCPUCaps removed the group of a process still in it")
	}
	cmd.Process.Kill()
	cmd.Wait()
	if err := remove(); err != nil {
		t.Fatalf("remove the group once the process exited: %v", err)
	}

	// A group a killed run left behind.
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	removeCPUCaps("vigil-test-cap-")
	if fileExists(dir) {
		t.Fatalf("%s, which no process is in, is still there", dir)
	}
}
