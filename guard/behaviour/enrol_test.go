package behaviour_test

import (
	"errors"
	"testing"
	"time"

	"github.com/vigilauth/vigil/guard/behaviour"
	"github.com/vigilauth/vigil/models/keystroke"
)

func TestKeystrokeEnrolment(t *testing.T) {
	ks := keystroke.NewTypist(1).Type(400)
	// Make the second window unusable: a minute between its keystrokes.
	for i := 50; i < 100; i++ {
		ks[i].Press += time.Duration(i-49) * time.Minute
		ks[i].Release += time.Duration(i-49) * time.Minute
	}
	for i := 100; i < len(ks); i++ {
		ks[i].Press += 51 * time.Minute
		ks[i].Release += 51 * time.Minute
	}
	e, st, err := behaviour.KeystrokeEnrolment(ks, behaviour.EnrolConfig{Window: 50, Windows: 5, Stride: 10})
	if err != nil {
		t.Fatal(err)
	}
	// Windows 0, 2, 3, 4, 5 are used: 300 keystrokes; overlapping summaries every 10 over them,
	// of which those reaching into the sparse window may be dropped.
	if len(e.Windows) != 5 || st.Used != 300 || st.Sparse != 1 {
		t.Fatalf("%d windows, used %d, sparse %d", len(e.Windows), st.Used, st.Sparse)
	}
	if n := len(e.Summaries); n < 16 || n > 26 {
		t.Fatalf("%d overlapping summaries over 300 keystrokes", n)
	}
	if _, _, err := behaviour.KeystrokeEnrolment(ks[:200], behaviour.EnrolConfig{}); !errors.Is(err, behaviour.ErrTooFewWindows) {
		t.Fatalf("200 keystrokes, one window sparse: %v", err)
	}
	for _, bad := range []behaviour.EnrolConfig{{Window: 5}, {Windows: -1}, {Window: 50, Stride: 51}} {
		if _, _, err := behaviour.KeystrokeEnrolment(ks, bad); err == nil {
			t.Errorf("config %+v accepted", bad)
		}
	}
}
