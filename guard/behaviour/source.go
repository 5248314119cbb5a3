package behaviour

import (
	"fmt"
	"sync"

	"github.com/vigilauth/vigil/guard"
	"github.com/vigilauth/vigil/models"
)

// Source keeps the Scorers of many users and gives them to the guard (guard.Config.Scorers).
// The guard asks once per user; the scorer it gets stays the user's, and a model set later
// (enrolment after the first session, a refit, a new release) reaches it at once. It is safe
// for concurrent use.
type Source struct {
	mu    sync.Mutex
	users map[string]*Scorer
}

var _ guard.ScorerSource = (*Source)(nil)

// NewSource returns an empty Source.
func NewSource() *Source { return &Source{users: map[string]*Scorer{}} }

// ScorerFor implements guard.ScorerSource. A user without a model gets a scorer that gives no
// opinion until SetModel: their sessions are judged on context alone meanwhile.
func (s *Source) ScorerFor(user string) (guard.BehaviourScorer, error) {
	return s.Scorer(user), nil
}

// Scorer returns user's scorer, creating an empty one if needed.
func (s *Source) Scorer(user string) *Scorer {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := s.users[user]
	if sc == nil {
		sc = &Scorer{}
		s.users[user] = sc
	}
	return sc
}

// SetMouseModel gives user the mouse model m (nil removes it).
func (s *Source) SetMouseModel(user string, m *models.UserModel) error {
	if user == "" {
		return fmt.Errorf("behaviour: empty user")
	}
	return s.Scorer(user).SetMouseModel(m)
}

// SetModel gives user the keystroke model m (nil removes it).
func (s *Source) SetModel(user string, m *models.UserModel) error {
	if user == "" {
		return fmt.Errorf("behaviour: empty user")
	}
	return s.Scorer(user).SetModel(m)
}
