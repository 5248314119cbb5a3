package agent

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/vigilauth/vigil/agent/attest"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// A web site served from elsewhere cannot hold the install secret, so its pages start their
// sessions themselves: the browser's Origin header, which a page cannot set, says which listed
// site (Config.Sites) is asking. The site's sessions and users are named within its origin,
// so it reaches only its own, and its server trusts a decision only as the device signed it
// for the site (package attest).

// sitePrefix begins the names of a site's sessions and users: "site:ORIGIN/NAME".
const sitePrefix = "site:"

// MaxSiteSessions is how many live sessions one site's pages may hold. A page starting one
// more ends the site's oldest: a page closed without signing out leaves its session behind,
// and the site's pages must not fill the agent's MaxSessions for the device's applications.
const MaxSiteSessions = 16

// MaxSiteUsers is how many users one site's pages may name on the device.
const MaxSiteUsers = 32

// Bounds of a site's nonce: enough to be unguessable, short enough for the audit of a call.
const (
	MinNonceBytes = 16
	MaxNonceBytes = 128
)

// siteLimits are the allowances a listed site's pages share: a page that ends its session and
// starts another gets no fresh one, so its script cannot fill the audit log with decisions, or
// with starts and ends, by starting over.
type siteLimits struct {
	ask   *bucket // the pages' Authorize calls (PageAuthorizePerSecond)
	start *bucket // the pages' StartSession calls (SiteStartsPerSecond)
}

// siteAsk returns the Authorize allowance of session id: its site's, if a listed site's page
// started it, else nil (a session's own).
func (a *Agent) siteAsk(id string) *bucket {
	origin, _, ok := splitSiteName(id)
	if l := a.siteLimits[origin]; ok && l != nil {
		return l.ask
	}
	return nil
}

// ReasonNotASite refuses a page's StartSession from an origin the device's owner did not list.
const ReasonNotASite = "NOT_A_SITE"

func siteName(origin, name string) string { return sitePrefix + origin + "/" + name }

// splitSiteName returns the origin and the site's own name of a site's session or user.
func splitSiteName(id string) (origin, name string, ok bool) {
	rest, ok := strings.CutPrefix(id, sitePrefix)
	if !ok {
		return "", "", false
	}
	scheme, after, ok := strings.Cut(rest, "://")
	if !ok {
		return "", "", false
	}
	host, name, ok := strings.Cut(after, "/")
	return scheme + "://" + host, name, ok
}

// unlistedSite reports whether id names a session of a site the agent no longer lists.
func (a *Agent) unlistedSite(id string) bool {
	origin, _, ok := splitSiteName(id)
	return strings.HasPrefix(id, sitePrefix) && (!ok || a.sites[origin] == nil)
}

// listedSite returns the canonical form of origin, as a browser sent it, if it is a listed
// site's.
func (a *Agent) listedSite(origin string) (string, bool) {
	o, err := attest.Origin(origin)
	return o, err == nil && a.sites[o] != nil
}

// siteCaller is the caller of a request without a credential: the listed site its Origin
// names, if any.
func (a *Agent) siteCaller(r *http.Request) (caller, error) {
	o := r.Header.Get("Origin")
	if o == "" {
		return caller{}, errNoCredential
	}
	if origin, ok := a.listedSite(o); ok {
		return caller{site: origin}, nil
	}
	return caller{}, apiError(codes.PermissionDenied, ReasonNotASite, "origin",
		"pages of "+quote(o)+" may not start sessions: the device's owner lists the sites that may (vigil agent --site ORIGIN)", 0)
}

// startSiteSession opens a session for a page of site, named within the site's origin.
func (a *Agent) startSiteSession(site string, req *vigilv1.StartSessionRequest) (*vigilv1.SessionStatus, error) {
	for _, f := range []struct{ field, name string }{{"session", req.Session}, {"user", req.User}} {
		// The site's own name first: the prefixed one is never empty.
		if err := checkName(f.field, f.name); err != nil {
			return nil, err
		}
		if err := checkName(f.field, siteName(site, f.name)); err != nil {
			return nil, err
		}
	}
	if err := a.admitSiteUser(site, siteName(site, req.User)); err != nil {
		return nil, err
	}
	// Spent only by a start the guard will see: a refused one leaves no record to bound.
	if ok, wait := a.siteLimits[site].start.take(time.Now()); !ok {
		return nil, apiError(codes.ResourceExhausted, ReasonRateLimited, "", "too many sessions started by this site's pages: at most "+
			strconv.Itoa(SiteStartsPerSecond)+" per second", wait)
	}
	m, err := a.startSession(siteName(site, req.Session), siteName(site, req.User), site)
	if err != nil {
		return nil, err
	}
	m.SiteKey = a.sites[site].PublicKey()
	return m, nil
}

