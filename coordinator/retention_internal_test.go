package coordinator

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/store"
)

// TestPruneModels: the newest versions and the ones still needed keep their artifacts; older
// ones keep only their metadata.
func TestPruneModels(t *testing.T) {
	ctx := context.Background()
	none := func(uint64) bool { return false }
	for _, tc := range []struct {
		name        string
		keep        int
		need, skip  func(uint64) bool
		wantDeleted []uint64
	}{
		{"keep 2", 2, none, none, []uint64{1, 2, 3}},
		{"keep all", 0, none, none, nil},
		{"more than stored", 9, none, none, nil},
		{"open round's base", 1, func(v uint64) bool { return v == 2 }, none, []uint64{1, 3, 4}},
		{"retained before", 3, none, func(v uint64) bool { return v == 1 }, []uint64{2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := store.NewFS(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			for v := uint64(1); v <= 5; v++ {
				for _, a := range []string{models.ArtifactParams, models.ArtifactMeta, "other.bin"} {
					if err := st.Create(ctx, versionPrefix("m", v)+a, []byte(fmt.Sprint(v))); err != nil {
						t.Fatal(err)
					}
				}
			}
			p, err := pruneModels(ctx, st, "m", tc.keep, tc.need, tc.skip)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.deleted, tc.wantDeleted) || p.retained != nil {
				t.Errorf("deleted %v, retained %v; want deleted %v", p.deleted, p.retained, tc.wantDeleted)
			}
			for v := uint64(1); v <= 5; v++ {
				gone := false
				for _, d := range p.deleted {
					gone = gone || d == v
				}
				for _, a := range []string{models.ArtifactParams, "other.bin"} {
					if _, err := st.Get(ctx, versionPrefix("m", v)+a); (err != nil) != gone {
						t.Errorf("v%d %s: %v, want deleted %v", v, a, err, gone)
					}
				}
				if _, err := st.Get(ctx, versionPrefix("m", v)+models.ArtifactMeta); err != nil {
					t.Errorf("v%d metadata: %v, want it kept", v, err)
				}
			}
		})
	}
}
