package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigilauth/vigil/crypto/sig"
)

func runReleaseKeygen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("release keygen", stdout, envPassphrase...)
	out := fs.String("out", "", "write the key pair to `PREFIX`.key (mode 0600) and PREFIX.pub; missing directories are created")
	unencrypted := fs.Bool("unencrypted", false, "write the private key unencrypted: only for online keys (timestamp, release) that a coordinator reads unattended")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: vigil release keygen --out PREFIX [--unencrypted]\n\nThe private key is encrypted under the passphrase in the file $VIGIL_KEY_PASSPHRASE_FILE\n(or $VIGIL_KEY_PASSPHRASE): scrypt and XChaCha20-Poly1305 (see crypto/sig/keyenc.go).")
		printFlags(fs.Output(), fs)
		printEnv(fs.Output(), envPassphrase)
	}
	if err := parseReleaseFlags(fs, args, stdout); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	fail := func(err error) error { return usageErr(fmt.Errorf("release keygen: %w", err)) }
	if *out == "" {
		return fail(errors.New("flag -out is required"))
	}
	if strings.HasSuffix(*out, "/") || filepath.Base(*out) == "." {
		return fail(fmt.Errorf("flag -out %s: want a file name prefix such as keys/release, not a directory", *out))
	}
	keyPath, pubPath := *out+".key", *out+".pub"
	for _, p := range []string{keyPath, pubPath} {
		if _, err := os.Stat(p); err == nil {
			return fail(fmt.Errorf("flag -out: %s already exists; refusing to overwrite a key", p))
		}
	}
	var pass []byte
	if !*unencrypted {
		var err error
		if pass, err = passphrase(); err != nil {
			return fail(fmt.Errorf("%w (or give -unencrypted for an online key)", err))
		}
	}
	if err := os.MkdirAll(filepath.Dir(keyPath), 0o700); err != nil {
		return fail(fmt.Errorf("flag -out: %w", err))
	}
	k, err := sig.GenerateKey(nil)
	if err != nil {
		return fmt.Errorf("release keygen: %w", err)
	}
	if *unencrypted {
		err = sig.WritePrivateKeyFile(keyPath, k)
	} else {
		err = sig.WriteEncryptedPrivateKeyFile(keyPath, k, pass)
	}
	if err != nil {
		return fail(fmt.Errorf("flag -out: %w", err))
	}
	if err := sig.WritePublicKeyFile(pubPath, k.Public()); err != nil {
		return fail(fmt.Errorf("flag -out: %w", err))
	}
	enc := "encrypted"
	if *unencrypted {
		enc = "UNENCRYPTED"
	}
	fmt.Fprintf(stdout, "key id      %s\nprivate key %s (%s)\npublic key  %s\n", k.ID(), keyPath, enc, pubPath)
	return nil
}
