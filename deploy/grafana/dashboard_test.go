package grafana

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// metric is one Prometheus metric the code registers.
type metric struct {
	kind   string // Counter, Gauge, Histogram, Summary
	labels []string
	file   string
	// name matches the metric's names when the code builds them ("vigil_rpc_" + side +
	// "_duration_seconds"); nil for a literal name.
	name *regexp.Regexp
}

// optsPattern finds a metric's options and, for a vector, its label names:
// prometheus.CounterOpts{Name: "vigil_x", ...}, []string{"a", "b"}. The name may be built
// from literals and variables: "vigil_rpc_" + side + "_duration_seconds".
var optsPattern = regexp.MustCompile(`(Counter|Gauge|Histogram|Summary)Opts\{[^}]*?Name:\s*("vigil_[a-z0-9_]*"(?:\s*\+\s*(?:[A-Za-z_]\w*|"[a-z0-9_]*"))*)[^}]*\}(?:,\s*\[\]string\{([^}]*)\})?`)

// nameOf turns a name expression into the metric's name, or for a built name into a display
// form with * for each variable and a pattern matching the names it can take.
func nameOf(expr string) (string, *regexp.Regexp) {
	var display, pattern strings.Builder
	built := false
	for _, part := range strings.Split(expr, "+") {
		part = strings.TrimSpace(part)
		if strings.HasPrefix(part, `"`) {
			lit := strings.Trim(part, `"`)
			display.WriteString(lit)
			pattern.WriteString(regexp.QuoteMeta(lit))
			continue
		}
		built = true
		display.WriteString("*")
		pattern.WriteString(`[a-z0-9_]+`)
	}
	if !built {
		return display.String(), nil
	}
	return display.String(), regexp.MustCompile("^" + pattern.String() + "$")
}

// codeMetrics scans the module's Go code (tests excluded) for the metrics it registers.
func codeMetrics(t *testing.T) map[string]metric {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not at %s: %v", root, err)
	}
	found := map[string]metric{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range optsPattern.FindAllStringSubmatch(string(src), -1) {
			var labels []string
			for _, l := range strings.Split(m[3], ",") {
				if l = strings.Trim(strings.TrimSpace(l), `"`); l != "" {
					labels = append(labels, l)
				}
			}
			name, re := nameOf(m[2])
			found[name] = metric{kind: m[1], labels: labels, file: path, name: re}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

type panel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Panels []panel `json:"panels"`
}

type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
}

var (
	vigilName = regexp.MustCompile(`\bvigil_[a-z0-9_]+`)
	byClause  = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	selector  = regexp.MustCompile(`(vigil_[a-z0-9_]+)\{([^}]*)\}`)
	matcher   = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
)

// TestDashboardMatchesCode parses vigil.json and checks every panel's queries against the
// metrics the code registers: each names at least one, every name exists (a histogram's
// _bucket, _sum and _count series included), and every label it groups or filters by is one
// the metric has.
func TestDashboardMatchesCode(t *testing.T) {
	data, err := os.ReadFile("vigil.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("vigil.json: %v", err)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion == 0 || len(d.Panels) == 0 {
		t.Fatalf("vigil.json: uid %q, title %q, schemaVersion %d, %d panels", d.UID, d.Title, d.SchemaVersion, len(d.Panels))
	}
	code := codeMetrics(t)
	if len(code) == 0 {
		t.Fatal("found no vigil_ metrics in the code")
	}
	used := map[string]bool{}
	ids := map[int]bool{}
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel %q: id %d used twice", p.Title, p.ID)
			}
			ids[p.ID] = true
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q does not use the dashboard's datasource variable", p.Title)
			}
			for _, tg := range p.Targets {
				for _, problem := range checkExpr(tg.Expr, code, used) {
					t.Errorf("panel %q: %s", p.Title, problem)
				}
			}
		}
	}
	walk(d.Panels)
	// A metric the code registers but no panel shows is reported, not failed: whoever adds a
	// metric is not made to edit the dashboard in the same commit.
	for name, m := range code {
		if !used[name] {
			t.Logf("note: metric %s (%s) is on no panel of vigil.json", name, m.file)
		}
	}
}

