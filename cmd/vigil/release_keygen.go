package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/vigilauth/vigil/crypto/sig"
)

func runReleaseKeygen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("release keygen", stderr)
	out := fs.String("out", "", "write the key pair to `PREFIX`.key (mode 0600) and PREFIX.pub")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("release keygen: flag -out is required")
	}
	keyPath, pubPath := *out+".key", *out+".pub"
	for _, p := range []string{keyPath, pubPath} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("release keygen: %s already exists; refusing to overwrite a key", p)
		}
	}
	k, err := sig.GenerateKey(nil)
	if err != nil {
		return fmt.Errorf("release keygen: %w", err)
	}
	if err := sig.WritePrivateKeyFile(keyPath, k); err != nil {
		return fmt.Errorf("release keygen: %w", err)
	}
	if err := sig.WritePublicKeyFile(pubPath, k.Public()); err != nil {
		return fmt.Errorf("release keygen: %w", err)
	}
	fmt.Fprintf(stdout, "key id      %s\nprivate key %s\npublic key  %s\n", k.ID(), keyPath, pubPath)
	return nil
}
