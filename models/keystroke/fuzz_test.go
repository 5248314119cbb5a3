package keystroke

import (
	"bytes"
	"testing"
)

func FuzzReadAalto(f *testing.F) {
	f.Add([]byte("PARTICIPANT_ID\tTEST_SECTION_ID\tSENTENCE\tUSER_INPUT\tKEYSTROKE_ID\tPRESS_TIME\tRELEASE_TIME\tLETTER\tKEYCODE\n" +
		"7\t1\tHi\tHi\t1\t1000\t1100\tH\t72\n7\t1\tHi\tHi\t2\t1200\t1290\ti\t73\n"))
	f.Add([]byte("7\t1\ta\tb\tc\t1\t2\t3\t\t\t9\n"))
	f.Add([]byte("\t\t\t\t\t\t\t\t\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, st, err := ReadAalto(bytes.NewReader(b))
		if err != nil {
			return
		}
		kept := 0
		for _, s := range p.Sessions {
			for i, k := range s {
				if i > 0 && k.Press < s[i-1].Press {
					t.Fatalf("session keystrokes out of order")
				}
				if k.Release != 0 && k.Release < k.Press {
					t.Fatalf("release before press kept")
				}
			}
			kept += len(s)
		}
		dropped := 0
		for _, n := range st.Dropped {
			dropped += n
		}
		if kept != st.Kept || st.Kept+dropped != st.Rows {
			t.Fatalf("rows %d != kept %d + dropped %d (sessions hold %d)", st.Rows, st.Kept, dropped, kept)
		}
		var ex TimingExtractor
		var tm Timings
		for _, w := range Windows(p.Keystrokes(), 10) {
			_ = ex.Extract(&tm, w)
		}
	})
}
