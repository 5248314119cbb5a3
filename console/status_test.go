package console

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// liveStatus is what the Admin API of a coordinator in trouble answers: a round open with a
// missing device, the last round failed, a trustee down, a region failing, a device removed,
// and a device name that is markup.
func liveStatus() *vigilv1.StatusResponse {
	at := timestamppb.New(time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC))
	return &vigilv1.StatusResponse{
		Model: "keystroke-ae", GlobalVersion: 7, CompletedRounds: 6, LastRoundStarted: 9,
		OpenRound: &vigilv1.OpenRoundStatus{Round: 9, BaseVersion: 7, Started: at, Deadline: at, Selected: 3, Submitted: 2, Missing: []string{"device-003"}},
		LastRound: &vigilv1.LastRoundStatus{Round: 8, Outcome: "failed", Reason: "only 1 of 2 trustees answered", Selected: 3, Participants: 3, Ended: at, DurationSeconds: 1.5},
		Devices: []*vigilv1.DeviceStatus{{Id: "device-001", Region: "eu", Enrolled: at, LastSeen: at, Installed: map[string]uint64{"keystroke-ae": 7}},
			{Id: "device-002", Region: "us", Enrolled: at, LastSeen: at, Installed: map[string]uint64{"keystroke-pop": 2, "keystroke-ae": 6}},
			{Id: "<b>x</b>", Region: "us", Enrolled: at}},
		Installed: []*vigilv1.InstalledCount{{Model: "keystroke-ae", Version: 6, Devices: 1}, {Model: "keystroke-ae", Version: 7, Devices: 1},
			{Model: "keystroke-pop", Version: 2, Devices: 1}},
		Removed: []*vigilv1.RemovedDeviceStatus{{Id: "device-009", Removed: at, Reason: "stolen"}},
		Trustees: []*vigilv1.TrusteeStatus{{Id: "audit", Reachable: true, LastRound: 8, LatencySeconds: 0.012},
			{Id: "security", Problem: "connection refused"}},
		Regions: []*vigilv1.RegionStatus{{Name: "eu", PublishedVersion: 7, LastSuccess: at}, {Name: "us", PublishedVersion: 6, Failures: 2, LastError: "disk full"},
			{Name: "ap", PublishedVersion: 8, LastSuccess: at}},
		RecentRounds: []*vigilv1.LastRoundStatus{
			{Round: 8, Outcome: "failed", Selected: 3, Participants: 3, Ended: at, DurationSeconds: 1.5, Stages: []*vigilv1.RoundStage{
				{Name: "collecting updates", Seconds: 1.2}, {Name: "until the failure", Seconds: 0.3}}},
			{Round: 7, Outcome: "completed", Selected: 3, Participants: 2, Version: 7, Ended: at, DurationSeconds: 2, Stages: []*vigilv1.RoundStage{
				{Name: "collecting updates", Seconds: 1}, {Name: "trustees committing", Seconds: 0.25}, {Name: "decryption", Seconds: 0.125},
				{Name: "charging and storing", Seconds: 0.5}, {Name: "publishing", Seconds: 0.125}}},
		},
	}
}

