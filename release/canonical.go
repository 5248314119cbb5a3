package release

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Canonical encoding is what encoding/json writes for the package's struct types: fields in
// declaration order, which is kept alphabetical, maps with sorted keys, no insignificant
// whitespace, the shortest float representation that round-trips, and times in UTC RFC 3339 to
// the second. Decoding is strict: the input must decode without unknown fields and then encode
// back to exactly the same bytes. That one rule refuses duplicate keys, keys in other case or
// order, whitespace, alternative number and string spellings, and trailing data, so one document
// has exactly one accepted encoding.

func marshalCanonical(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return b, nil
}

func unmarshalStrict(data []byte, v any, what string) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrMalformed, what, err)
	}
	again, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrMalformed, what, err)
	}
	if !bytes.Equal(again, data) {
		return fmt.Errorf("%w: %s is not in canonical form", ErrMalformed, what)
	}
	return nil
}

// checkTime refuses zero times and times that would not encode canonically (not UTC, or with
// sub-second digits).
func checkTime(field string, t time.Time) error {
	if t.IsZero() {
		return fmt.Errorf("%w: %s is missing", ErrMalformed, field)
	}
	if t.Location() != time.UTC || t.Nanosecond() != 0 {
		return fmt.Errorf("%w: %s must be UTC with whole seconds, got %s", ErrMalformed, field, t.Format(time.RFC3339Nano))
	}
	return nil
}

// canonicalTime returns t in the form checkTime accepts.
func canonicalTime(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

// validName checks model names, artifact names, parameter IDs and figure names: 1..MaxNameLen
// of [A-Za-z0-9._-], not "." or "..", so that every name is also one store key segment.
func validName(field, s string) error {
	if s == "" || len(s) > MaxNameLen || s == "." || s == ".." {
		return fmt.Errorf("%w: %s %q must be 1..%d characters and not '.' or '..'", ErrMalformed, field, s, MaxNameLen)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%w: %s %q: character %q not allowed", ErrMalformed, field, s, r)
		}
	}
	return nil
}

// validSHA256 checks a lowercase hex SHA-256.
func validSHA256(field, s string) error {
	if len(s) != 64 {
		return fmt.Errorf("%w: %s must be 64 hex digits", ErrMalformed, field)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return fmt.Errorf("%w: %s must be lowercase hex", ErrMalformed, field)
		}
	}
	return nil
}
