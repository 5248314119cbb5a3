package cluster

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/nats-io/nats.go"
)

// A frontend's part of a round is what it can hand over of the updates it stored: the round
// leader, once the round is sealed, asks each frontend that stored updates (Update.Acceptor)
// for it, and the frontend answers once it has done its share of the round's work (package
// coordinator has it give the trustees its updates itself). The question and answer are plain
// NATS request and reply, outside every stream: a part is only ever an optimisation, and a
// leader that gets no answer does the work itself from the round's stream.

// ErrNoAcceptor means no frontend of that name is listening for part requests: it died or
// never served parts.
var ErrNoAcceptor = errors.New("cluster: the frontend does not answer")

// validAcceptor is what an acceptor name may be: one subject token, short.
var validAcceptor = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidAcceptor reports whether name can name a frontend (Stamp.Acceptor, ServeParts).
func ValidAcceptor(name string) bool { return validAcceptor.MatchString(name) }

func (t *Tier) partSubject(acceptor string) string {
	return "vigil.parts." + t.model + "." + acceptor
}

// ServeParts answers the leader's part requests for acceptor with answer, each on a goroutine
// of its own, until ctx ends. answer is given the request's bytes and ctx.
func (t *Tier) ServeParts(ctx context.Context, acceptor string, answer func(ctx context.Context, request []byte) []byte) error {
	if !ValidAcceptor(acceptor) {
		return fmt.Errorf("cluster: frontend name %q: want 1 to 64 letters, digits, '-' or '_'", acceptor)
	}
	sub, err := t.nc.Subscribe(t.partSubject(acceptor), func(m *nats.Msg) {
		go func() {
			if err := m.Respond(answer(ctx, m.Data)); err != nil {
				// Too large, say: a short refusal spares the leader its whole wait, and it
				// does the work itself.
				_ = m.Respond(nil)
			}
		}()
	})
	if err != nil {
		return fmt.Errorf("cluster: serve parts: %w", err)
	}
	<-ctx.Done()
	return sub.Unsubscribe()
}

// AskPart sends request to the frontend acceptor and returns its answer, waiting until ctx
// ends: ErrNoAcceptor if no such frontend listens.
func (t *Tier) AskPart(ctx context.Context, acceptor string, request []byte) ([]byte, error) {
	if !ValidAcceptor(acceptor) {
		return nil, fmt.Errorf("%w: frontend name %q", ErrNoAcceptor, acceptor)
	}
	m, err := t.nc.RequestWithContext(ctx, t.partSubject(acceptor), request)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, fmt.Errorf("%w: %s", ErrNoAcceptor, acceptor)
	case err != nil:
		return nil, fmt.Errorf("cluster: ask frontend %s for its part: %w", acceptor, err)
	case len(m.Data) == 0:
		return nil, fmt.Errorf("cluster: frontend %s could not send its part", acceptor)
	}
	return m.Data, nil
}
