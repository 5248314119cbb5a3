//go:build !linux

package agent

import "github.com/vigilauth/vigil/models"

// inBackground runs fn, a fit of a user's models, with a P lent to it (cores.lend): only Linux
// gives a thread a CPU priority of its own.
func (a *Agent) inBackground(fn func() (*models.UserModel, error)) (*models.UserModel, error) {
	defer a.cores.lend()()
	return fn()
}
