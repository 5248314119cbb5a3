package agent

import (
	"runtime"
	"syscall"

	"github.com/vigilauth/vigil/models"
)

// lowestNice is the weakest CPU priority Linux gives a thread.
const lowestNice = 19

// inBackground runs fn, a fit of a user's models, with a P lent to it (cores.lend) and on an OS
// thread of its own at the weakest CPU priority, so that the kernel runs the threads answering
// applications, and the application's own, first: a fit then takes only what the device leaves
// idle (BenchmarkAuthorizeGRPCProcessStreamRefitting on two cores: p99 0.81-0.96 ms against
// 1.25-1.36 ms at the same priority). On the only P of a device with one core it runs fn as it
// is: a thread of its own would only add a hand-over at each of the fit's yields (1-core p99
// while refitting 18.4-18.6 ms against 17.6).
func (a *Agent) inBackground(fn func() (*models.UserModel, error)) (*models.UserModel, error) {
	defer a.cores.lend()()
	if runtime.GOMAXPROCS(0) == 1 {
		return fn()
	}
	type result struct {
		m   *models.UserModel
		err error
	}
	done := make(chan result, 1)
	go func() {
		// Never unlocked: the runtime ends the thread with this goroutine, so no other
		// goroutine ever runs at its priority. On Linux a nice value is the thread's own, and
		// who = 0 names the calling thread.
		runtime.LockOSThread()
		_ = syscall.Setpriority(syscall.PRIO_PROCESS, 0, lowestNice) // at worst the fit competes as before
		m, err := fn()
		done <- result{m, err}
	}()
	r := <-done
	return r.m, r.err
}
