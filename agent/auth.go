package agent

import (
	"context"
	"unicode"

	"google.golang.org/grpc/codes"

	"github.com/vigilauth/vigil/guard"
)

// caller is who is calling, as a face of the API authenticated them: an application holding
// the install secret (admin), a page holding one session's token, or a page of a listed web
// site (its origin) that has no session yet.
type caller struct {
	admin   bool
	session string
	site    string
	// sess is the session a page's token was issued for: the token acts on that session only,
	// never on a later one started under the same ID.
	sess *session
}

type callerKey struct{}

// adminCaller is the application's caller, boxed once, so that withCaller allocates only the
// context on an application's call.
var adminCaller any = caller{admin: true}

// withCaller returns ctx carrying the authenticated caller.
func withCaller(ctx context.Context, c caller) context.Context {
	if c == (caller{admin: true}) {
		return context.WithValue(ctx, callerKey{}, adminCaller)
	}
	return context.WithValue(ctx, callerKey{}, c)
}

var errNoCredential = apiError(codes.Unauthenticated, ReasonBadSecret, "authorization",
	"missing or wrong credential: send \"authorization: Bearer <install secret or session token>\"", 0)

// authenticate resolves a bearer credential: the install secret or a live session's token.
func (a *Agent) authenticate(credential string) (caller, error) {
	if credential != "" {
		if secretEqual(credential, a.secret) {
			return caller{admin: true}, nil
		}
		a.smu.RLock()
		s := a.tokens[credential]
		a.smu.RUnlock()
		if s != nil {
			return caller{session: s.id, sess: s}, nil
		}
	}
	return caller{}, errNoCredential
}

// errTokenEnded refuses a page's call whose token was issued for a session that has ended
// since the token was checked: a later session of the same ID is not the token's.
var errTokenEnded = apiError(codes.Unauthenticated, ReasonBadSecret, "authorization",
	"this session token's session has ended", 0)

// pageSession returns the session the token of the page calling in ctx was issued for, or
// nil for the application's call.
func pageSession(ctx context.Context) *session {
	c, _ := ctx.Value(callerKey{}).(caller)
	return c.sess
}

// isPage reports whether the caller in ctx is a page (a session token), not the application.
func isPage(ctx context.Context) bool {
	c, _ := ctx.Value(callerKey{}).(caller)
	return !c.admin
}

// allowed checks that the caller in ctx may act on session; admin may act on any, a page only
// on its own, and only in calls a page may make (pageOK).
func allowed(ctx context.Context, session string, pageOK bool) error {
	c, _ := ctx.Value(callerKey{}).(caller)
	switch {
	case c.admin:
		return nil
	case c.site != "":
		return apiError(codes.PermissionDenied, ReasonWrongSession, "authorization", "a site's page without a session token may only start a session", 0)
	case c.session == "":
		return apiError(codes.Unauthenticated, ReasonBadSecret, "authorization", "unauthenticated call", 0)
	case !pageOK:
		return apiError(codes.PermissionDenied, ReasonWrongSession, "authorization", "a session token may not make this call: it needs the install secret", 0)
	case c.session != session:
		return apiError(codes.PermissionDenied, ReasonWrongSession, "session", "this session token belongs to another session", 0)
	}
	return nil
}

// checkName rejects identifiers the guard and the audit log cannot carry.
func checkName(field, v string) error {
	if v == "" {
		return badField(field, "missing")
	}
	if len(v) > guard.MaxIDBytes {
		return badField(field, "%d bytes, limit %d", len(v), guard.MaxIDBytes)
	}
	for _, r := range v {
		if !unicode.IsPrint(r) {
			return badField(field, "contains the non-printable character %U", r)
		}
	}
	return nil
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return "\"" + s + "\""
}
