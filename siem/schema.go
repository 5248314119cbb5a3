package siem

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ClassRules are what the OCSF schema requires of one event class: the attributes it marks
// required (dotted paths into the event, objects included), the groups of which at least one
// must be present, and the activity IDs it defines.
type ClassRules struct {
	ClassUID    int
	CategoryUID int
	Name        string
	Required    []string
	AtLeastOne  [][]string
	Activities  []int
}

// Rules returns the rules for the classes the package emits, from the OCSF schema
// (github.com/ocsf/ocsf-schema, events/ and objects/). The required lists are the union over
// 1.1 to 1.5, so an event that passes also satisfies collectors pinned to an older minor
// version: vendor_name (product) and title (finding_info) were required until 1.4.
//
//   - base_event: activity_id, category_uid, class_uid, metadata, severity_id, time, type_uid
//   - metadata: product, version; product: vendor_name (to 1.4), at least one of name and uid
//   - Authentication (iam/authentication.json): user; at least one of service and
//     dst_endpoint; user (user.json): at least one of account, name and uid
//   - Detection Finding (findings/finding.json): finding_info; finding_info: uid, title (to 1.4)
//
// status_id and status are recommended, not required; every event here carries them.
func Rules() []ClassRules {
	baseRequired := []string{"activity_id", "category_uid", "class_uid", "type_uid", "severity_id", "time",
		"metadata", "metadata.version", "metadata.product", "metadata.product.vendor_name", "status_id"}
	baseOneOf := [][]string{{"metadata.product.name", "metadata.product.uid"}}
	return []ClassRules{
		{
			ClassUID: ClassAuthentication, CategoryUID: CategoryIAM, Name: "Authentication",
			Required:   append(baseRequired[:len(baseRequired):len(baseRequired)], "user"),
			AtLeastOne: append(baseOneOf[:1:1], []string{"service", "dst_endpoint"}, []string{"user.account", "user.name", "user.uid"}),
			Activities: []int{0, 1, 2, 3, 4, 5, 6, 99},
		},
		{
			ClassUID: ClassDetectionFinding, CategoryUID: CategoryFindings, Name: "Detection Finding",
			Required:   append(baseRequired[:len(baseRequired):len(baseRequired)], "finding_info", "finding_info.uid", "finding_info.title"),
			AtLeastOne: baseOneOf,
			Activities: []int{0, 1, 2, 3, 99},
		},
	}
}

// ErrInvalidEvent reports an event that does not satisfy the OCSF schema's rules.
var ErrInvalidEvent = errors.New("siem: event does not satisfy the OCSF schema")

// Validate checks one encoded event against Rules: every required attribute present and not
// empty, every at-least-one group satisfied, type_uid and class_uid consistent with the
// category and activity, and enumerations within the schema's values.
func Validate(line []byte) error {
	var ev map[string]any
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&ev); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidEvent, err)
	}
	if dec.Decode(new(any)) != io.EOF {
		return fmt.Errorf("%w: data after the event", ErrInvalidEvent)
	}
	class, _ := intAt(ev, "class_uid")
	var rules *ClassRules
	for _, r := range Rules() {
		if r.ClassUID == class {
			rules = &r
			break
		}
	}
	if rules == nil {
		return fmt.Errorf("%w: class_uid %d is not one this package emits", ErrInvalidEvent, class)
	}
	validSeverities := []int{0, 1, 2, 3, 4, 5, 6, 99} // the base event's severity_id values
	validStatuses := []int{0, 1, 2, 99}               // and status_id values
	var problems []string
	for _, p := range rules.Required {
		if !present(ev, p) {
			problems = append(problems, "missing "+p)
		}
	}
	for _, group := range rules.AtLeastOne {
		ok := false
		for _, p := range group {
			ok = ok || present(ev, p)
		}
		if !ok {
			problems = append(problems, "needs one of "+strings.Join(group, ", "))
		}
	}
	cat, _ := intAt(ev, "category_uid")
	act, _ := intAt(ev, "activity_id")
	typ, _ := intAt(ev, "type_uid")
	sev, _ := intAt(ev, "severity_id")
	st, _ := intAt(ev, "status_id")
	t, _ := intAt(ev, "time")
	switch {
	case cat != rules.CategoryUID || class/1000 != cat:
		problems = append(problems, fmt.Sprintf("category_uid %d, want %d", cat, rules.CategoryUID))
	case typ != class*100+act:
		problems = append(problems, fmt.Sprintf("type_uid %d, want class_uid*100+activity_id = %d", typ, class*100+act))
	}
	if !contains(rules.Activities, act) {
		problems = append(problems, fmt.Sprintf("activity_id %d not defined for %s", act, rules.Name))
	}
	if !contains(validSeverities, sev) {
		problems = append(problems, fmt.Sprintf("severity_id %d not defined", sev))
	}
	if class == ClassDetectionFinding {
		validStatuses = []int{0, 1, 2, 3, 4, 5, 6, 99} // a finding's status_id is its lifecycle
	}
	if !contains(validStatuses, st) {
		problems = append(problems, fmt.Sprintf("status_id %d not defined", st))
	}
	if t <= 0 {
		problems = append(problems, "time is not a positive timestamp in milliseconds")
	}
	if v, _ := valueAt(ev, "metadata.version").(string); !isOCSF1(v) {
		problems = append(problems, fmt.Sprintf("metadata.version %q is not an OCSF 1.x version", v))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidEvent, strings.Join(problems, "; "))
	}
	return nil
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func valueAt(ev map[string]any, path string) any {
	var cur any = ev
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if cur, ok = m[k]; !ok {
			return nil
		}
	}
	return cur
}

// present reports whether path holds a value that is not null, not an empty string and not
// an empty object or array.
func present(ev map[string]any, path string) bool {
	switch v := valueAt(ev, path).(type) {
	case nil:
		return false
	case string:
		return v != ""
	case map[string]any:
		return len(v) > 0
	case []any:
		return len(v) > 0
	}
	return true
}

func intAt(ev map[string]any, path string) (int, bool) {
	n, ok := valueAt(ev, path).(json.Number)
	if !ok {
		return -1, false
	}
	i, err := n.Int64()
	if err != nil {
		return -1, false // as a missing field: 43e24 must not read as a valid 0
	}
	return int(i), true
}

// isOCSF1 reports whether v is an OCSF 1.x version: "1.<minor>.<patch>", perhaps with a suffix.
func isOCSF1(v string) bool {
	v, _, _ = strings.Cut(v, "-")
	parts := strings.Split(v, ".")
	if len(parts) != 3 || parts[0] != "1" {
		return false
	}
	for _, p := range parts[1:] {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}