// checkExpr returns what is wrong with one query, and marks the metrics it uses.
func checkExpr(expr string, code map[string]metric, used map[string]bool) []string {
	names := vigilName.FindAllString(expr, -1)
	if len(names) == 0 {
		return []string{fmt.Sprintf("query %q names no vigil_ metric", expr)}
	}
	var problems, labels []string
	for _, n := range names {
		base, m, ok := lookup(n, code)
		if !ok {
			problems = append(problems, n+" is not a metric the code registers")
			continue
		}
		used[base] = true
		labels = append(labels, m.labels...)
		if m.kind == "Histogram" {
			labels = append(labels, "le")
		}
	}
	labels = append(labels, "instance", "job") // added by Prometheus to every series
	for _, s := range selector.FindAllStringSubmatch(expr, -1) {
		for _, l := range matcher.FindAllStringSubmatch(s[2], -1) {
			if !slices.Contains(labels, l[1]) {
				problems = append(problems, fmt.Sprintf("%s has no label %q", s[1], l[1]))
			}
		}
	}
	for _, b := range byClause.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(b[1], ",") {
			if l = strings.TrimSpace(l); l != "" && !slices.Contains(labels, l) {
				problems = append(problems, fmt.Sprintf("groups by %q, which %v do not have", l, names))
			}
		}
	}
	return problems
}

// lookup finds the metric a series name belongs to: itself, or a histogram or summary whose
// _bucket, _sum or _count series it is.
func lookup(name string, code map[string]metric) (string, metric, bool) {
	find := func(n string) (string, metric, bool) {
		if m, ok := code[n]; ok && m.name == nil {
			return n, m, true
		}
		for key, m := range code {
			if m.name != nil && m.name.MatchString(n) {
				return key, m, true
			}
		}
		return "", metric{}, false
	}
	if key, m, ok := find(name); ok {
		return key, m, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base := strings.TrimSuffix(name, suffix)
		if key, m, ok := find(base); ok && base != name && (m.kind == "Histogram" || m.kind == "Summary" && suffix != "_bucket") {
			return key, m, true
		}
	}
	return "", metric{}, false
}

// TestDashboardCheckCatchesDrift makes sure the check above fails for a renamed metric and a
// label the metric does not have.
func TestDashboardCheckCatchesDrift(t *testing.T) {
	rpcName, rpcPattern := nameOf(`"vigil_rpc_" + side + "_duration_seconds"`)
	code := map[string]metric{
		"vigil_rounds_total":           {kind: "Counter", labels: []string{"result"}},
		"vigil_round_duration_seconds": {kind: "Histogram"},
		rpcName:                        {kind: "Histogram", labels: []string{"method"}, name: rpcPattern},
	}
	tests := []struct {
		expr string
		ok   bool
	}{
		{`sum by (result) (rate(vigil_rounds_total[5m]))`, true},
		{`histogram_quantile(0.9, sum by (le) (rate(vigil_round_duration_seconds_bucket[5m])))`, true},
		{`rate(vigil_round_total[5m])`, false},
		{`sum by (reason) (rate(vigil_rounds_total[5m]))`, false},
		{`rate(vigil_rounds_total{sink="hec"}[5m])`, false},
		{`rate(vigil_rounds_total_bucket[5m])`, false},
		{`up`, false},
		{`histogram_quantile(0.99, sum by (le, method) (rate(vigil_rpc_server_duration_seconds_bucket[5m])))`, true},
		{`rate(vigil_rpc_server_refused_total[5m])`, false},
	}
	for _, tc := range tests {
		problems := checkExpr(tc.expr, code, map[string]bool{})
		if (len(problems) == 0) != tc.ok {
			t.Errorf("%s: problems %q, want ok = %v", tc.expr, problems, tc.ok)
		}
	}
}
