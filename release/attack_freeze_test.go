package release

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestAttackLongLivedPointer: a thief of the timestamp key signs, once, a pointer valid for ten
// years. Devices used to accept it until their root expired, and a publisher treated it as a
// genuine newer pointer and left it in place while reporting success. Now devices refuse a
// pointer valid for more than MaxPointerLifetime (ErrLifetime), the publisher replaces one, and
// neither Publish nor PublishLatest (nor an outbox, see TestOutboxConfigValidation) writes one.
func TestAttackLongLivedPointer(t *testing.T) {
	ctx := context.Background()
	now := t0.Add(time.Hour)
	tr := newTrust(t, 1, 1)
	b1 := tr.bundle(t, 1)

	t.Run("device", func(t *testing.T) {
		for _, tc := range []struct {
			expires time.Time
			want    error
		}{
			{now.Add(6 * time.Hour), nil},
			{now.Add(MaxPointerLifetime), nil},
			{now.Add(MaxPointerLifetime + time.Second), ErrLifetime},
			{t0.AddDate(10, 0, 0), ErrLifetime},
		} {
			ptr, err := SignLatestFor(b1.Manifest, tc.expires, tr.timestamp)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tr.verifier(t, 0).VerifyLatest(ptr, now); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("pointer expiring %v ahead: %v, want %v", tc.expires.Sub(now), err, tc.want)
			}
		}
	})
	t.Run("publisher replaces it", func(t *testing.T) {
		st := newFS(t)
		tr.publishAll(t, st, b1)
		// It names a version that does not exist: devices fail on every poll.
		m := *b1.Manifest
		m.Version = 1000
		forged, err := SignLatestFor(&m, t0.AddDate(10, 0, 0), tr.timestamp)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Put(ctx, LatestKey("vigil-ae"), forged); err != nil {
			t.Fatal(err)
		}
		p, err := NewPublisher(PublisherConfig{Attempts: 1, Root: tr.root, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Publish(ctx, []Region{{"eu", st}}, tr.bundle(t, 2)); err != nil {
			t.Fatal(err)
		}
		if b, err := tr.verifier(t, 1).Fetch(ctx, st, now); err != nil || b.Manifest.Version != 2 {
			t.Fatalf("device after the publication: %v", err)
		}
	})
	t.Run("nothing makes one", func(t *testing.T) {
		long, err := SignLatestFor(b1.Manifest, now.AddDate(0, 1, 0), tr.timestamp)
		if err != nil {
			t.Fatal(err)
		}
		p, err := NewPublisher(PublisherConfig{Attempts: 1, Root: tr.root, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		st := newFS(t)
		if err := p.PublishLatest(ctx, []Region{{"eu", st}}, long); !errors.Is(err, ErrLifetime) {
			t.Errorf("PublishLatest: %v, want ErrLifetime", err)
		}
		b := *b1
		b.LatestEnvelope = long
		if err := p.Publish(ctx, []Region{{"eu", st}}, &b); !errors.Is(err, ErrLifetime) {
			t.Errorf("Publish: %v, want ErrLifetime", err)
		}
		if keys, _ := st.List(ctx, ""); len(keys) != 0 {
			t.Errorf("refused publications wrote %v", keys)
		}
	})
}

// TestAttackStaleInstalledRelease: a thief of the timestamp key re-signs, before every poll, a
// fresh pointer to the installed release (or to one the device skips), hiding every newer
// release. Fetch used to answer ErrUpToDate until the root expired. Now, once the installed
// manifest has expired, it answers ErrStale (and ErrExpired) on every call.
func TestAttackStaleInstalledRelease(t *testing.T) {
	ctx := context.Background()
	tr := newTrust(t, 1, 1)
	b1, b2 := tr.bundle(t, 1), tr.bundle(t, 2)
	expired := b1.Manifest.Expires
	for _, tc := range []struct {
		name  string
		named *Manifest // what the thief's pointers name
		skip  bool      // the device skips b2 (a candidate or a rejected release)
		at    time.Time
		want  error
	}{
		{"installed, manifest valid", b1.Manifest, false, expired.Add(-time.Second), ErrUpToDate},
		{"installed, manifest expired", b1.Manifest, false, expired, ErrStale},
		{"installed, months later", b1.Manifest, false, t0.AddDate(0, 11, 0), ErrStale},
		{"skipped, manifest valid", b2.Manifest, true, expired.Add(-time.Second), ErrUpToDate},
		{"skipped, manifest expired", b2.Manifest, true, expired, ErrStale},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newFS(t)
			tr.publishAll(t, st, b1, b2)
			v := tr.verifier(t, 0)
			if err := v.SetInstalledManifest(b1.ManifestEnvelope); err != nil {
				t.Fatal(err)
			}
			if tc.skip {
				v.Skip(ReleaseRef{Version: 2, ManifestSHA256: manifestSHA(t, b2)})
			}
			ptr, err := SignLatestFor(tc.named, tc.at.Add(6*time.Hour), tr.timestamp)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Put(ctx, LatestKey("vigil-ae"), ptr); err != nil {
				t.Fatal(err)
			}
			_, err = v.Fetch(ctx, st, tc.at)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.want == ErrStale && (!errors.Is(err, ErrExpired) || errors.Is(err, ErrUpToDate)) {
				t.Fatalf("stale: %v, want ErrExpired and not ErrUpToDate", err)
			}
		})
	}
}

// TestFetchSkipsOnlyTheSameRelease: a device skips a pointer only when it names the release it
// holds or refused, the same version and manifest. A pointer naming the installed version with
// another manifest is an error, not "up to date".
func TestFetchSkipsOnlyTheSameRelease(t *testing.T) {
	ctx := context.Background()
	now := t0.Add(time.Hour)
	tr := newTrust(t, 1, 1)
	b1, b2 := tr.bundle(t, 1), tr.bundle(t, 2)
	other, err := Build(tr.spec(2, map[string][]byte{"model.bin": []byte("another v2")}), tr.release, tr.timestamp)
	if err != nil {
		t.Fatal(err)
	}
	st := newFS(t)
	tr.publishAll(t, st, b1, b2)
	sum := manifestSHA(t, b2)
	for _, tc := range []struct {
		name      string
		installed *Bundle
		skip      []ReleaseRef
		want      error // nil: v2 is fetched
	}{
		{"nothing skipped", b1, nil, nil},
		{"same release skipped", b1, []ReleaseRef{{2, sum}}, ErrUpToDate},
		{"another release of v2 skipped", b1, []ReleaseRef{{2, manifestSHA(t, other)}}, nil},
		{"v2 skipped without a hash (older state)", b1, []ReleaseRef{{Version: 2}}, ErrUpToDate},
		{"v2 installed", b2, nil, ErrUpToDate},
		{"another v2 installed", other, nil, ErrMixAndMatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewVerifier(VerifierConfig{Root: tr.rootEnv, Model: "vigil-ae", Version: tc.installed.Manifest.Version,
				Installed: tc.installed.ManifestEnvelope, Skip: tc.skip})
			if err != nil {
				t.Fatal(err)
			}
			b, err := v.Fetch(ctx, st, now)
			switch {
			case tc.want == nil && (err != nil || b.Manifest.Version != 2):
				t.Fatalf("got %v, want v2", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.skip != nil && tc.want == ErrUpToDate {
				v.Unskip(tc.skip[0])
				if b, err := v.Fetch(ctx, st, now); err != nil || b.Manifest.Version != 2 {
					t.Fatalf("after Unskip: %v", err)
				}
			}
		})
	}
}

// manifestSHA is the SHA-256 of b's manifest payload, as its pointer names it.
func manifestSHA(t *testing.T, b *Bundle) string {
	t.Helper()
	env, err := ParseEnvelope(b.ManifestEnvelope)
	if err != nil {
		t.Fatal(err)
	}
	return sha256Hex(env.Payload)
}
