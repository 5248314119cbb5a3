package agent

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/websocket"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

//go:embed web
var webFS embed.FS

// HTTPOptions sets what the HTTP face serves besides the API.
type HTTPOptions struct {
	// DemoApp serves the demo web application under /demo/.
	DemoApp bool
}

// HTTPHandler returns the HTTP face of the API:
//
//	POST /v1/agent/{StartSession,EndSession,SendEvents,Authorize,AnswerChallenge,Feedback}
//	     protojson request and response bodies, "Authorization: Bearer <secret or token>"
//	GET  /v1/agent/WatchSession?session=S&token=T   WebSocket of SessionStatus (JSON)
//	GET  /v1/agent/AuthorizeStream?token=T   WebSocket: each AuthorizeRequest (JSON) answered
//	     with its AuthorizeResponse, in order; a refused request ends it with the error
//	GET  /v1/history?user=U   the user's trust history, newest last (install secret)
//	GET  /v1/audit/head   a freshly signed head of the audit log (install secret)
//	GET  /v1/audit/log    the audit log, complete up to the head just signed (install secret)
//	GET  /vigil.js        the capture script
//	     /demo/           the demo application, if opts.DemoApp
//
// Errors are JSON {"error", "reason", "field", "code"} with a 4xx status.
func (a *Agent) HTTPHandler(opts HTTPOptions) http.Handler {
	mux := http.NewServeMux()
	unary := map[string]func(context.Context, []byte) (proto.Message, error){
		"StartSession":    call(a.StartSession),
		"EndSession":      call(a.EndSession),
		"SendEvents":      call(a.SendEvents),
		"Authorize":       call(a.Authorize),
		"AnswerChallenge": call(a.AnswerChallenge),
		"Feedback":        call(a.Feedback),
	}
	mux.HandleFunc("POST /v1/agent/{method}", func(w http.ResponseWriter, r *http.Request) {
		fn := unary[r.PathValue("method")]
		if fn == nil {
			writeError(w, apiError(codes.NotFound, "UNKNOWN_METHOD", "", "no method "+quote(r.PathValue("method")), 0))
			return
		}
		ctx, err := a.httpCaller(r)
		if err != nil {
			writeError(w, err)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
		if err != nil {
			writeError(w, apiError(codes.InvalidArgument, ReasonInvalidField, "body", "request body beyond "+strconv.Itoa(MaxBodyBytes)+" bytes", 0))
			return
		}
		resp, err := fn(ctx, body)
		if err != nil {
			writeError(w, err)
			return
		}
		data, _ := protojson.Marshal(resp)
		w.Header().Set("Content-Type", "application/json")
		w.Write(data)
	})
	mux.Handle("GET /v1/agent/WatchSession", websocket.Server{
		// The token in the query authenticates; browsers cannot set headers on a WebSocket.
		Handshake: func(*websocket.Config, *http.Request) error { return nil },
		Handler: func(ws *websocket.Conn) {
			defer ws.Close()
			r := ws.Request()
			c, err := a.authenticate(r.URL.Query().Get("token"))
			if err != nil {
				websocket.JSON.Send(ws, errorBody(err))
				return
			}
			ctx, cancel := context.WithCancel(withCaller(r.Context(), c))
			defer cancel()
			go func() { // a closed connection ends the watch
				var discard []byte
				for websocket.Message.Receive(ws, &discard) == nil {
				}
				cancel()
			}()
			err = a.watch(ctx, r.URL.Query().Get("session"), func(m *vigilv1.SessionStatus) error {
				data, _ := protojson.Marshal(m)
				return websocket.Message.Send(ws, string(data))
			})
			if err != nil {
				websocket.JSON.Send(ws, errorBody(err))
			}
		},
	})
	mux.Handle("GET /v1/agent/AuthorizeStream", websocket.Server{
		Handshake: func(*websocket.Config, *http.Request) error { return nil },
		Handler: func(ws *websocket.Conn) {
			ws.MaxPayloadBytes = MaxBodyBytes
			// The HTTP server's shutdown does not close a hijacked connection: the agent's does.
			ended := make(chan struct{})
			defer close(ended)
			go func() {
				select {
				case <-a.done:
				case <-ended:
				}
				ws.Close()
			}()
			r := ws.Request()
			token := r.URL.Query().Get("token")
			if _, err := a.authenticate(token); err != nil {
				websocket.JSON.Send(ws, errorBody(err))
				return
			}
			authorize := call(a.Authorize)
			for {
				var msg []byte
				if err := websocket.Message.Receive(ws, &msg); err != nil {
					if errors.Is(err, websocket.ErrFrameTooLarge) {
						websocket.JSON.Send(ws, errorBody(apiError(codes.InvalidArgument, ReasonInvalidField, "body",
							"request beyond "+strconv.Itoa(MaxBodyBytes)+" bytes", 0)))
						// The rest of the frame is still unread, and closing over unread data
						// resets the connection before the caller reads the error: the next
						// Receive discards it, bounded by a deadline.
						ws.SetReadDeadline(time.Now().Add(time.Second))
						websocket.Message.Receive(ws, &msg)
					}
					return // closed by the caller or the agent
				}
				c, err := a.authenticate(token) // per request: a token ends with its session
				if err != nil {
					websocket.JSON.Send(ws, errorBody(err))
					return
				}
				resp, err := authorize(withCaller(r.Context(), c), msg)
				if err != nil {
					websocket.JSON.Send(ws, errorBody(err))
					return
				}
				data, _ := protojson.Marshal(resp)
				if err := websocket.Message.Send(ws, string(data)); err != nil {
					return
				}
			}
		},
	})
	mux.HandleFunc("GET /v1/history", func(w http.ResponseWriter, r *http.Request) {
		if !a.httpAdmin(w, r) {
			return
		}
		user := r.URL.Query().Get("user")
		if err := checkName("user", user); err != nil {
			writeError(w, err)
			return
		}
		h := a.History(user)
		if h == nil {
			h = []SessionSummary{}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(h)
	})
	mux.HandleFunc("GET /v1/audit/head", func(w http.ResponseWriter, r *http.Request) {
		if !a.httpAdmin(w, r) {
			return
		}
		h, err := a.SignedHead(r.Context())
		if err != nil {
			writeError(w, status.Error(codes.Internal, err.Error()))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(h)
	})
	mux.HandleFunc("GET /v1/audit/log", func(w http.ResponseWriter, r *http.Request) {
		if !a.httpAdmin(w, r) {
			return
		}
		h, err := a.SignedHead(r.Context())
		if err != nil {
			writeError(w, status.Error(codes.Internal, err.Error()))
			return
		}
		path, _ := a.AuditPaths()
		f, err := os.Open(path)
		if err != nil {
			writeError(w, status.Error(codes.Internal, err.Error()))
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Vigil-Audit-Head-Seq", strconv.FormatUint(h.Seq, 10))
		io.Copy(w, f)
	})
	mux.HandleFunc("GET /vigil.js", func(w http.ResponseWriter, r *http.Request) {
		data, _ := webFS.ReadFile("web/vigil.js")
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(data)
	})
	if opts.DemoApp {
		a.demoRoutes(mux)
	}
	return a.guardHTTP(mux)
}

// call adapts an API method to the HTTP face: protojson in, protojson out.
func call[Req any, PReq interface {
	*Req
	proto.Message
}, Resp proto.Message](fn func(context.Context, PReq) (Resp, error)) func(context.Context, []byte) (proto.Message, error) {
	return func(ctx context.Context, body []byte) (proto.Message, error) {
		req := PReq(new(Req))
		if err := protojson.Unmarshal(body, req); err != nil {
			return nil, apiError(codes.InvalidArgument, ReasonInvalidField, jsonField(err.Error()), "malformed JSON request: "+err.Error(), 0)
		}
		return fn(ctx, req)
	}
}

// jsonField picks the field a protojson error names, if any ("invalid value for double field
// pressMs: 1e400" names pressMs).
func jsonField(msg string) string {
	for _, marker := range []string{"unknown field \"", "for field ", "field \"", " field "} {
		if i := strings.Index(msg, marker); i >= 0 {
			rest := strings.Trim(msg[i+len(marker):], "\" ")
			if j := strings.IndexAny(rest, "\" :"); j > 0 {
				rest = rest[:j]
			}
			return rest
		}
	}
	return "body"
}

// guardHTTP refuses requests whose Host is not the loopback (a web page on another site may
// resolve its own name to 127.0.0.1: DNS rebinding), and answers CORS preflights: pages of any
// origin may call the API, since every call needs a secret or a session token, never a cookie,
// except a listed site's StartSession, which its Origin authenticates.
func (a *Agent) guardHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(r.Host); err == nil {
			host = h
		}
		switch host {
		case "127.0.0.1", "localhost", "::1", "":
		default:
			writeError(w, apiError(codes.PermissionDenied, "NOT_LOOPBACK", "host", "the agent answers requests for 127.0.0.1 or localhost only, not "+quote(r.Host), 0))
			return
		}
		if o := r.Header.Get("Origin"); o != "" && strings.HasPrefix(r.URL.Path, "/v1/agent/") {
			w.Header().Set("Access-Control-Allow-Origin", o)
			w.Header().Set("Vary", "Origin")
			if r.Method == http.MethodOptions {
				w.Header().Set("Access-Control-Allow-Methods", "POST")
				w.Header().Set("Access-Control-Allow-Headers", "authorization, content-type")
				if _, listed := a.listedSite(o); listed && r.Header.Get("Access-Control-Request-Private-Network") == "true" {
					// A listed site's public page asking the device: Chrome's Private Network
					// Access. Other public pages are not told the agent is here.
					w.Header().Set("Access-Control-Allow-Private-Network", "true")
				}
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (a *Agent) httpCaller(r *http.Request) (context.Context, error) {
	cred := bearer(r.Header.Get("Authorization"))
	var c caller
	var err error
	if cred == "" && r.PathValue("method") == "StartSession" {
		c, err = a.siteCaller(r)
	} else {
		c, err = a.authenticate(cred)
	}
	if err != nil {
		return nil, err
	}
	return withCaller(r.Context(), c), nil
}

func (a *Agent) httpAdmin(w http.ResponseWriter, r *http.Request) bool {
	ctx, err := a.httpCaller(r)
	if err == nil {
		err = allowed(ctx, "", false)
	}
	if err != nil {
		writeError(w, err)
		return false
	}
	return true
}

type errorJSON struct {
	Error  string `json:"error"`
	Reason string `json:"reason,omitempty"`
	Field  string `json:"field,omitempty"`
	Code   string `json:"code"`
}

func errorBody(err error) errorJSON {
	st := status.Convert(err)
	e := errorJSON{Error: st.Message(), Code: st.Code().String()}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			e.Reason, e.Field = info.GetReason(), info.GetMetadata()["field"]
		}
	}
	return e
}

var httpCodes = map[codes.Code]int{
	codes.InvalidArgument: http.StatusBadRequest, codes.Unauthenticated: http.StatusUnauthorized,
	codes.PermissionDenied: http.StatusForbidden, codes.NotFound: http.StatusNotFound,
	codes.AlreadyExists: http.StatusConflict, codes.FailedPrecondition: http.StatusConflict,
	codes.ResourceExhausted: http.StatusTooManyRequests, codes.Unavailable: http.StatusServiceUnavailable,
}

func writeError(w http.ResponseWriter, err error) {
	st := status.Convert(err)
	code, ok := httpCodes[st.Code()]
	if !ok {
		code = http.StatusInternalServerError
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(ri.GetRetryDelay().AsDuration().Seconds()+0.999))))
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(errorBody(err))
}
