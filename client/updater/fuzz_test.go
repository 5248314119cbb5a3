package updater

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/vigilauth/vigil/models"
)

// FuzzDecodeState: the state file decoder never panics, and what it accepts is a consistent
// state that round-trips.
func FuzzDecodeState(f *testing.F) {
	files := map[string]string{models.ArtifactParams: "aa", models.ArtifactMeta: "bb", manifestArt: "cc"}
	for _, s := range []state{
		{Format: stateFormat, Model: testModel},
		{Format: stateFormat, Model: testModel, Verified: 3, Current: &slot{Version: 2, Files: files}, Previous: &slot{Version: 1, Files: files}, Candidate: &slot{Version: 3, Dir: "3-17", Files: files},
			Rejected: []rejection{{Version: 1}, {Version: 4, ManifestSHA256: sha256Hex(nil)}}},
		{Format: stateFormat, Model: testModel, Verified: 3, Current: &slot{Version: 3, Files: files}, Candidate: &slot{Version: 2, Files: files}},
		{Format: stateFormat, Model: testModel, Verified: 2, Current: &slot{Version: 2, Dir: "../2-1", Files: files}},
	} {
		data, _ := json.MarshalIndent(s, "", "  ")
		f.Add(data)
	}
	f.Add([]byte(`{"format":"vigil-updater-state-v1","model":"keystroke-ae","verified":1,"current":{"version":1,"files":{}},"previous":null,"candidate":null,"rejected":null} x`))
	f.Add([]byte(`{"format":"vigil-updater-state-v1","model":"keystroke-ae","verified":1,"current":null,"previous":null,"candidate":null,"rejected":[2,3]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decodeState(data, testModel)
		if err != nil {
			return
		}
		enc, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeState(enc, testModel)
		if err != nil || !reflect.DeepEqual(again, s) {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, s, again)
		}
	})
}

// FuzzDecodeMeta: meta.json decoding never panics, and parseModel never panics on what a
// store could serve.
func FuzzDecodeMeta(f *testing.F) {
	files := modelFiles(f, 1, testSpec, make([]float64, testSpec.NumParams()), testFeatures)
	f.Add(files[models.ArtifactMeta], files[models.ArtifactParams])
	f.Add([]byte(`{"name":"keystroke-ae","version":1,"layers":[6,4,6],"activation":"tanh","feature_set":"test-features-v1","num_params":58}`), make([]byte, 58*8))
	f.Add([]byte(`{"layers":[1e9]}`), []byte{})
	f.Fuzz(func(t *testing.T, meta, params []byte) {
		if m, err := models.DecodeMeta(meta); err == nil && len(m.Layers) > 64 {
			t.Fatalf("accepted %d layers", len(m.Layers))
		}
		m, err := parseModel(testModel, 1, testFeatures, nil, map[string][]byte{models.ArtifactMeta: meta, models.ArtifactParams: params})
		if err != nil {
			return
		}
		if _, err := m.NewScorer(); err != nil {
			t.Fatalf("accepted a model that does not load: %v", err)
		}
	})
}
