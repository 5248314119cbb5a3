package enrolment

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// BenchmarkRegister measures one registration inside the authority, without the network:
// checking the token, verifying the device's proof, signing the record and redeeming the token
// (a locked rewrite of the token file, which holds b.N records by the end). Run with
//
//	go test ./enrolment -run '^$' -bench Register -benchtime 500x
func BenchmarkRegister(b *testing.B) {
	dir := b.TempDir()
	key, _ := sig.GenerateKey(nil)
	tokens, err := pki.OpenTokens(filepath.Join(dir, TokensFile))
	if err != nil {
		b.Fatal(err)
	}
	a, err := New(Config{Key: key, Tokens: tokens})
	if err != nil {
		b.Fatal(err)
	}
	device, _ := sig.GenerateKey(nil)
	reqs := make([]*vigilv1.RegisterRequest, b.N)
	for i := range reqs {
		id := fmt.Sprintf("dev-%d", i)
		tok, err := tokens.Issue(id, time.Hour, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		reqs[i] = &vigilv1.RegisterRequest{DeviceId: id, Token: tok, Region: "eu"}
		if err := SignRegistration(reqs[i], device); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		if _, err := a.register(reqs[i]); err != nil {
			b.Fatal(err)
		}
	}
}
