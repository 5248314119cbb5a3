package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/vigilauth/vigil/client/updater"
	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/sim"
)

// TestAgentReportsReleaseCheckRecovery: `vigil agent` printed a
// release check's failure once per process. With the store repaired nothing was said, and a
// second outage with the same message ("connection refused", the same junk pointer) was
// silent. Now the updater's recovery is printed and forgets the failure, so that the next one
// is printed again; repeats of one failure are still said once.
func TestAgentReportsReleaseCheckRecovery(t *testing.T) {
	var out bytes.Buffer
	rep := newReleaseReports(&out, agentReleases{})
	ae, mouse := sim.AutoencoderModel, sim.MousePopulationModel
	down := errors.New("updater: poll: release: fetch releases/keystroke-ae/latest.json: connection refused")
	none := fmt.Errorf("release: fetch releases/%s/latest.json: %w", mouse, release.ErrNoRelease)
	recovered := func(v uint64) updater.Event { return updater.Event{Kind: updater.Recovered, Version: v} }
	for _, r := range []struct {
		model string
		ev    updater.Event
		err   error
	}{
		{ae, updater.Event{}, down},
		{ae, updater.Event{}, down}, // the same failure again: said once
		{ae, recovered(3), nil},
		{ae, updater.Event{}, down}, // the second outage
		{ae, updater.Event{}, down},
		{ae, recovered(3), nil},
		{ae, updater.Event{Kind: updater.Staged, Version: 4}, nil},
		{mouse, updater.Event{}, none},
		{mouse, updater.Event{}, none},
		{mouse, recovered(0), nil}, // the release that ends "no release yet" speaks for itself
		{mouse, updater.Event{Kind: updater.Staged, Version: 1}, nil},
	} {
		rep.report(r.model, r.ev, r.err)
	}
	want := strings.Join([]string{
		"release check of keystroke-ae failed: " + down.Error(),
		"release check of keystroke-ae recovered (running v3)",
		"release check of keystroke-ae failed: " + down.Error(),
		"release check of keystroke-ae recovered (running v3)",
		"release keystroke-ae v4 staged",
		"no release of " + mouse + " in the region store yet",
		"release " + mouse + " v1 staged",
	}, "\n") + "\n"
	if got := out.String(); got != want {
		t.Fatalf("the agent printed\n%s\nwant\n%s", got, want)
	}
}
