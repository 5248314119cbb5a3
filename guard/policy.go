package guard

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Policy maps each privileged resource to the minimum trust Authorize requires for it.
// Resources not in the policy are denied: the guard fails closed.
//
// The policy file is text, one resource per line:
//
//	# resource     minimum trust (0-100)
//	docs.read      50
//	billing        85   # comments may follow an entry
//
// A resource name is 1-128 bytes of letters, digits and "._:/-"; a minimum is a decimal number
// from 0 to 100 (digits, at most one point). Blank lines and lines starting with # are ignored.
// Anything else is an error naming the line: a policy that is not exactly what its author meant
// must not be half-applied.
type Policy struct {
	min map[string]float64
}

// PolicyError is a parse error at one line of a policy file.
type PolicyError struct {
	Line int
	Msg  string
}

func (e *PolicyError) Error() string { return fmt.Sprintf("guard: policy line %d: %s", e.Line, e.Msg) }

// Unwrap makes errors.Is(err, ErrPolicy) true.
func (e *PolicyError) Unwrap() error { return ErrPolicy }

// ParsePolicy reads a policy file.
func ParsePolicy(r io.Reader) (*Policy, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxPolicyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("guard: read policy: %w", err)
	}
	if len(data) > MaxPolicyBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrPolicy, MaxPolicyBytes)
	}
	p := &Policy{min: map[string]float64{}}
	firstSeen := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), MaxPolicyBytes)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return nil, &PolicyError{n, fmt.Sprintf("want \"resource min_trust\", got %d fields", len(fields))}
		}
		name, value := fields[0], fields[1]
		if err := checkResource(name); err != nil {
			return nil, &PolicyError{n, err.Error()}
		}
		v, err := parseTrust(value)
		if err != nil {
			return nil, &PolicyError{n, fmt.Sprintf("resource %q: %v", name, err)}
		}
		if prev, dup := firstSeen[name]; dup {
			return nil, &PolicyError{n, fmt.Sprintf("resource %q already set on line %d", name, prev)}
		}
		if len(p.min) == MaxPolicyEntries {
			return nil, &PolicyError{n, fmt.Sprintf("more than %d resources", MaxPolicyEntries)}
		}
		firstSeen[name] = n
		p.min[name] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPolicy, err)
	}
	if len(p.min) == 0 {
		return nil, fmt.Errorf("%w: no resources: every Authorize would be denied", ErrPolicy)
	}
	return p, nil
}

// LoadPolicy reads the policy file at path.
func LoadPolicy(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("guard: policy: %w", err)
	}
	defer f.Close()
	p, err := ParsePolicy(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// MinTrust returns the minimum trust resource requires, and whether the policy names it.
func (p *Policy) MinTrust(resource string) (float64, bool) {
	v, ok := p.min[resource]
	return v, ok
}

// Resources returns the resources the policy names, sorted.
func (p *Policy) Resources() []string {
	out := make([]string, 0, len(p.min))
	for r := range p.min {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// String returns the policy in its file format, sorted by resource.
func (p *Policy) String() string {
	var b strings.Builder
	for _, r := range p.Resources() {
		fmt.Fprintf(&b, "%s %s\n", r, strconv.FormatFloat(p.min[r], 'f', -1, 64))
	}
	return b.String()
}

func checkResource(name string) error {
	if len(name) > MaxResourceBytes {
		return fmt.Errorf("resource name of %d bytes, limit %d", len(name), MaxResourceBytes)
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._:/-", c) >= 0) {
			return fmt.Errorf("resource %q: character %q not allowed (letters, digits and ._:/-)", name, c)
		}
	}
	return nil
}

// parseTrust accepts plain decimals only ("85", "62.5"): no signs, exponents, hex or NaN.
func parseTrust(s string) (float64, error) {
	dots := 0
	for _, c := range []byte(s) {
		switch {
		case c == '.':
			dots++
		case c < '0' || c > '9':
			return 0, fmt.Errorf("minimum trust %q is not a decimal number", s)
		}
	}
	if dots > 1 || s == "." || s[0] == '.' || s[len(s)-1] == '.' {
		return 0, fmt.Errorf("minimum trust %q is not a decimal number", s)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v > MaxTrust {
		return 0, fmt.Errorf("minimum trust %s outside 0..%d", s, MaxTrust)
	}
	return v, nil
}
