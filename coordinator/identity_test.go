package coordinator

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigilauth/vigil/crypto/sig"
	statev1 "github.com/vigilauth/vigil/proto/vigil/state/v1"
	"github.com/vigilauth/vigil/release"
)

// TestRestoreDevice checks that a device's record, and so the key that signs its updates,
// survives a restart through the state file, and that a record that is not the device's own is
// refused rather than restored.
func TestRestoreDevice(t *testing.T) {
	authority, _ := sig.GenerateKey(nil)
	key, _ := sig.GenerateKey(nil)
	now := time.Now().UTC().Truncate(time.Second)
	record, err := release.Sign(release.NewDeviceRecord("dev-a", "eu", key.Public(), now, now.Add(time.Hour)), authority)
	if err != nil {
		t.Fatal(err)
	}
	enrolled := timestamppb.New(now)
	d, err := restoreDevice(&statev1.Device{Id: "dev-a", Region: "eu", Enrolled: enrolled, Record: record})
	if err != nil {
		t.Fatal(err)
	}
	if k, _, err := d.signingKey(); err != nil || !k.Equal(key.Public()) || !d.issued.Equal(now) || string(d.record) != string(record) || d.region != "eu" {
		t.Fatalf("restored %+v", d)
	}
	if d, err := restoreDevice(&statev1.Device{Id: "dev-a", Enrolled: enrolled}); err != nil || d.record != nil {
		t.Fatalf("a device enrolled without a record: %+v, %v", d, err)
	}
	for name, dev := range map[string]*statev1.Device{
		"another device's record": {Id: "dev-b", Enrolled: enrolled, Record: record},
		"not a record":            {Id: "dev-a", Enrolled: enrolled, Record: []byte("{}")},
	} {
		if _, err := restoreDevice(dev); err == nil {
			t.Errorf("%s: restored", name)
		}
	}
}
