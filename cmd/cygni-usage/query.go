package main

import (
	"context"
	"time"

	"github.com/cygni/usage/api"
	"github.com/cygni/usage/query"
	"github.com/cygni/usage/rollup"
	"github.com/cygni/usage/tsdb"
)

// wireQuery adds the query layer: the engine behind the usage endpoints and the Deriver actor
// that writes the hourly series, the hourly cost series and the budget gauges every minute.
func (p *process) wireQuery() error {
	var until func() (time.Time, bool)
	switch {
	case p.cfg.Storage.Mode == tsdb.ModeRemote:
		// The collector shards (here or elsewhere) keep their watermarks in the store: derive
		// an hour only once every shard has read past it, and nothing while the slowest shard
		// lags more than two intervals behind now (a first backfill: the gauges are written at
		// now and would alert on a partial month). A watermark is a whole minute (the collector
		// reads up to now truncated to the minute), so a caught-up shard lags up to a minute
		// more than its interval: with an interval under a minute, two intervals alone would
		// hold the Deriver back most of the time.
		maxLag := 2*p.cfg.Collector.Interval.D() + time.Minute
		until = func() (time.Time, bool) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			u, ok, err := p.store.CollectedUntil(ctx)
			if err != nil {
				p.logger.Warn("read the collectors' watermarks; deriving nothing new until it works", "err", err)
				return time.Time{}, false
			}
			if !ok || p.now().Sub(u) > maxLag {
				return time.Time{}, false
			}
			return u, true
		}
	case p.parts["collector"]:
		// Derive an hour only once this process's collector has read past it (p.col is set by
		// wireCollector before anything runs), and nothing before its first cycle has caught up
		// with now: the gauges are written at now, so a run in the middle of a first backfill
		// would alert on half a month, and one further behind now than the TSDB's out-of-order
		// window would make the TSDB reject the rest of that backfill as too old.
		until = func() (time.Time, bool) {
			if p.col == nil {
				return time.Time{}, false
			}
			wm, ok := p.col.Watermark()
			if !ok || (p.col.Ready() != nil && p.now().Sub(wm) > p.cfg.Collector.Interval.D()) {
				return time.Time{}, false
			}
			return wm, true
		}
	}
	engine, d, err := p.newQuery(until)
	if err != nil {
		return err
	}
	p.derive = d
	// One Deriver among the processes sharing the store (the others answer queries only).
	p.add("deriver", p.leaderOnly("deriver", d.Run))
	// A changed budget limit is in the gauges (and the alerts) at once.
	p.api.UsageDeps = api.UsageDeps{Usage: engine, LimitChanged: d.Trigger}
	if p.store != nil {
		p.api.UsageProjects = p.store
		p.api.BudgetDeps = api.BudgetDeps{Budgets: p.store, BudgetChanged: d.Trigger}
		// A changed price override is in the cost gauges (and the alerts) at once.
		p.api.PriceDeps = api.PriceDeps{PriceOverrides: p.store, DefaultPrices: engine.Prices(), PricesChanged: d.Trigger}
	}
	return nil
}

// newQuery builds the Deriver (package rollup, the writing stage) and the query engine that
// reads its hourly tier over the process's TSDB and store; collectedUntil bounds the derived
// hours (nil: no bound).
func (p *process) newQuery(collectedUntil func() (time.Time, bool)) (*query.Engine, *rollup.Deriver, error) {
	prices, overrides := query.NewPrices(p.cfg.Pricing), p.priceOverrides()
	opts := rollup.DeriverOptions{Storage: p.db, Prices: prices, Overrides: overrides, Metrics: p.vm, Now: p.now, CollectedUntil: collectedUntil}
	if p.store != nil {
		opts.Projects = p.store
	}
	d, err := rollup.NewDeriver(p.logger, p.reg, opts)
	if err != nil {
		return nil, nil, err
	}
	engine, err := query.New(p.logger, p.reg, query.Options{Storage: p.db, Prices: prices, Overrides: overrides, HourlyRange: d.Range, DailyRange: d.DailyRange, Now: p.now})
	if err != nil {
		return nil, nil, err
	}
	p.engine = engine
	return engine, d, nil
}

// priceOverrides reads the teams' and projects' negotiated prices from the metadata store (nil
// without one: every project has the default sheets).
func (p *process) priceOverrides() query.OverridesFunc {
	if p.store == nil {
		return nil
	}
	st := p.store
	return func(ctx context.Context, projects []string) (map[string]query.ProjectOverrides, error) {
		m, err := st.ProjectPriceOverrides(ctx, projects)
		if err != nil || len(m) == 0 {
			return nil, err
		}
		out := make(map[string]query.ProjectOverrides, len(m))
		for id, o := range m {
			out[id] = query.ProjectOverrides{Team: o.Team, Project: o.Project}
		}
		return out, nil
	}
}
