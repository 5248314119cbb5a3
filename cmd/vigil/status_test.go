package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

func TestPrintStatus(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	ts := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(now.Add(d)) }
	st := &vigilv1.StatusResponse{
		Model: "keystroke-ae", GlobalVersion: 5, CompletedRounds: 4, LastRoundStarted: 6, Version: "v0.0.0 go1.26",
		PendingEnrolments:  2,
		NextRoundNotBefore: ts(40 * time.Second),
		OpenRound:          &vigilv1.OpenRoundStatus{Round: 6, Selected: 3, Submitted: 2, Missing: []string{"d3"}, Started: ts(-5 * time.Second), Deadline: ts(25 * time.Second)},
		LastRound: &vigilv1.LastRoundStatus{Round: 5, Outcome: "failed", Reason: "only 2 of 3 sampled devices answered by the deadline", Selected: 3,
			Participants: 2, Ended: ts(-time.Minute), DurationSeconds: 30},
		Devices: []*vigilv1.DeviceStatus{{Id: "d1", Region: "eu", Enrolled: ts(-time.Hour), LastSeen: ts(-2 * time.Second), Installed: map[string]uint64{"keystroke-ae": 4}},
			{Id: "d2", Region: "eu", Enrolled: ts(-time.Hour)}},
		Installed: []*vigilv1.InstalledCount{{Model: "keystroke-ae", Version: 4, Devices: 1}},
		Removed:   []*vigilv1.RemovedDeviceStatus{{Id: "d4", Removed: ts(-10 * time.Minute), Reason: "revoked at 2026-12-03T09:50:00Z"}},
		Trustees:  []*vigilv1.TrusteeStatus{{Id: "privacy-office", Reachable: true, LastRound: 4, LatencySeconds: 0.003}, {Id: "audit", Problem: "connection refused"}},
		Regions:   []*vigilv1.RegionStatus{{Name: "eu", PublishedVersion: 4, LastSuccess: ts(-time.Minute), Failures: 2, LastError: "disk full"}},
		Privacy:   &vigilv1.PrivacyStatus{DifferentialPrivacy: true, EpsilonSpent: 3.5, EpsilonBudget: 10, EpsilonRemaining: 6.5, Delta: 1e-5},
	}
	var out bytes.Buffer
	if err := printStatus(&out, st, now); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"keystroke-ae v5", "running; 4 completed since start; last started 6; next not before", "(in 40s)",
		"6: 2 of 3 sampled devices answered", "missing: d3",
		"5 failed", "only 2 of 3 sampled devices answered by the deadline",
		"epsilon 3.500 of 10 spent, 6.500 left, at delta 1e-05",
		"2 enrolled, 1 removed, 2 enrolling", "last seen 2s ago",
		"keystroke-ae v4: 1; 1 of 2 devices reported nothing", "runs keystroke-ae v4", "runs nothing reported", "d4", "REMOVED", "revoked at",
		"privacy-office", "ok", "audit", "DOWN: connection refused",
		"eu", "v4", "FAILING (2 in a row): disk full",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
}
