package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/cygni/usage/collector"
	"github.com/cygni/usage/internal/clock"
	"github.com/cygni/usage/tsdb"
)

// collectCmd is `cygni-usage collect --from T --to T`: a one-shot backfill.
type collectCmd struct {
	from, to string
}

func registerCollect(app *kingpin.Application) (string, command) {
	c := &collectCmd{}
	cl := app.Command("collect", "Read a window from CloudWatch into the TSDB once (a backfill), with a progress bar. Re-reading stored periods writes only corrections.")
	cl.Flag("from", "Start of the window, RFC 3339 (2024-01-31T00:00:00Z) or YYYY-MM-DD (UTC midnight).").Required().StringVar(&c.from)
	cl.Flag("to", "End of the window (exclusive), RFC 3339 or YYYY-MM-DD; at most now.").Required().StringVar(&c.to)
	return cl.FullCommand(), c
}

// parseTimeFlag parses an RFC 3339 time or a YYYY-MM-DD date (midnight UTC).
func parseTimeFlag(flag, s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%s %q: want an RFC 3339 time (2024-01-31T00:00:00Z) or a date (2024-01-31)", flag, s)
}

func (c *collectCmd) run(g *globals) error {
	from, err := parseTimeFlag("--from", c.from)
	if err != nil {
		return err
	}
	to, err := parseTimeFlag("--to", c.to)
	if err != nil {
		return err
	}
	clk, err := clock.FromEnv()
	if err != nil {
		return err
	}
	now := clk().UTC().Truncate(time.Minute)
	if to.After(now) {
		to = now
	}
	if !from.Before(to) {
		return fmt.Errorf("--from %s is not before --to %s (the end is capped at now, %s)",
			from.Format(time.RFC3339), to.Format(time.RFC3339), now.Format(time.RFC3339))
	}
	cfg, err := loadConfig(g)
	if err != nil {
		return err
	}
	p, err := open(cfg, openOptions{})
	if err != nil {
		return err
	}
	defer p.close()
	bars := &progressBars{t: p.term, always: true}
	col, err := p.newCollector(bars.update)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.Storage.Mode == tsdb.ModeRemote {
		// Other processes share the series: this backfill must not race the running collector
		// of its shard or the Deriver (both read what is stored and write the difference).
		for _, name := range []string{"collector/" + col.WatermarkKey(), "deriver"} {
			lease, ok, err := p.store.TryLeader(ctx, name)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("collect: the %s leadership is held by a running process sharing this store (storage.mode: remote); stop it, then run collect again", name)
			}
			defer lease.Release()
		}
	}
	if err := col.Collect(ctx, from, to); err != nil {
		return err
	}
	// The hourly series of the window may have been derived before this backfill (by a server
	// that ran earlier): derive them again from what is stored now. It writes only differences.
	_, d, err := p.newQuery(nil)
	if err != nil {
		return err
	}
	if err := d.Derive(ctx, from, to); err != nil {
		return fmt.Errorf("derive the hourly series of the backfilled window: %w", err)
	}
	return nil
}

// newCollector builds the collector from the configuration and the standard AWS configuration
// (which the simulated AWS of the demo sets through the environment).
func (p *process) newCollector(onProgress func(collector.Progress)) (*collector.Collector, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var (
		clients = &collector.Clients{}
		targets []collector.Target
	)
	if ts := p.cfg.AWS.Targets; len(ts) > 0 {
		// Several accounts and regions: each target's role is assumed from the standard chain.
		base, err := collector.NewBaseConfig(ctx, p.logger, p.cfg.AWS.Region, p.vm)
		if err != nil {
			return nil, err
		}
		tcs := make([]collector.TargetConfig, len(ts))
		for i, t := range ts {
			tcs[i] = collector.TargetConfig{RoleARN: t.RoleARN, ExternalID: t.ExternalID, Region: t.Region}
		}
		if targets, err = collector.NewTargets(base, tcs); err != nil {
			return nil, err
		}
		clients.Region = p.cfg.AWS.Region
		if clients.Region == "" {
			clients.Region = ts[0].Region
		}
	} else {
		var err error
		if clients, err = collector.NewClients(ctx, p.logger, p.cfg.AWS.Region, p.vm); err != nil {
			return nil, err
		}
	}
	cc := p.cfg.Collector
	shard, shards := cc.ShardOf()
	var watermarks collector.WatermarkStore
	if p.cfg.Storage.Mode == tsdb.ModeRemote {
		// The series are shared: so is the watermark, and a collector may restart elsewhere.
		watermarks = p.store
	}
	return collector.New(p.logger, p.reg, collector.Options{
		Shard:             shard,
		Shards:            shards,
		Watermarks:        watermarks,
		Targets:           targets,
		CloudWatch:        clients.CloudWatch,
		ECS:               clients.ECS,
		Storage:           p.db,
		Region:            clients.Region,
		DataDir:           p.cfg.DataDir,
		Metrics:           p.vm,
		Interval:          cc.Interval.D(),
		Lookback:          cc.Lookback.D(),
		Backfill:          cc.Backfill.D(),
		Chunk:             cc.Chunk.D(),
		Concurrency:       cc.Concurrency,
		MaxQueriesPerCall: cc.MaxQueriesPerCall,
		RetryMaxElapsed:   cc.RetryMaxElapsed.D(),

		RightSizingInterval:    cc.RightSizingInterval.D(),
		DiscoveryInterval:      cc.DiscoveryInterval.D(),
		LateDataHold:           cc.LateDataHold.D(),
		CloudWatchPricePer1000: cc.CloudWatchPricePer1000Metrics,
		OnProgress:             onProgress,
		OnDiscover:             p.recordDeployments,
		Now:                    p.now,
	})
}
