// Package attest is how a web site's server trusts what a Vigil agent decided on the user's
// device. A site the device's owner lists (`vigil agent --site ORIGIN`) starts sessions from its
// own pages; before a privileged action its server issues a one-time nonce, the page asks the
// agent's Authorize with it, and relays the signed decision. The server checks it with Verify
// against the device's key for the site, which it kept for the user when the device first
// started a session (trust on first use, as a passkey's registration).
//
// Each site gets a key of its own, derived from the device's secret key and the site's origin,
// so that two sites comparing keys cannot tell that they are talking to the same device.
package attest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/idna"

	"github.com/vigilauth/vigil/crypto/sig"
)

// signatureContext separates these signatures from every other use of ML-DSA in Vigil.
const signatureContext = "vigil site decision v1"

// MaxAge is how old a decision Verify accepts by default.
const MaxAge = time.Minute

// Errors callers branch on.
var (
	// ErrSignature means the decision was not signed by the given key: forged or altered.
	ErrSignature = errors.New("attest: signature does not verify")
	// ErrMismatch means a genuine decision about something else: another site, session,
	// resource or nonce (a replay), or one too old.
	ErrMismatch = errors.New("attest: decision is not for this request")
	// ErrOrigin means a malformed site origin.
	ErrOrigin = errors.New("attest: bad origin")
)

// Decision is what the agent decided, as it signed it.
type Decision struct {
	Origin  string `json:"origin"`
	Session string `json:"session"` // the site's own name for the session
	User    string `json:"user"`    // the site's own name for the user
	// SessionStart is when the agent started the session: a page that started it again
	// (and so shed its low trust) gives a later one than the server's sign-in.
	SessionStart time.Time `json:"session_start"`
	// Enrolled says whether the user's typing model is enrolled on the device; until it is,
	// trust rests on context alone.
	Enrolled bool   `json:"enrolled"`
	Resource string `json:"resource"`
	Nonce    string `json:"nonce"`
	Allow    bool   `json:"allow"`
	// Outcome is the guard's outcome ("allowed", "low_trust", "revoked", ...) and Tier the
	// session's tier ("monitor", "soft_challenge", ...).
	Outcome  string    `json:"outcome"`
	Tier     string    `json:"tier"`
	Trust    float64   `json:"trust"`
	Required float64   `json:"required"`
	At       time.Time `json:"at"`
}

// Expect is what the site's server knows of the request a decision must answer. Every field
// but Now and MaxAge is required.
type Expect struct {
	Origin, Session, User, Resource, Nonce string
	// SignedIn is when the server signed the user in to Session, which its page then started
	// with the agent: a decision from a session the agent started more than MaxAge away from
	// it is refused, since a page that starts its session again sheds what the agent had
	// seen (a revocation, low trust). Sign the user in again then, with the site's own
	// factors.
	SignedIn time.Time
	// Now is the server's time (zero: time.Now); MaxAge how old a decision may be (zero:
	// MaxAge). The device's clock is trusted within it.
	Now    time.Time
	MaxAge time.Duration
}

// Verify checks that payload is a decision signed by publicKey (the raw ML-DSA-65 key the
// device gave the site) for exactly the request want describes, in the session the agent
// started at the user's sign-in, and returns it. Whether the
// decision allows the action is the caller's to read: a genuine refusal verifies too.
func Verify(publicKey, payload, signature []byte, want Expect) (Decision, error) {
	pk, err := sig.ParsePublicKey(publicKey)
	if err != nil {
		return Decision{}, fmt.Errorf("attest: the device's key: %w", err)
	}
	if err := pk.Verify(payload, signature, signatureContext); err != nil {
		return Decision{}, ErrSignature
	}
	var d Decision
	if err := json.Unmarshal(payload, &d); err != nil {
		return Decision{}, fmt.Errorf("attest: signed payload: %w", err)
	}
	now, maxAge := want.Now, want.MaxAge
	if now.IsZero() {
		now = time.Now()
	}
	if maxAge == 0 {
		maxAge = MaxAge
	}
	for _, f := range []struct{ name, got, want string }{
		{"origin", d.Origin, want.Origin},
		{"session", d.Session, want.Session},
		{"user", d.User, want.User},
		{"resource", d.Resource, want.Resource},
		{"nonce", d.Nonce, want.Nonce},
	} {
		if f.want == "" || f.got != f.want {
			return Decision{}, fmt.Errorf("%w: %s %q, want %q", ErrMismatch, f.name, f.got, f.want)
		}
	}
	if age := now.Sub(d.At); age > maxAge || age < -maxAge {
		return Decision{}, fmt.Errorf("%w: decided at %s, %s from now (at most %s)", ErrMismatch, d.At.Format(time.RFC3339), age.Round(time.Second), maxAge)
	}
	if want.SignedIn.IsZero() {
		return Decision{}, fmt.Errorf("%w: the server's sign-in time is missing", ErrMismatch)
	}
	if gap := d.SessionStart.Sub(want.SignedIn); gap > maxAge || gap < -maxAge {
		return Decision{}, fmt.Errorf("%w: the agent's session started %s from the sign-in (at most %s): the page started it again",
			ErrMismatch, gap.Round(time.Second), maxAge)
	}
	return d, nil
}

// Signer signs a device's decisions for one site.
type Signer struct {
	origin string
	key    *sig.PrivateKey
}

// NewSigner derives the device's key for origin (canonical, see Origin) from its secret key.
func NewSigner(deviceKey []byte, origin string) (*Signer, error) {
	if len(deviceKey) < 32 {
		return nil, fmt.Errorf("attest: device key of %d bytes, want at least 32", len(deviceKey))
	}
	mac := hmac.New(sha256.New, deviceKey)
	mac.Write([]byte("vigil site key v1\x00" + origin))
	key, err := sig.NewKeyFromSeed(mac.Sum(nil))
	if err != nil {
		return nil, err
	}
	return &Signer{origin: origin, key: key}, nil
}

// PublicKey returns the raw ML-DSA-65 public key the site keeps for the device.
func (s *Signer) PublicKey() []byte { return s.key.Public().Bytes() }

// Sign returns the payload of d, for the signer's site, and its signature.
func (s *Signer) Sign(d Decision) (payload, signature []byte, err error) {
	d.Origin = s.origin
	payload, err = json.Marshal(d)
	if err != nil {
		return nil, nil, err
	}
	signature, err = s.key.Sign(payload, signatureContext)
	return payload, signature, err
}

// Origin returns the canonical form of a web origin, as browsers send it in the Origin header
// ("https://bank.example", "http://127.0.0.1:8080"): https, or http for the loopback only (a
// page served over plain HTTP from elsewhere could be anyone's), and no path, query or user.
// A host not in ASCII is given in its punycode form ("https://bücher.example" is
// "https://xn--bcher-kva.example"), which is what browsers send.
func Origin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%w %q: %v", ErrOrigin, s, err)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return "", fmt.Errorf("%w %q: want scheme://host[:port] and nothing else", ErrOrigin, s)
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if !ascii(host) {
		if host, err = idna.Lookup.ToASCII(host); err != nil {
			return "", fmt.Errorf("%w %q: host is not a domain name: %v", ErrOrigin, s, err)
		}
	}
	switch {
	case scheme == "https" && port == "443", scheme == "http" && port == "80":
		port = ""
	}
	switch scheme {
	case "https":
	case "http":
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return "", fmt.Errorf("%w %q: plain http only for the loopback; a site must use https", ErrOrigin, s)
		}
	default:
		return "", fmt.Errorf("%w %q: scheme %q, want https", ErrOrigin, s, u.Scheme)
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, nil
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
