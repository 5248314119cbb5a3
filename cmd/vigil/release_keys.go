package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/release"
)

// Signing keys for `vigil release`. A -key flag names one of:
//
//   - a key file written by `vigil release keygen`, plain (online keys the coordinator uses
//     unattended) or encrypted under a passphrase (offline keys), the passphrase read from the
//     file $VIGIL_KEY_PASSPHRASE_FILE names or from $VIGIL_KEY_PASSPHRASE;
//   - exec:PROGRAM, a hardware key (HSM, smart card, YubiKey) behind a small program:
//     `PROGRAM public-key` prints the key's PEM public key, and `PROGRAM sign` reads the bytes
//     to sign on stdin and writes the raw ML-DSA-65 signature (FIPS 204, empty context) on
//     stdout. Vigil checks every signature it returns against the public key before using it.

// passphrase returns the key passphrase of the environment.
func passphrase() ([]byte, error) {
	if f := os.Getenv("VIGIL_KEY_PASSPHRASE_FILE"); f != "" {
		data, err := os.ReadFile(f)
		switch {
		case err != nil:
			return nil, fmt.Errorf("VIGIL_KEY_PASSPHRASE_FILE: %w", err)
		case len(data) > 4096:
			return nil, fmt.Errorf("VIGIL_KEY_PASSPHRASE_FILE %s: larger than 4096 bytes; it holds a passphrase", f)
		}
		pass := bytes.TrimRight(data, "\r\n")
		if len(pass) == 0 {
			return nil, fmt.Errorf("VIGIL_KEY_PASSPHRASE_FILE %s holds no passphrase", f)
		}
		return pass, nil
	}
	if p := os.Getenv("VIGIL_KEY_PASSPHRASE"); p != "" {
		return []byte(p), nil
	}
	return nil, errors.New("the key is encrypted: set VIGIL_KEY_PASSPHRASE_FILE (or VIGIL_KEY_PASSPHRASE)")
}

func loadSigner(flagName, path string) (release.Signer, error) {
	if path == "" {
		return nil, fmt.Errorf("flag -%s is required", flagName)
	}
	if prog, ok := strings.CutPrefix(path, "exec:"); ok {
		s, err := newExecSigner(prog)
		if err != nil {
			return nil, fmt.Errorf("flag -%s: %w", flagName, err)
		}
		return s, nil
	}
	k, err := sig.ReadPrivateKeyFileWith(path, passphrase)
	if err != nil {
		return nil, fmt.Errorf("flag -%s: %w", flagName, err)
	}
	return k, nil
}

func readKeys(flagName string, paths []string) ([]release.Signer, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("flag -%s is required", flagName)
	}
	var out []release.Signer
	for _, p := range paths {
		k, err := loadSigner(flagName, p)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

func readKey(flagName, path string) (release.Signer, error) { return loadSigner(flagName, path) }

// execSigner is a key held by an external program (see above).
type execSigner struct {
	prog string
	pub  *sig.PublicKey
}

func newExecSigner(prog string) (*execSigner, error) {
	out, err := runSigner(prog, nil, "public-key")
	if err != nil {
		return nil, err
	}
	pk, err := sig.ParsePublicKeyPEM(out)
	if err != nil {
		return nil, fmt.Errorf("exec:%s public-key: %w", prog, err)
	}
	return &execSigner{prog: prog, pub: pk}, nil
}

func (e *execSigner) ID() sig.KeyID { return e.pub.ID() }

func (e *execSigner) Public() *sig.PublicKey { return e.pub }

func (e *execSigner) Sign(message []byte, context string) ([]byte, error) {
	if context != "" {
		return nil, fmt.Errorf("exec:%s: only the empty signing context is supported", e.prog)
	}
	s, err := runSigner(e.prog, message, "sign")
	if err != nil {
		return nil, err
	}
	if err := e.pub.Verify(message, s, context); err != nil {
		return nil, fmt.Errorf("exec:%s returned a signature that does not verify under its public key: %w", e.prog, err)
	}
	return s, nil
}

func runSigner(prog string, stdin []byte, arg string) ([]byte, error) {
	// A hardware key may wait for a touch; a minute is enough for a person, not forever.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, arg)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("exec:%s %s: %w: %s", prog, arg, err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}
