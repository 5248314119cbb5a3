package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/vigilauth/vigil/agent"
)

// An application starts a session when its user signs in and hands the page the session token;
// the page (here, the same process) sends events and asks Authorize with it.
func Example() {
	dir, _ := os.MkdirTemp("", "vigil-agent-example")
	defer os.RemoveAll(dir)
	a, err := agent.New(agent.Config{Dir: dir})
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- a.Run(ctx) }() // the audit log, saving, challenge deadlines
	srv := httptest.NewServer(a.HTTPHandler(agent.HTTPOptions{}))
	defer func() { srv.Close(); stop(); <-done }()

	call := func(credential, method, body string) map[string]any {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/agent/"+method, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+credential)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return m
	}
	st := call(a.Secret(), "StartSession", `{"session": "s-1", "user": "alice"}`)
	fmt.Println("new session:", st["tier"], st["trust"])
	token := st["sessionToken"].(string)
	d := call(token, "Authorize", `{"session": "s-1", "resource": "admin"}`)
	fmt.Println("admin:", d["outcome"])
	d = call(token, "Authorize", `{"session": "s-1", "resource": "transfer"}`)
	fmt.Println("transfer:", d["outcome"])
	e := call(token, "AnswerChallenge", `{"session": "s-1", "challengeId": "1", "passed": true}`)
	fmt.Println("a page answering its own challenge:", e["reason"])
	// Output:
	// new session: monitor 75
	// admin: low_trust
	// transfer: allowed
	// a page answering its own challenge: WRONG_SESSION
}
