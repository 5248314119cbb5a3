package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/vigilauth/vigil/audit"
	"github.com/vigilauth/vigil/internal/atomicfile"
)

type headResult struct {
	head audit.SignedHead
	err  error
}

// Run runs the agent's loops until ctx is done: it writes the guard's decisions to the audit
// log, exports a signed head every HeadInterval, fails overdue challenges, and saves changed
// state every SaveInterval and when a session ends. On return it has saved the state with the
// live sessions' standing (the next New restores them), signed and closed the log.
func (a *Agent) Run(ctx context.Context) error {
	drain := time.NewTicker(200 * time.Millisecond)
	defer drain.Stop()
	heads := time.NewTicker(a.cfg.HeadInterval)
	defer heads.Stop()
	save := time.NewTicker(a.cfg.SaveInterval)
	defer save.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return a.shutdown()
		case now := <-drain.C:
			if err := a.queue.Drain(a.log, now); err != nil {
				return fmt.Errorf("agent: audit log: %w", err)
			}
		case <-heads.C:
			if _, err := a.exportHead(); err != nil {
				a.cfg.Logger.Error("exporting the audit head", "err", err)
			}
		case reply := <-a.heads:
			h, err := a.exportHead()
			reply <- headResult{h, err}
		case <-save.C:
			if err := a.saveIfDirty(); err != nil {
				a.cfg.Logger.Error("saving state", "err", err)
			}
		case <-a.saveNow:
			if err := a.saveIfDirty(); err != nil {
				a.cfg.Logger.Error("saving state", "err", err)
			}
		case now := <-tick.C:
			a.g.Tick(now)
			a.smu.RLock()
			live := make([]*session, 0, len(a.sessions))
			for _, s := range a.sessions {
				live = append(live, s)
			}
			a.smu.RUnlock()
			for _, s := range live {
				s.notify()
			}
		}
	}
}

// exportHead drains the queue, signs the log's head and writes it beside the log. Only Run's
// goroutine calls it: it owns the log.
func (a *Agent) exportHead() (audit.SignedHead, error) {
	now := a.cfg.Clock()
	if err := a.queue.Drain(a.log, now); err != nil {
		return audit.SignedHead{}, err
	}
	if err := a.log.Sync(); err != nil {
		return audit.SignedHead{}, err
	}
	h, err := a.log.SignHead()
	if err != nil {
		return audit.SignedHead{}, err
	}
	data, err := json.Marshal(h)
	if err != nil {
		return audit.SignedHead{}, err
	}
	if err := atomicfile.Write(filepath.Join(a.cfg.Dir, AuditHeadFile), append(data, '\n'), 0o644); err != nil {
		return audit.SignedHead{}, err
	}
	f, err := os.OpenFile(filepath.Join(a.cfg.Dir, AuditHeadsFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return audit.SignedHead{}, err
	}
	defer f.Close()
	if _, err := f.Write(append(data, '\n')); err != nil {
		return audit.SignedHead{}, err
	}
	return h, f.Sync()
}

// SignedHead asks Run's loop to drain, sync and sign the audit log's head now, and returns it;
// the log file is complete up to it.
func (a *Agent) SignedHead(ctx context.Context) (audit.SignedHead, error) {
	reply := make(chan headResult, 1)
	select {
	case a.heads <- reply:
	case <-ctx.Done():
		return audit.SignedHead{}, ctx.Err()
	}
	select {
	case r := <-reply:
		return r.head, r.err
	case <-ctx.Done():
		return audit.SignedHead{}, ctx.Err()
	}
}

// AuditPaths returns the audit log's path and its public key file's.
func (a *Agent) AuditPaths() (log, pub string) {
	return filepath.Join(a.cfg.Dir, AuditLogFile), filepath.Join(a.cfg.Dir, AuditPubFile)
}

// shutdown saves the state with the live sessions, which the next start restores, and signs
// and closes the log.
func (a *Agent) shutdown() error {
	a.fitting.Wait()
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	close(a.done)
	err := a.Save()
	if _, herr := a.exportHead(); herr != nil && err == nil {
		err = herr
	}
	if cerr := a.log.Close(a.cfg.Clock()); cerr != nil && err == nil {
		err = cerr
	}
	return err
}
