package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCutTornTail(t *testing.T) {
	long := strings.Repeat("x", MaxRecordBytes+10)
	for _, tc := range []struct {
		name, file, want string
		cut              int64
	}{
		{"complete", "a\nb\n", "a\nb\n", 0},
		{"torn", "a\nb\nhalf", "a\nb\n", 4},
		{"torn first line", "half", "", 4},
		{"empty", "", "", 0},
		{"no newline near the end: damage, left to Verify", "a\n" + long, "a\n" + long, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			cut, err := CutTornTail(path)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(path)
			if cut != tc.cut || !bytes.Equal(got, []byte(tc.want)) {
				t.Errorf("cut %d, left %d bytes; want %d, %d", cut, len(got), tc.cut, len(tc.want))
			}
		})
	}
	if cut, err := CutTornTail(filepath.Join(t.TempDir(), "missing")); cut != 0 || err != nil {
		t.Errorf("missing file: %d, %v", cut, err)
	}
}
