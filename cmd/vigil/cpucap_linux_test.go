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
// removes the group once the process has exited. It needs a writable cgroup cpu controller
// (root, outside most containers' restrictions), and says so when there is none.
func TestCapCPU(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	name := fmt.Sprintf("vigil-test-cap-%d", cmd.Process.Pid)
	remove, err := capCPU(cmd.Process.Pid, name, 0.25)
	if err != nil {
		t.Skipf("no control group to cap a process in here (loadtest --frontend-cpu needs one): %v", err)
	}
	groups, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(groups), "/"+name+"\n") {
		t.Fatalf("the process's control groups do not name %s:\n%s", name, groups)
	}
	quota, v1 := filepath.Join(cgroupRoot, "cpu", name, "cpu.cfs_quota_us"), true
	if !exists(quota) {
		quota, v1 = filepath.Join(cgroupRoot, name, "cpu.max"), false
	}
	got, err := os.ReadFile(quota)
	if err != nil {
		t.Fatal(err)
	}
	want := map[bool]string{true: "25000", false: "25000 100000"}[v1]
	if strings.TrimSpace(string(got)) != want {
		t.Fatalf("%s holds %q, want %q", quota, got, want)
	}
	cmd.Process.Kill()
	cmd.Wait()
	remove()
	if exists(filepath.Dir(quota)) {
		t.Fatalf("%s is still there after the process exited", filepath.Dir(quota))
	}
}
