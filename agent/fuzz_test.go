package agent

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// FuzzConvertBatch: whatever JSON a page sends, the batch either converts to events the guard
// can take (times in range, release after press, known buttons) or is refused with an error,
// never a panic.
func FuzzConvertBatch(f *testing.F) {
	f.Add([]byte(`{"session":"s","keys":[{"pressMs":1790000000000,"releaseMs":1790000000080,"code":65}]}`))
	f.Add([]byte(`{"session":"s","pointer":[{"atMs":1790000000000,"x":5,"y":-3,"button":"left","action":"press"}]}`))
	f.Add([]byte(`{"session":"s","context":{"ip":"10.0.0.1","lat":52.5,"lon":13.4,"device":"d","network":"n","localTime":"2026-12-03T10:00:00+01:00"}}`))
	f.Add([]byte(`{"keys":[{"pressMs":"NaN","releaseMs":1e300,"code":4294967295}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var req vigilv1.SendEventsRequest
		if protojson.Unmarshal(data, &req) != nil {
			return
		}
		evs, err := convertBatch(&req)
		if err != nil {
			return
		}
		for _, ev := range evs {
			if y := ev.at.Year(); y < 2000 || y > 2200 {
				t.Fatalf("%s: time %v accepted", ev.field(), ev.at)
			}
			if k := ev.key; k != nil && (k.Release.Before(k.Press) || k.Key == 0 || k.Key > 1023) {
				t.Fatalf("%s: keystroke %+v accepted", ev.field(), *k)
			}
		}
	})
}

// FuzzOpenState: a state file that is not what this device sealed is refused with ErrState.
func FuzzOpenState(f *testing.F) {
	key := make([]byte, 32)
	good, err := sealState(key, &State{Users: map[string]*UserState{"u": {Seed: 7}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(stateMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := openState(key, data)
		if err != nil && !errors.Is(err, ErrState) {
			t.Fatalf("error %v does not wrap ErrState", err)
		}
		if err == nil && st.Users == nil {
			t.Fatal("nil users")
		}
	})
}
