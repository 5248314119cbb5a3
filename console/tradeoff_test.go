package console

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/vigilauth/vigil/dp"
)

// tradeoffFile is what vigil privacy tradeoff --json writes (with mouse AUC added, which the
// page plots when present), with the README's measured keystroke figures.
const tradeoffFile = `{
  "eval": "privacy tradeoff (keystrokes)", "data": "aalto-keystrokes", "users": 500, "seed": 1, "protocol": "p", "png": "",
  "alone": {"eer_mean": 0.0702, "eer_mean_ci95": {"lo": 0.065, "hi": 0.075}, "eer_pooled": 0.0951, "eer_pooled_ci95": {"lo": 0.09, "hi": 0.1}},
  "rows": [
    {"epsilon": "inf", "delta": 1e-5, "eer_mean": 0.0391, "eer_mean_ci95": {"lo": 0.035, "hi": 0.043}, "eer_pooled": 0.0512, "eer_pooled_ci95": {"lo": 0.047, "hi": 0.055},
     "auc": 0.895, "auc_ci95": {"lo": 0.87, "hi": 0.92}, "far": 0.05, "frr": 0.055, "private_rounds": {"epsilon_spent": "inf"}},
    {"epsilon": 1, "delta": 1e-5, "eer_mean": 0.1155, "eer_mean_ci95": {"lo": 0.11, "hi": 0.121}, "eer_pooled": 0.1281, "eer_pooled_ci95": {"lo": 0.122, "hi": 0.134},
     "auc": 0.78, "auc_ci95": {"lo": 0.74, "hi": 0.81}, "far": 0.1, "frr": 0.12},
    {"epsilon": 2, "delta": 1e-5, "eer_mean": 0.0715, "eer_mean_ci95": {"lo": 0.067, "hi": 0.076}, "eer_pooled": 0.0844, "eer_pooled_ci95": {"lo": 0.08, "hi": 0.089},
     "auc": 0.82, "auc_ci95": {"lo": 0.79, "hi": 0.85}, "far": 0.07, "frr": 0.08},
    {"epsilon": 4, "delta": 1e-5, "eer_mean": 0.0557, "eer_mean_ci95": {"lo": 0.051, "hi": 0.0605}, "eer_pooled": 0.0678, "eer_pooled_ci95": {"lo": 0.063, "hi": 0.072},
     "auc": 0.85, "auc_ci95": {"lo": 0.82, "hi": 0.88}, "far": 0.06, "frr": 0.07},
    {"epsilon": 8, "delta": 1e-5, "eer_mean": 0.0445, "eer_mean_ci95": {"lo": 0.0405, "hi": 0.0482}, "eer_pooled": 0.0588, "eer_pooled_ci95": {"lo": 0.0544, "hi": 0.063},
     "auc": 0.864, "auc_ci95": {"lo": 0.833, "hi": 0.893}, "far": 0.056, "frr": 0.062}
  ]
}`

