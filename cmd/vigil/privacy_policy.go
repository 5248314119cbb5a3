package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/release"
)

// runPrivacyPolicy is `vigil privacy policy`: the privacy office signs the bounds every task
// must keep to. Devices verify the policy under the root's privacy role and refuse tasks
// outside it, and older policies than the newest they have seen.
func runPrivacyPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("privacy policy", stdout)
	keyPath := fs.String("key", "", "the privacy office's ML-DSA-65 private key `FILE` (ORG/privacy/privacy.key after vigil setup)")
	out := fs.String("out", "", "write the signed policy to `FILE` (give it to the coordinator with --privacy-policy)")
	version := fs.Uint64("version", 0, "policy `VERSION`: above every policy devices have seen (they refuse older ones)")
	def := defaultPolicyFlags()
	minNoise := fs.Float64("min-noise", def.minNoise, "the least noise multiplier z a task may ask for (> 0)")
	minParticipants := fs.Uint("min-participants", def.minParticipants, "the least m_min a task may name")
	maxParticipants := fs.Uint("max-participants", 10_000, "the largest m_min a task may name (each device's noise shrinks as m_min grows)")
	minTolerated := fs.Uint("min-tolerated", def.minTolerated, "the least t_dev (malicious devices per round) a task may calibrate against")
	maxClip := fs.Float64("max-clip", def.maxClip, "the largest clip norm C a task may ask for")
	validFor := fs.Duration("valid-for", 365*24*time.Hour, "how long the policy is valid, e.g. 8760h")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *keyPath == "":
		return errors.New("--key is required")
	case *out == "":
		return errors.New("--out is required")
	case *version == 0:
		return errors.New("--version is required (at least 1)")
	case *validFor <= 0:
		return fmt.Errorf("--valid-for %v: must be positive", *validFor)
	}
	key, err := sig.ReadPrivateKeyFile(*keyPath)
	if err != nil {
		return fmt.Errorf("--key: %w", err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	p := &release.PrivacyPolicy{
		Version: *version, Created: now, Expires: now.Add(*validFor),
		MinNoiseMultiplier: *minNoise, MinParticipants: uint32(*minParticipants), MaxParticipants: uint32(*maxParticipants),
		MaxClipNorm: *maxClip, MinToleratedDevices: uint32(*minTolerated),
	}
	doc, err := release.Sign(p, key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, doc, 0o644); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	fmt.Fprintf(stdout, "privacy policy v%d written to %s, signed by key %s, valid until %s:\n"+
		"  z >= %g, %d <= m_min <= %d, t_dev >= %d, C <= %g\n",
		p.Version, *out, key.ID().Short(), p.Expires.Format(time.RFC3339),
		p.MinNoiseMultiplier, p.MinParticipants, p.MaxParticipants, p.MinToleratedDevices, p.MaxClipNorm)
	return nil
}
