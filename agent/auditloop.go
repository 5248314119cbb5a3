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

// drainDelay is how long Run lets decisions gather in the queue before writing them to the log:
// a burst of calls costs one write and flush.
const drainDelay = 200 * time.Millisecond

// Run runs the agent's loops until ctx is done: it writes the guard's decisions to the audit
// log, exports a signed head every HeadInterval when the log has grown, fails overdue
// challenges, and saves changed state every SaveInterval and when a session ends. On return it
// has saved the state with the live sessions' standing (the next New restores them), signed and
// closed the log.
//
// An idle device should not pay for the agent, so the loop sleeps while nothing happens: the
// log is written drainDelay after the guard queues something and again when a checkpoint falls
// due, and the one-second tick runs only while sessions are open. Idle, it wakes only for the
// head and save intervals.
func (a *Agent) Run(ctx context.Context) error {
	drain := time.NewTimer(time.Hour)
	drain.Stop()
	defer drain.Stop()
	var drainAt time.Time // when drain fires; zero when it is stopped
	arm := func(at time.Time) {
		if drainAt.IsZero() || at.Before(drainAt) {
			drain.Reset(time.Until(at))
			drainAt = at
		}
	}
	heads := time.NewTicker(a.cfg.HeadInterval)
	defer heads.Stop()
	save := time.NewTicker(a.cfg.SaveInterval)
	defer save.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	ticking := true
	for {
		select {
		case <-ctx.Done():
			return a.shutdown()
		case <-a.queue.Queued():
			arm(time.Now().Add(drainDelay))
		case now := <-drain.C:
			drainAt = time.Time{}
			if err := a.queue.Drain(a.log, now); err != nil {
				return fmt.Errorf("agent: audit log: %w", err)
			}
			if at, ok := a.log.CheckpointAt(); ok {
				arm(maxTime(at, now.Add(drainDelay)))
			}
		case <-heads.C:
			if _, err := a.exportHead(false); err != nil {
				a.cfg.Logger.Error("exporting the audit head", "err", err)
			}
		case reply := <-a.heads:
			h, err := a.exportHead(true)
			reply <- headResult{h, err}
		case <-save.C:
			if err := a.saveIfDirty(); err != nil {
				a.cfg.Logger.Error("saving state", "err", err)
			}
		case <-a.saveNow:
			if err := a.saveIfDirty(); err != nil {
				a.cfg.Logger.Error("saving state", "err", err)
			}
		case <-a.opened:
			if !ticking {
				tick.Reset(time.Second)
				ticking = true
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
			if len(live) == 0 {
				tick.Stop()
				ticking = false
			}
		}
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// exportHead drains the queue, signs the log's head and, when the head is not the one exported
// last, writes it beside the log: a head already written proves nothing more the second time,
// and an idle agent appended a 4.6 kB line a minute (6.6 MB a day). With always it signs the
// head even when unchanged, for a caller who asked for one (SignedHead). Only Run's goroutine
// calls it: it owns the log.
func (a *Agent) exportHead(always bool) (audit.SignedHead, error) {
	now := a.cfg.Clock()
	if err := a.queue.Drain(a.log, now); err != nil {
		return audit.SignedHead{}, err
	}
	head := a.log.Head()
	changed := head.Seq != a.exported.Seq || head.Hash != a.exported.Hash
	if !changed && !always {
		return audit.SignedHead{}, nil
	}
	if err := a.log.Sync(); err != nil {
		return audit.SignedHead{}, err
	}
	h, err := a.log.SignHead()
	if err != nil {
		return audit.SignedHead{}, err
	}
	if !changed {
		return h, nil
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
	if err := f.Sync(); err != nil {
		return audit.SignedHead{}, err
	}
	a.exported = head
	a.mu.Lock()
	a.state.AuditHead = &head
	a.dirty = true
	a.mu.Unlock()
	a.saveSoon()
	return h, nil
}

// checkAuditLog refuses an audit log that does not reach, unchanged, the head this agent
// exported last (State.AuditHead): whoever can write the agent's files could otherwise cut
// decisions off its end, and the agent would sign the shorter chain at its next export.
func (a *Agent) checkAuditLog() error {
	want := a.state.AuditHead
	if want == nil {
		return nil
	}
	a.exported = *want
	f, err := os.Open(filepath.Join(a.cfg.Dir, AuditLogFile))
	if err != nil {
		return fmt.Errorf("agent: audit log: %w", err)
	}
	defer f.Close()
	if _, err := audit.VerifyAgainst(f, a.signer.Public(), *want); err != nil {
		return fmt.Errorf("%w: the audit log does not hold the record %d this agent signed last: %w", ErrState, want.Seq, err)
	}
	return nil
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
	if _, herr := a.exportHead(false); herr != nil && err == nil {
		err = herr
	}
	if cerr := a.log.Close(a.cfg.Clock()); cerr != nil && err == nil {
		err = cerr
	}
	return err
}
