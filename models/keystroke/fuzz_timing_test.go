package keystroke

import (
	"math"
	"strings"
	"testing"
)

// FuzzTimings feeds arbitrary files through the reader and the timing extractor of
// TimingFeatureSet: it must never panic, and every event it emits must name a real bucket and
// hold a finite value.
func FuzzTimings(f *testing.F) {
	f.Add("PARTICIPANT_ID\tTEST_SECTION_ID\tSENTENCE\tUSER_INPUT\tKEYSTROKE_ID\tPRESS_TIME\tRELEASE_TIME\tLETTER\tKEYCODE\n" +
		"7\t1\tHi\tHi\t1\t1000\t1100\tH\t72\n7\t1\tHi\tHi\t2\t1200\t1290\ti\t73\n7\t1\tHi\tHi\t3\t1250\t1400\t \t32\n" +
		"7\t1\tHi\tHi\t4\t1300\t1310\tx\t88\n7\t1\tHi\tHi\t5\t1500\t0\tx\t8\n7\t1\tHi\tHi\t6\t9000\t9001\tx\t1000\n")
	f.Add("7\t2\tx\tx\t1\t-5\t-9\tx\t2000\n\n\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		p, _, err := ReadAalto(strings.NewReader(in))
		if err != nil {
			return
		}
		var ex TimingExtractor
		var tm Timings
		for _, s := range p.Sessions {
			for _, w := range Windows(s, 5) {
				if ex.Extract(&tm, w) != nil {
					continue
				}
				for _, e := range tm.Events {
					if e.Bucket < 0 || e.Bucket >= NumBuckets || math.IsNaN(e.Value) || math.IsInf(e.Value, 0) {
						t.Fatalf("event %+v", e)
					}
				}
				for i, v := range tm.Summary {
					if math.IsInf(v, 0) {
						t.Fatalf("summary %s is %v", summaryNames[i], v)
					}
				}
			}
		}
	})
}
