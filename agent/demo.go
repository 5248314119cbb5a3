package agent

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// demoPassword is the demo application's password for every user. The demo stands in for an
// application's own sign-in: only its check of the password is fake.
const demoPassword = "demo"

// demoRoutes serves the demo application: sign-in, a text area, a privileged transfer decided
// on the server with Authorize, and the challenge answer. Its server side holds the install
// secret, as an application's would; the page gets the session token only.
func (a *Agent) demoRoutes(mux *http.ServeMux) {
	admin := withCaller
	mux.HandleFunc("GET /demo/", func(w http.ResponseWriter, r *http.Request) {
		data, _ := webFS.ReadFile("web/demo/index.html")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'")
		w.Write(data)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/demo/", http.StatusFound) })
	mux.HandleFunc("POST /demo/signin", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ User, Password string }
		if !readJSON(w, r, &req) {
			return
		}
		if req.Password != demoPassword {
			writeError(w, apiError(codes.Unauthenticated, "BAD_PASSWORD", "password", "wrong password (the demo's is \"demo\")", 0))
			return
		}
		id, err := newToken()
		if err != nil {
			writeError(w, err)
			return
		}
		st, err := a.StartSession(admin(r.Context(), caller{admin: true}), &vigilv1.StartSessionRequest{Session: "demo-" + id[:12], User: req.User})
		if err != nil {
			writeError(w, err)
			return
		}
		status, _ := protojson.Marshal(st)
		writeJSON(w, map[string]any{"session": st.Session, "token": st.SessionToken, "status": json.RawMessage(status)})
	})
	// The other demo calls come from the page with its session token.
	page := func(w http.ResponseWriter, r *http.Request, body any) (string, bool) {
		if !readJSON(w, r, body) {
			return "", false
		}
		ctx, err := a.httpCaller(r)
		if err != nil {
			writeError(w, err)
			return "", false
		}
		c, _ := ctx.Value(callerKey{}).(caller)
		return c.session, true
	}
	mux.HandleFunc("POST /demo/transfer", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Session string }
		session, ok := page(w, r, &req)
		if !ok {
			return
		}
		d, err := a.Authorize(admin(r.Context(), caller{admin: true}), &vigilv1.AuthorizeRequest{Session: session, Resource: "transfer"})
		if err != nil {
			writeError(w, err)
			return
		}
		writeProto(w, d)
	})
	mux.HandleFunc("POST /demo/answer", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ChallengeID string `json:"challengeId"`
			Password    string
		}
		session, ok := page(w, r, &req)
		if !ok {
			return
		}
		id, err := strconv.ParseUint(req.ChallengeID, 10, 64)
		if err != nil {
			writeError(w, badField("challengeId", "%q is not a challenge ID", req.ChallengeID))
			return
		}
		st, err := a.AnswerChallenge(admin(r.Context(), caller{admin: true}), &vigilv1.AnswerChallengeRequest{Session: session, ChallengeId: id, Passed: req.Password == demoPassword})
		if err != nil {
			writeError(w, err)
			return
		}
		writeProto(w, st)
	})
	mux.HandleFunc("POST /demo/signout", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Session string }
		session, ok := page(w, r, &req)
		if !ok {
			return
		}
		st, err := a.EndSession(admin(r.Context(), caller{admin: true}), &vigilv1.EndSessionRequest{Session: session})
		if err != nil {
			writeError(w, err)
			return
		}
		writeProto(w, st)
	})
}

// readJSON decodes a JSON body. It insists on the JSON content type: a page of another origin
// can only send one after a CORS preflight, which the demo's routes never grant, so no other
// site can sign in to the demo or act in its sessions from a visitor's browser.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		writeError(w, badField("content-type", "%q, want application/json", ct))
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err := dec.Decode(v); err != nil {
		writeError(w, badField("body", "malformed JSON: %v", err))
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func writeProto(w http.ResponseWriter, m proto.Message) {
	data, _ := protojson.Marshal(m)
	w.Header().Set("Content-Type", "application/json")
	w.Write(data)
}
