package agent

import (
	"runtime"
	"sync"
)

// cores is the agent's share of the Go runtime's Ps: serving runs on GOMAXPROCS Ps, and while
// a user's models are being fitted, a fit gets one more P of its own if the device has a core
// to spare, so that an agent serving on fewer cores than it may use (vigil agent --cores 1)
// does not make calls wait for the fit. On one P they would wait up to 10 ms or more: the
// scheduler polls the network only when no goroutine is runnable, or every 10 ms, and a fit is
// always runnable (BenchmarkAuthorizeGRPCProcessStreamRefitting on one core: p99 17-18 ms
// without the lent P, 0.8-0.9 ms with it).
//
// The zero value is ready: it takes the runtime's GOMAXPROCS at its first use, the agent's
// first fit or ServeOn.
type cores struct {
	mu sync.Mutex
	// most is the runtime's own GOMAXPROCS when the agent started: every core, a container's
	// CPU limit, or the GOMAXPROCS environment variable. No P is lent beyond it.
	most    int
	serving int // GOMAXPROCS while no fit runs
	fits    int
}

func (c *cores) initLocked() {
	if c.most == 0 {
		c.most = runtime.GOMAXPROCS(0)
		c.serving = c.most
	}
}

// serveOn sets how many Ps serve, and returns what restores the previous number.
func (c *cores) serveOn(n int) (restore func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.initLocked()
	prev := c.serving
	c.serving = n
	c.applyLocked()
	return func() { c.serveOn(prev) }
}

// lend gives a fit its P for as long as it runs, and returns what gives it back.
func (c *cores) lend() (giveBack func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.initLocked()
	c.fits++
	c.applyLocked()
	return sync.OnceFunc(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.fits--
		c.applyLocked()
	})
}

func (c *cores) applyLocked() {
	n := c.serving
	if c.fits > 0 && n < c.most {
		n++ // one for all the fits: they run one after another on one P when they must share
	}
	if runtime.GOMAXPROCS(0) != n {
		runtime.GOMAXPROCS(n)
	}
}

// ServeOn has the agent's process run on n Ps (runtime.GOMAXPROCS) from now on, and returns
// what restores the previous number. While a user's models are fitted, the fit gets one more,
// up to the runtime's own choice when the agent was created. One P answers an application in
// another process faster: with a second, every goroutine a call wakes also wakes an idle
// thread that spins looking for work and takes the core from the threads that have some
// (docs/agent.md, Figures).
func (a *Agent) ServeOn(n int) (restore func()) { return a.cores.serveOn(n) }
