package release

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/vigilauth/vigil/store"
)

func TestPAEVector(t *testing.T) {
	// The example of the DSSE protocol specification (protocol.md).
	got := PAE("http://example.com/HelloWorld", []byte("hello world"))
	want := "DSSEv1 29 http://example.com/HelloWorld 11 hello world"
	if string(got) != want {
		t.Fatalf("PAE = %q, want %q", got, want)
	}
}

func TestFetchVerifiesRelease(t *testing.T) {
	tr := newTrust(t, 1, 1)
	st := newFS(t)
	tr.publishAll(t, st, tr.bundle(t, 1))
	v := tr.verifier(t, 0)
	b, err := v.Fetch(context.Background(), st, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if b.Manifest.Version != 1 || len(b.Files) != 2 || string(b.Files["model.bin"]) != "weights of version 1" {
		t.Fatalf("unexpected bundle %+v", b.Manifest)
	}
	if err := v.SetInstalled(1); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Fetch(context.Background(), st, t0.Add(time.Hour)); !errors.Is(err, ErrUpToDate) {
		t.Fatalf("second fetch: got %v, want ErrUpToDate", err)
	}
	if err := v.SetInstalled(0); !errors.Is(err, ErrRollback) {
		t.Fatalf("SetInstalled backwards: %v", err)
	}
}

// rewrite replaces the object at key, as an attacker controlling the store would.
func rewrite(t *testing.T, st store.Store, key string, f func([]byte) []byte) {
	t.Helper()
	data, err := st.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(context.Background(), key, f(data)); err != nil {
		t.Fatal(err)
	}
}

// editPayload decodes an envelope, edits its payload as JSON and re-encodes it canonically,
// keeping the original signatures.
func editPayload(t *testing.T, envData []byte, edit func(map[string]any)) []byte {
	t.Helper()
	env, err := ParseEnvelope(envData)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(env.Payload, &doc); err != nil {
		t.Fatal(err)
	}
	edit(doc)
	if env.Payload, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	out, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFetchRefuses(t *testing.T) {
	now := t0.Add(time.Hour)
	for _, tc := range []struct {
		name      string
		installed uint64
		now       time.Time
		setup     func(t *testing.T, tr *trust, st store.Store)
		want      []error
	}{
		{
			name: "tampered artifact",
			setup: func(t *testing.T, tr *trust, st store.Store) {
				rewrite(t, st, ArtifactKey("vigil-ae", 2, "model.bin"), func(b []byte) []byte {
					b[0] ^= 1
					return b
				})
			},
			want: []error{ErrHashMismatch},
		},
		{
			name: "truncated artifact",
			setup: func(t *testing.T, tr *trust, st store.Store) {
				rewrite(t, st, ArtifactKey("vigil-ae", 2, "scaler.bin"), func(b []byte) []byte { return b[:3] })
			},
			want: []error{ErrHashMismatch},
		},
		{
			name: "tampered manifest",
			setup: func(t *testing.T, tr *trust, st store.Store) {
				rewrite(t, st, ManifestKey("vigil-ae", 2), func(b []byte) []byte {
					return editPayload(t, b, func(m map[string]any) {
						m["training"].(map[string]any)["epsilon"] = 0.1 // understate privacy loss
					})
				})
			},
			want: []error{ErrBadSignature, ErrThreshold},
		},
		{
			name: "manifest signed by unknown key",
			setup: func(t *testing.T, tr *trust, st store.Store) {
				evil := *tr
				evil.release = newKey(t)
				b := evil.bundle(t, 3) // timestamp key is genuine, release key is not
				p, _ := publisher(t, 1)
				if err := p.Publish(context.Background(), []Region{{"r", st}}, b); err != nil {
					t.Fatal(err)
				}
			},
			want: []error{ErrUnknownKey, ErrThreshold},
		},
		{
			name: "pointer signed by unknown key",
			setup: func(t *testing.T, tr *trust, st store.Store) {
				evil := *tr
				evil.timestamp = newKey(t)
				b := evil.bundle(t, 3)
				if err := st.Put(context.Background(), LatestKey("vigil-ae"), b.LatestEnvelope); err != nil {
					t.Fatal(err)
				}
			},
			want: []error{ErrUnknownKey},
		},
		{
			name: "manifest signed by timestamp key",
			setup: func(t *testing.T, tr *trust, st store.Store) {
				evil := *tr
				evil.release = tr.timestamp
				b := evil.bundle(t, 3)
				p, _ := publisher(t, 1)
				if err := p.Publish(context.Background(), []Region{{"r", st}}, b); err != nil {
					t.Fatal(err)
				}
			},
			want: []error{ErrUnknownKey},
		},
		{
			name:      "rollback to an older version",
			installed: 3,
			want:      []error{ErrRollback},
		},
		{
			name: "expired pointer",
			now:  t0.Add(6 * time.Hour),
			want: []error{ErrExpired},
		},
		{
			name: "expired manifest",
			now:  t0.Add(5 * time.Hour),
			setup: func(t *testing.T, tr *trust, st store.Store) {
				s := tr.spec(3, map[string][]byte{"model.bin": []byte("x")})
				s.Expires = t0.Add(4 * time.Hour)
				b, err := Build(s, tr.release, tr.timestamp)
				if err != nil {
					t.Fatal(err)
				}
				tr.publishAll(t, st, b)
			},
			want: []error{ErrExpired},
		},
		{
			name: "expired root",
			now:  t0.Add(366 * 24 * time.Hour),
			want: []error{ErrExpired},
		},
		{
			name: "mix and match: pointer names another manifest",
			setup: func(t *testing.T, tr *trust, st store.Store) {
				// Both manifests are genuinely signed; the v2 slot now holds v1's manifest.
				old, err := st.Get(context.Background(), ManifestKey("vigil-ae", 1))
				if err != nil {
					t.Fatal(err)
				}
				if err := st.Put(context.Background(), ManifestKey("vigil-ae", 2), old); err != nil {
					t.Fatal(err)
				}
			},
			want: []error{ErrMixAndMatch},
		},
		{
			name: "mix and match: pointer for another model",
			setup: func(t *testing.T, tr *trust, st store.Store) {
				s := tr.spec(3, map[string][]byte{"model.bin": []byte("x")})
				s.Model = "other-model"
				b, err := Build(s, tr.release, tr.timestamp)
				if err != nil {
					t.Fatal(err)
				}
				if err := st.Put(context.Background(), LatestKey("vigil-ae"), b.LatestEnvelope); err != nil {
					t.Fatal(err)
				}
			},
			want: []error{ErrMixAndMatch},
		},
		{
			name: "manifest where a pointer belongs",
			setup: func(t *testing.T, tr *trust, st store.Store) {
				m, err := st.Get(context.Background(), ManifestKey("vigil-ae", 2))
				if err != nil {
					t.Fatal(err)
				}
				if err := st.Put(context.Background(), LatestKey("vigil-ae"), m); err != nil {
					t.Fatal(err)
				}
			},
			want: []error{ErrWrongType},
		},
		{
			name: "non-canonical pointer",
			setup: func(t *testing.T, tr *trust, st store.Store) {
				rewrite(t, st, LatestKey("vigil-ae"), func(b []byte) []byte { return append(b, '\n') })
			},
			want: []error{ErrMalformed},
		},
		{
			name: "missing artifact",
			setup: func(t *testing.T, tr *trust, st store.Store) {
				fs := st.(*store.FS)
				if err := removeFile(fs, ArtifactKey("vigil-ae", 2, "model.bin")); err != nil {
					t.Fatal(err)
				}
			},
			want: []error{store.ErrNotFound},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTrust(t, 1, 1)
			st := newFS(t)
			tr.publishAll(t, st, tr.bundle(t, 1), tr.bundle(t, 2))
			if tc.setup != nil {
				tc.setup(t, tr, st)
			}
			at := now
			if !tc.now.IsZero() {
				at = tc.now
			}
			v := tr.verifier(t, tc.installed)
			b, err := v.Fetch(context.Background(), st, at)
			if err == nil {
				t.Fatalf("fetch succeeded with version %d", b.Manifest.Version)
			}
			for _, want := range tc.want {
				if !errors.Is(err, want) {
					t.Errorf("error %q does not wrap %v", err, want)
				}
			}
			if errors.Is(err, ErrUpToDate) {
				t.Errorf("refusal reported as up to date: %v", err)
			}
			t.Logf("%v", err)
		})
	}
}

func TestThreshold(t *testing.T) {
	tr := newTrust(t, 3, 2)
	r := tr.root
	for _, tc := range []struct {
		name  string
		signs int
		want  error
	}{
		{"one of three", 1, ErrThreshold},
		{"two of three", 2, nil},
		{"three of three", 3, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, err := Sign(r, signers(tr.rootKeys[:tc.signs]...)...)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ParseTrustedRoot(env)
			if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// A signature made twice by one key still counts once: the envelope refuses repeats.
	e, err := signEnvelope(TypeRoot, []byte("{}"), signers(tr.rootKeys[0], tr.rootKeys[0]))
	if err == nil {
		t.Fatalf("envelope with one key twice: %+v", e)
	}
}

func TestKeyEpoch(t *testing.T) {
	tr := newTrust(t, 1, 1)
	st := newFS(t)
	tr.publishAll(t, st)
	pk := bytes.Repeat([]byte{7}, 4096)
	p, _ := publisher(t, 1)
	regions := []Region{{"r", st}}
	for _, epoch := range []uint64{1, 2} {
		doc, err := Sign(NewKeyEpoch(epoch, "ckks-pn14", append(pk, byte(epoch)), t0, t0.Add(90*24*time.Hour)), tr.release)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.PublishKeyEpoch(context.Background(), regions, doc, append(pk, byte(epoch))); err != nil {
			t.Fatal(err)
		}
	}
	v := tr.verifier(t, 0)
	k, key, err := v.FetchKeyEpoch(context.Background(), st, 2, t0)
	if err != nil || k.Epoch != 2 || !bytes.Equal(key, append(pk, 2)) {
		t.Fatalf("epoch 2: %v", err)
	}
	if _, _, err := v.FetchKeyEpoch(context.Background(), st, 1, t0); !errors.Is(err, ErrRollback) {
		t.Fatalf("older epoch: got %v, want ErrRollback", err)
	}
	rewrite(t, st, CollectiveKeyKey(2), func(b []byte) []byte { b[10] ^= 1; return b })
	if _, _, err := tr.verifier(t, 0).FetchKeyEpoch(context.Background(), st, 2, t0); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("tampered collective key: got %v, want ErrHashMismatch", err)
	}
	unsigned, _ := Sign(NewKeyEpoch(3, "ckks-pn14", pk, t0, t0.Add(time.Hour)), tr.timestamp)
	if _, err := tr.verifier(t, 0).VerifyKeyEpoch(unsigned, pk, t0); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("key epoch signed by the timestamp key: got %v, want ErrUnknownKey", err)
	}
	if _, err := tr.verifier(t, 0).VerifyKeyEpoch(unsigned, pk, t0.Add(2*time.Hour)); err == nil {
		t.Fatal("accepted")
	}
}

// Fetch tells a model with nothing published (ErrNoRelease, not a failure) from a release whose
// documents are missing, a pointer withheld from a device that installed a release, and a
// refused root, which are failures.
func TestFetchNothingPublished(t *testing.T) {
	ctx := context.Background()
	now := t0.Add(time.Hour)
	for _, tc := range []struct {
		name      string
		installed uint64
		setup     func(t *testing.T, tr *trust, st store.Store)
		noRelease bool
	}{
		{"an empty store", 0, func(*testing.T, *trust, store.Store) {}, true},
		// A store writer deletes the pointer to hide the releases from a device that has one.
		{"an installed release's pointer withheld", 1, func(*testing.T, *trust, store.Store) {}, false},
		{"a pointer whose manifest is missing", 0, func(t *testing.T, tr *trust, st store.Store) {
			tr.publishAll(t, st, tr.bundle(t, 1))
			if err := store.Delete(ctx, st, ManifestKey("vigil-ae", 1)); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"nothing published beside a refused root", 0, func(t *testing.T, tr *trust, st store.Store) {
			if err := st.Put(ctx, RootKey(2), []byte("not a root")); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTrust(t, 1, 1)
			st := newFS(t)
			tc.setup(t, tr, st)
			_, err := tr.verifier(t, tc.installed).Fetch(ctx, st, now)
			if err == nil {
				t.Fatal("fetched a release")
			}
			if got := errors.Is(err, ErrNoRelease); got != tc.noRelease {
				t.Fatalf("ErrNoRelease %v, want %v: %v", got, tc.noRelease, err)
			}
		})
	}
}

// TestFetchCancelledIsAnError: a Fetch whose context ends returns an error, never (nil, nil),
// which the updater took for a release: a device stopped during a poll crashed on it (found by
// the race stage of CI, on a test that cancels a poll). The context ends here as the roots
// have been read, before the release is.
func TestFetchCancelledIsAnError(t *testing.T) {
	tr := newTrust(t, 1, 1)
	st := newFS(t)
	tr.publishAll(t, st, tr.bundle(t, 1))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := tr.verifier(t, 0).Fetch(ctx, cancellingStore{st, cancel}, t0)
	if b != nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("Fetch with its context cancelled: %v, %v; want context.Canceled", b, err)
	}
}

// cancellingStore cancels its context once a read has been answered.
type cancellingStore struct {
	store.Store
	cancel context.CancelFunc
}

func (c cancellingStore) Get(ctx context.Context, key string) ([]byte, error) {
	defer c.cancel()
	return c.Store.Get(ctx, key)
}
