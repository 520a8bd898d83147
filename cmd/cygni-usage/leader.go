package main

import (
	"context"
	"time"
)

// leaderCheckInterval is how often a leader checks its lease and a follower tries to take it:
// a dead leader's work moves within this interval of its database connection closing.
const leaderCheckInterval = 10 * time.Second

// leaderOnly runs run only while this process holds the leadership called name in the metadata
// store (store.TryLeader): with PostgreSQL shared by several processes, one Deriver and one rule
// evaluation run at a time, so derived series and rule outputs are written once. On SQLite (one
// process) the lease is always granted and run starts at once. A lost lease stops run; it
// starts again when the lease is taken again.
func (p *process) leaderOnly(name string, run func(ctx context.Context) error) func(ctx context.Context) error {
	f, _ := p.leaderGate(name, run)
	return f
}

// leaderGate is leaderOnly that also reports whether this process leads now.
func (p *process) leaderGate(name string, run func(ctx context.Context) error) (func(ctx context.Context) error, func() bool) {
	leader := p.vm.NewGauge(`cygni_leader{name="`+name+`"}`, nil)
	leading := func() bool { return leader.Get() == 1 }
	return func(ctx context.Context) error {
		// A restarted process retries soon at first: a killed leader's lock goes when the
		// database sees its connection close, a moment after the kill.
		retry := time.Second
		standby := false
		for {
			lease, ok, err := p.store.TryLeader(ctx, name)
			switch {
			case err == nil && !ok && !standby:
				p.logger.Info("leadership held by another process; standing by", "name", name)
				standby = true
			case err != nil:
				p.logger.Warn("take the leadership; retrying", "name", name, "err", err, "retry", retry)
			case ok:
				p.logger.Info("leadership taken", "name", name)
				standby = false
				leader.Set(1)
				lctx, cancel := context.WithCancel(ctx)
				errc := make(chan error, 1)
				go func() { errc <- run(lctx) }()
				t := time.NewTicker(leaderCheckInterval)
			held:
				for {
					select {
					case err := <-errc:
						t.Stop()
						cancel()
						lease.Release()
						leader.Set(0)
						return err
					case <-t.C:
						if err := lease.Check(ctx); err != nil {
							p.logger.Warn("leadership lost; stopping until it is taken again", "name", name, "err", err)
							break held
						}
					}
				}
				t.Stop()
				cancel()
				<-errc
				lease.Release()
				leader.Set(0)
				retry = time.Second
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(retry):
			}
			retry = min(2*retry, leaderCheckInterval)
		}
	}, leading
}
