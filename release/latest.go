package release

import (
	"fmt"
	"time"
)

// Latest points to the newest version of a model. It is signed by the timestamp role and
// expires soon (hours), so the coordinator re-signs it regularly even without a new release.
type Latest struct {
	Expires        time.Time `json:"expires"`
	ManifestSHA256 string    `json:"manifest_sha256"` // SHA-256 of the manifest payload
	Model          string    `json:"model"`
	Version        uint64    `json:"version"`
}

func (l *Latest) payloadType() string { return TypeLatest }

func (l *Latest) validate() error {
	if err := validName("latest model", l.Model); err != nil {
		return err
	}
	if l.Version == 0 {
		return fmt.Errorf("%w: latest version must be at least 1", ErrMalformed)
	}
	if err := validSHA256("latest manifest_sha256", l.ManifestSHA256); err != nil {
		return err
	}
	return checkTime("latest expires", l.Expires)
}

func decodeLatest(payload []byte) (*Latest, error) {
	var l Latest
	if err := unmarshalStrict(payload, &l, "latest pointer"); err != nil {
		return nil, err
	}
	if err := l.validate(); err != nil {
		return nil, err
	}
	return &l, nil
}

// checkLifetime refuses a pointer that expires more than MaxPointerLifetime after now. Its
// expiry is what stops a freeze; one signed for years would not.
func (l *Latest) checkLifetime(now time.Time) error {
	if limit := now.Add(MaxPointerLifetime); l.Expires.After(limit) {
		return fmt.Errorf("%w: latest pointer (version %d) expires at %s, more than %v ahead",
			ErrLifetime, l.Version, l.Expires.Format(time.RFC3339), MaxPointerLifetime)
	}
	return nil
}