// admitSiteUser refuses a user new to the device once site has MaxSiteUsers: every user is
// kept in the agent's state, and a site's page names them as it likes. An admitted user is
// added to the state under the same lock, so that concurrent starts cannot all count the
// same room.
func (a *Agent) admitSiteUser(site, user string) error {
	prefix := siteName(site, "")
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.state.Users[user] != nil {
		return nil
	}
	n := 0
	for u := range a.state.Users {
		if strings.HasPrefix(u, prefix) {
			n++
		}
	}
	if n >= MaxSiteUsers {
		return apiError(codes.ResourceExhausted, ReasonTooMany, "user", "the site has its maximum of "+strconv.Itoa(MaxSiteUsers)+" users on this device", 0)
	}
	a.userState(user)
	return nil
}

// evictSiteSessionLocked makes room for one more of site's sessions when it holds
// MaxSiteSessions: it removes the oldest from the live sessions, for the caller to end once
// a.smu is released. a.smu must be held, so that concurrent starts cannot all count the same
// room.
func (a *Agent) evictSiteSessionLocked(site string) *session {
	prefix := siteName(site, "")
	var oldest *session
	n := 0
	for id, s := range a.sessions {
		if strings.HasPrefix(id, prefix) {
			n++
			if oldest == nil || s.start.Before(oldest.start) {
				oldest = s
			}
		}
	}
	if n < MaxSiteSessions {
		return nil
	}
	delete(a.sessions, oldest.id)
	delete(a.tokens, oldest.token)
	return oldest
}

// endEvicted ends a session evictSiteSessionLocked removed.
func (a *Agent) endEvicted(s *session) {
	s.markEnded()
	st, _ := a.g.Status(s.id)
	if err := a.g.CloseSession(s.id, a.cfg.Clock()); err != nil {
		a.cfg.Logger.Warn("ending a site's oldest session", "session", s.id, "err", err)
	}
	a.cfg.Logger.Info("session ended for a newer one of its site", "session", s.id)
	a.finish(s, st)
	s.notify()
}

// siteSigner returns the key that signs the decisions of session id, which a listed site's
// page started, with the nonce its server gave.
func (a *Agent) siteSigner(id, nonce string) (*attest.Signer, error) {
	if len(nonce) < MinNonceBytes || len(nonce) > MaxNonceBytes {
		return nil, badField("nonce", "%d bytes, want %d to %d", len(nonce), MinNonceBytes, MaxNonceBytes)
	}
	for i := 0; i < len(nonce); i++ {
		if nonce[i] <= ' ' || nonce[i] > '~' {
			return nil, badField("nonce", "byte %d is not printable ASCII", i)
		}
	}
	origin, _, _ := splitSiteName(id)
	if signer := a.sites[origin]; signer != nil {
		return signer, nil
	}
	return nil, badField("nonce", "only a session a listed site's page started gets a signed decision")
}

// attestation signs the decision m on req for the site whose page started session s.
func (a *Agent) attestation(site *attest.Signer, s *session, req *vigilv1.AuthorizeRequest, m *vigilv1.AuthorizeResponse) (*vigilv1.SignedDecision, error) {
	_, session, _ := splitSiteName(req.Session)
	var user string
	if s != nil {
		_, user, _ = splitSiteName(s.user)
	}
	var started time.Time
	var enrolled bool
	if s != nil {
		started, enrolled = s.start.UTC(), s.rt.enrolled.Load()
	}
	payload, sig, err := site.Sign(attest.Decision{Session: session, User: user, SessionStart: started, Enrolled: enrolled, Resource: req.Resource, Nonce: req.Nonce,
		Allow: m.Allow, Outcome: m.Outcome, Tier: m.Tier, Trust: m.Trust, Required: m.Required, At: a.cfg.Clock().UTC()})
	if err != nil {
		return nil, apiError(codes.Internal, "", "", "signing the decision: "+err.Error(), 0)
	}
	return &vigilv1.SignedDecision{Payload: payload, Signature: sig}, nil
}

// loadSites derives the device's key for each listed site.
func loadSites(key []byte, origins []string) (map[string]*attest.Signer, error) {
	sites := make(map[string]*attest.Signer, len(origins))
	for _, o := range origins {
		s, err := attest.NewSigner(key, o)
		if err != nil {
			return nil, err
		}
		sites[o] = s
	}
	return sites, nil
}
