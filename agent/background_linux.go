package agent

import (
	"runtime"
	"syscall"
)

// lowestNice is the weakest CPU priority Linux gives a thread.
const lowestNice = 19

// inBackground runs fn on an OS thread of its own at the weakest CPU priority, so that while it
// fits a model the kernel runs the threads answering applications, and the application's own,
// first: a fit then takes only what the device leaves idle. With one P (vigil agent --cores 1)
// it runs fn as it is: the fit and the calls take turns on the P whatever the kernel prefers,
// and a thread of its own would only add a hand-over at each of the fit's yields (1-core p99
// while refitting 18.4-18.6 ms against 17.6).
func inBackground[T any](fn func() (T, error)) (T, error) {
	if runtime.GOMAXPROCS(0) == 1 {
		return fn()
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		// Never unlocked: the runtime ends the thread with this goroutine, so no other
		// goroutine ever runs at its priority. On Linux a nice value is the thread's own, and
		// who = 0 names the calling thread.
		runtime.LockOSThread()
		_ = syscall.Setpriority(syscall.PRIO_PROCESS, 0, lowestNice) // at worst the fit competes as before
		v, err := fn()
		done <- result{v, err}
	}()
	r := <-done
	return r.v, r.err
}