// TestTradeoffPage: the privacy page plots accuracy against epsilon as SVG with a tooltip per
// point giving its value and interval, marks the ledger's epsilon spent and budget, holds the
// same numbers in a table, and switches metric by a plain link.
func TestTradeoffPage(t *testing.T) {
	logPath, v := testLog(t)
	dir := t.TempDir()
	ledger := filepath.Join(dir, "model.ledger")
	l, err := dp.OpenLedger(ledger, "keystroke-ae", dp.Budget{Epsilon: 8, Delta: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.ChargeRound(dp.RoundCharge{Round: 1, Event: dp.Event{SamplingRate: 0.5, NoiseMultiplier: 2, Steps: 1}, ClipNorm: 1, MinParticipants: 3, Participants: 5}); err != nil {
		t.Fatal(err)
	}
	snap, err := dp.ReadLedger(ledger)
	if err != nil {
		t.Fatal(err)
	}
	spent, _ := snap.Spent()
	path := filepath.Join(dir, "tradeoff.json")
	os.WriteFile(path, []byte(tradeoffFile), 0o600)
	h, err := New(Config{LogPath: logPath, Verifier: v, Ledgers: []string{ledger}, Tradeoff: path})
	if err != nil {
		t.Fatal(err)
	}

	_, body := get(t, h, "GET", "/privacy")
	for _, w := range []string{
		`<svg xmlns="http://www.w3.org/2000/svg"`, `role="img"`, "mean per-user EER and pooled EER against the privacy budget",
		"<title>mean per-user EER at epsilon 4: 5.57% (95% interval 5.10% to 6.05%) at delta 1e-05</title>",
		"<title>pooled EER at epsilon 8: 5.88% (95% interval 5.44% to 6.30%) at delta 1e-05</title>",
		"<title>mean per-user EER at epsilon ∞: 3.91% (95% interval 3.50% to 4.30%); no noise, not a privacy guarantee</title>",
		fmt.Sprintf("<title>keystroke-ae has spent epsilon %.4g of its budget 8 at delta 1e-05 in 1 rounds", spent),
		"keystroke-ae budget: 8", "∞ (no noise)", "each device alone",
		// The table: every value with its interval, the budget's row marked.
		`<td>5.57%<span class="ci">[5.10%, 6.05%]</span></td><td>6.78%<span class="ci">[6.30%, 7.20%]</span></td>`,
		`<td>0.864<span class="ci">[0.833, 0.893]</span></td>`, `<tr class="current"><td>8<span class="ci">a ledger's budget</span></td>`, `<td>each device alone</td><td>7.02%<span class="ci">[6.50%, 7.50%]</span></td>`,
		`<a href="/privacy?metric=eer#tradeoff" class="current" aria-current="true">`, `<a href="/privacy?metric=auc#tradeoff">mouse AUC</a>`,
	} {
		if !strings.Contains(body, w) {
			t.Errorf("privacy page lacks %q", w)
		}
	}
	svg := regexp.MustCompile(`(?s)<svg .*</svg>`).FindString(body)
	if err := xml.Unmarshal([]byte(svg), new(struct{})); err != nil {
		t.Errorf("the plot is not well-formed SVG: %v\n%s", err, svg)
	}
	// CSP allows no inline style and no script: the plot uses neither.
	for _, bad := range []string{"style=", "<script", "<style"} {
		if strings.Contains(body, bad) {
			t.Errorf("privacy page holds %q, which the Content-Security-Policy refuses", bad)
		}
	}
	// Geometry: epsilon grows to the right, EER upwards; the spent marker lies left of 1.
	pos := func(series, eps string) (x, y float64) {
		m := regexp.MustCompile(`<title>` + series + ` at epsilon ` + eps + `: [^<]*</title>.*?<circle cx="([0-9.]+)" cy="([0-9.]+)"`).FindStringSubmatch(svg)
		if m == nil {
			t.Fatalf("no point of %s at %s", series, eps)
		}
		x, _ = strconv.ParseFloat(m[1], 64)
		y, _ = strconv.ParseFloat(m[2], 64)
		return x, y
	}
	x1, y1 := pos("mean per-user EER", "1")
	x8, y8 := pos("mean per-user EER", "8")
	xi, _ := pos("mean per-user EER", "∞")
	if !(x1 < x8 && x8 < xi) || !(y1 < y8) {
		t.Errorf("points at epsilon 1 (%v, %v), 8 (%v, %v), inf (x %v): want x growing with epsilon and EER 11.55%% above 4.45%%", x1, y1, x8, y8, xi)
	}

	_, body = get(t, h, "GET", "/privacy?metric=auc")
	if !strings.Contains(body, "<title>mouse AUC at epsilon 8: 0.864 (95% interval 0.833 to 0.893) at delta 1e-05</title>") ||
		strings.Contains(body, "<title>pooled EER at") || !strings.Contains(body, `<a href="/privacy?metric=auc#tradeoff" class="current"`) {
		t.Errorf("?metric=auc does not plot the AUC alone:\n%s", body)
	}
	_, body = get(t, h, "GET", "/privacy?metric=eer-pooled")
	if strings.Contains(body, "<title>mean per-user EER at") || !strings.Contains(body, "<title>pooled EER at epsilon 2:") {
		t.Errorf("?metric=eer-pooled does not plot the pooled EER alone")
	}
	_, body = get(t, h, "GET", "/privacy?metric=%3Cscript%3E")
	if strings.Contains(body, "<script>") || !strings.Contains(body, "<title>pooled EER at epsilon 2:") {
		t.Errorf("an unknown metric is not the default plot")
	}

	// Without AUC, the switch does not offer it; a broken file says why and plots nothing.
	noAUC := regexp.MustCompile(`"auc": [0-9.]+, "auc_ci95": \{[^}]*\}, `).ReplaceAllString(tradeoffFile, "")
	os.WriteFile(path, []byte(noAUC), 0o600)
	if _, body = get(t, h, "GET", "/privacy?metric=auc"); strings.Contains(body, "metric=auc") || strings.Contains(body, "mouse AUC at") ||
		!strings.Contains(body, "<title>mean per-user EER at epsilon 2:") {
		t.Errorf("without AUC in the file the page still offers or plots it")
	}
	os.WriteFile(path, []byte(`{"rows": []}`), 0o600)
	if _, body = get(t, h, "GET", "/privacy"); !strings.Contains(body, "cannot be shown") || strings.Contains(body, "<svg") {
		t.Errorf("an empty trade-off is not refused:\n%s", body)
	}
}

func TestParseTradeoffRefuses(t *testing.T) {
	row := `{"epsilon": %s, "eer_mean": %s, "eer_mean_ci95": {"lo": 0.01, "hi": 0.2}, "eer_pooled": 0.1, "eer_pooled_ci95": {"lo": %s, "hi": 0.2}%s}`
	for name, data := range map[string]string{
		"not JSON":          "rows: 1",
		"no rows":           `{"rows": []}`,
		"epsilon 0":         `{"rows": [` + fmt.Sprintf(row, "0", "0.1", "0.01", "") + `]}`,
		"epsilon text":      `{"rows": [` + fmt.Sprintf(row, `"lots"`, "0.1", "0.01", "") + `]}`,
		"epsilon twice":     `{"rows": [` + fmt.Sprintf(row, "2", "0.1", "0.01", "") + "," + fmt.Sprintf(row, "2", "0.1", "0.01", "") + `]}`,
		"EER above 1":       `{"rows": [` + fmt.Sprintf(row, "2", "1.5", "0.01", "") + `]}`,
		"inverted interval": `{"rows": [` + fmt.Sprintf(row, "2", "0.1", "0.3", "") + `]}`,
		"AUC in some rows":  `{"rows": [` + fmt.Sprintf(row, "2", "0.1", "0.01", `, "auc": 0.8`) + "," + fmt.Sprintf(row, "4", "0.1", "0.01", "") + `]}`,
		"too many rows":     `{"rows": [` + strings.Repeat(fmt.Sprintf(row, "2", "0.1", "0.01", "")+",", MaxTradeoffRows) + fmt.Sprintf(row, "3", "0.1", "0.01", "") + `]}`,
	} {
		if _, err := ParseTradeoff([]byte(data)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	if _, err := ParseTradeoff([]byte(tradeoffFile)); err != nil {
		t.Errorf("the good file: %v", err)
	}
	big := filepath.Join(t.TempDir(), "big.json")
	os.WriteFile(big, make([]byte, MaxTradeoffBytes+1), 0o600)
	if _, err := ReadTradeoff(big); err == nil || !strings.Contains(err.Error(), "larger") {
		t.Errorf("a file over the limit: %v", err)
	}
}