// TestConsoleStatusPages checks the rounds, trustees, releases and devices pages against a live
// status, a partial one (a state directory), a failing source and none.
func TestConsoleStatusPages(t *testing.T) {
	logPath, v := testLog(t)
	live := func(context.Context) (*vigilv1.StatusResponse, error) { return liveStatus(), nil }
	partial := func(context.Context) (*vigilv1.StatusResponse, error) {
		return &vigilv1.StatusResponse{Model: "keystroke-ae", LastRoundStarted: 2, Devices: []*vigilv1.DeviceStatus{{Id: "device-001", Region: "eu"}}}, nil
	}
	failing := func(context.Context) (*vigilv1.StatusResponse, error) { return nil, errors.New("connection refused") }
	tests := []struct {
		name    string
		status  StatusFunc
		partial bool
		release func(context.Context) (string, error)
		target  string
		wants   []string
		refuses []string
	}{
		{"rounds", live, false, nil, "/rounds", []string{"Last round started: 9; 6 completed", "device-003", "only 1 of 2 trustees answered", `class="deny"`, "1.5s",
			"<th>collecting updates</th><th>trustees committing</th><th>decryption</th><th>charging and storing</th><th>publishing</th><th>until the failure</th>",
			"<td>1.2s</td><td>-</td><td>-</td><td>-</td><td>-</td><td>300ms</td>", "<td>1s</td><td>250ms</td><td>125ms</td><td>500ms</td><td>125ms</td><td>-</td>",
			"<td>2 of 3</td>"}, nil},
		{"trustees", live, false, nil, "/trustees", []string{"<td>audit</td>\n<td>up</td>", "down: connection refused", "12ms"}, nil},
		{"releases", live, false, nil, "/releases", []string{"<td>eu</td><td>v7</td>", "disk full",
			"<td>keystroke-ae</td><td>devices running v6: 1</td><td>us</td>", "<td>keystroke-ae</td><td>devices running v7: 1</td><td>eu</td>",
			"<td>keystroke-pop</td><td>devices running v2: 1</td><td>-</td>", "<td>keystroke-ae</td><td>devices running v8: 0</td><td>ap</td>", "1 enrolled devices reported no installed release",
			"Shadow-scoring results stay on the devices", "no privacy accountant covers them"}, nil},
		{"devices", live, false, nil, "/devices", []string{"3 enrolled, 1 removed", "device-001", "&lt;b&gt;x&lt;/b&gt;", "stolen", "not since the coordinator started",
			"<td>keystroke-ae v6, keystroke-pop v2</td>", "<td>keystroke-ae v7</td>", "<td>not reported</td>"}, []string{"<b>x</b>"}},
		{"partial releases", partial, true, nil, "/releases", []string{"Unknown: devices report the release they run", "Shadow-scoring results stay on the devices"}, []string{"devices running v"}},
		{"partial rounds", partial, true, nil, "/rounds", []string{"Last round started: 2.", "Unknown: a state directory does not keep it"}, []string{"completed since"}},
		{"partial devices", partial, true, nil, "/devices", []string{"unknown (state directory)"}, nil},
		{"partial trustees", partial, true, nil, "/trustees", []string{"needs the Admin API"}, nil},
		{"release check", live, false, func(context.Context) (string, error) { return "  OK   eu root <v1>\n", nil }, "/releases",
			[]string{"Everything verifies", "OK   eu root &lt;v1&gt;"}, nil},
		{"release check fails", live, false, func(context.Context) (string, error) { return "  FAIL pointer expired\n", errors.New("1 problem(s)") }, "/releases",
			[]string{`<p class="bad">1 problem(s)</p>`, "FAIL pointer expired"}, []string{"Everything verifies"}},
		{"failing source", failing, false, nil, "/releases", []string{"could not be read: connection refused"}, nil},
		{"no source", nil, false, nil, "/devices", []string{"no coordinator given"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := New(Config{LogPath: logPath, Verifier: v, Status: tc.status, StatusSource: "test", StatusPartial: tc.partial, ReleaseStatus: tc.release})
			if err != nil {
				t.Fatal(err)
			}
			resp, body := get(t, h, "GET", tc.target)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d\n%s", resp.StatusCode, body)
			}
			for _, w := range tc.wants {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q\n%s", w, body)
				}
			}
			for _, r := range tc.refuses {
				if strings.Contains(body, r) {
					t.Errorf("page shows %q", r)
				}
			}
		})
	}
}

// TestConsolePrivacyReportDownload: the privacy page offers the signed report only when one can
// be built, and the download is one tar holding the page and its signature.
func TestConsolePrivacyReportDownload(t *testing.T) {
	logPath, v := testLog(t)
	without, err := New(Config{LogPath: logPath, Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	if _, body := get(t, without, "GET", "/privacy"); strings.Contains(body, "/privacy/report") {
		t.Error("download offered without a report")
	}
	if resp, _ := get(t, without, "GET", "/privacy/report"); resp.StatusCode != 404 {
		t.Errorf("report without a builder: %d", resp.StatusCode)
	}
	with, err := New(Config{LogPath: logPath, Verifier: v, PrivacyReport: func(context.Context) ([]byte, []byte, error) {
		return []byte("<html>report</html>"), []byte("signature"), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, body := get(t, with, "GET", "/privacy"); !strings.Contains(body, `href="/privacy/report"`) {
		t.Errorf("no download offered:\n%s", body)
	}
	resp, body := get(t, with, "GET", "/privacy/report")
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Disposition"), "privacy-report.tar") {
		t.Fatalf("download: %d %v", resp.StatusCode, resp.Header)
	}
	files := map[string]string{}
	tr := tar.NewReader(strings.NewReader(body))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		files[h.Name] = string(data)
	}
	if files["privacy-report.html"] != "<html>report</html>" || files["privacy-report.html.sig"] != "signature" {
		t.Errorf("tar holds %q", files)
	}
}
