package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKeepVersionsProcesses runs a coordinator process with --keep-versions 2 and a region for
// four rounds of three client processes: the store keeps the parameters of the two newest
// versions and every version's metadata, the region the two newest releases, and a device
// still on the first version verifies the newest release there (vigil release verify
// --installed 1, as a device's updater does).
func TestKeepVersionsProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	orgDir, dir, region := org(t), t.TempDir(), t.TempDir()
	enrolAddr := startAuthority(t, ctx, orgDir)
	args := append([]string{"coordinator", "--org", orgDir, "--dir", dir, "--listen", "127.0.0.1:0", "--metrics-listen", "",
		"--region", "eu=" + region, "--devices-per-round", "3", "--min-updates", "3", "--rounds", "4", "--keep-versions", "2", "--epsilon", "100",
		"--log-level", "info"}, startTrustees(t, ctx, orgDir, 3)...)
	coord, lines, coordErr := startProcess(t, ctx, args...)
	addr := lines.wait(t, "coordinator listening on ")
	go func() {
		for range lines.lines {
		}
	}()
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("d%d", i)
		startProcess(t, ctx, append([]string{"client", "--coordinator", addr, "--device-id", id, "--dir", filepath.Join(t.TempDir(), id),
			"--root", filepath.Join(orgDir, "root.json"), "--synthetic-seed", fmt.Sprint(i), "--log-level", "error"},
			enrolFlags(t, orgDir, enrolAddr, id)...)...)
	}
	if err := coord.Wait(); err != nil {
		t.Fatalf("coordinator: %v\n%s", err, coordErr.String())
	}

	models := filepath.Join(dir, "store", "models", "keystroke-ae")
	var withParams, withMeta []string
	filepath.WalkDir(models, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.Name() == "params.f64":
			withParams = append(withParams, filepath.Base(filepath.Dir(p)))
		case d.Name() == "meta.json":
			withMeta = append(withMeta, filepath.Base(filepath.Dir(p)))
		}
		return nil
	})
	if len(withMeta) != 5 || strings.Join(withParams, ",") != "v0000000004,v0000000005" {
		t.Errorf("store: parameters of %v, metadata of %v; want the parameters of v4 and v5 and the metadata of all five\n%s", withParams, withMeta, coordErr.String())
	}
	manifests, _ := filepath.Glob(filepath.Join(region, "releases", "keystroke-ae", "*", "manifest.json"))
	var released []string
	for _, m := range manifests {
		released = append(released, filepath.Base(filepath.Dir(m)))
	}
	if strings.Join(released, ",") != "4,5" {
		t.Errorf("region holds releases %v, want 4 and 5", released)
	}
	if _, err := os.Stat(filepath.Join(region, "releases", "keystroke-ae", "1")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a pruned release left its directory behind: %v", err)
	}
	if !strings.Contains(coordErr.String(), "old releases deleted") || !strings.Contains(coordErr.String(), "old model versions pruned") {
		t.Errorf("the coordinator's log does not say what it pruned:\n%s", coordErr.String())
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"release", "verify", "--root", filepath.Join(orgDir, "root.json"), "--model", "keystroke-ae",
		"--installed", "1", region}, &out, &out); err != nil || !strings.Contains(out.String(), "5") {
		t.Errorf("a device on v1 after pruning: %v\n%s", err, out.String())
	}
}
