package agent

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// TestAttackEndedTokenOnLaterSession plays a page whose call was authenticated with its token
// just before its session ended and the application started another under the same ID (for
// another user): the call must not act on the later session. Before, the token named only the
// session's ID, so the page's events, decisions, watch and sign-out reached the later session.
func TestAttackEndedTokenOnLaterSession(t *testing.T) {
	a, err := New(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	admin := withCaller(context.Background(), caller{admin: true})
	first, err := a.StartSession(admin, &vigilv1.StartSessionRequest{Session: "x", User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.authenticate(first.SessionToken)
	if err != nil {
		t.Fatal(err)
	}
	page := withCaller(context.Background(), c) // checked, then:
	if _, err := a.EndSession(admin, &vigilv1.EndSessionRequest{Session: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.StartSession(admin, &vigilv1.StartSessionRequest{Session: "x", User: "bob"}); err != nil {
		t.Fatal(err)
	}
	refused := func(what string, err error) {
		t.Helper()
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s with the ended session's token on the later session: %v, want Unauthenticated", what, err)
		}
	}
	_, err = a.SendEvents(page, &vigilv1.SendEventsRequest{Session: "x"})
	refused("SendEvents", err)
	_, err = a.Authorize(page, &vigilv1.AuthorizeRequest{Session: "x", Resource: "profile.read"})
	refused("Authorize", err)
	watching, stop := context.WithTimeout(page, 3*time.Second) // a watch of the later session would run on
	defer stop()
	refused("WatchSession", a.watch(watching, "x", func(*vigilv1.SessionStatus) error { return nil }))
	if _, err := a.EndSession(page, &vigilv1.EndSessionRequest{Session: "x"}); err == nil {
		t.Error("EndSession with the ended session's token ended the later session")
	}
	if _, err := a.Authorize(admin, &vigilv1.AuthorizeRequest{Session: "x", Resource: "profile.read"}); err != nil {
		t.Fatal(err)
	}
	if st, err := a.g.Status("x"); err != nil || st.User != "bob" {
		t.Errorf("the later session in the guard: %+v, %v", st, err)
	}
}
