package main

import (
	"time"

	"github.com/cygni/usage/api"
	"github.com/cygni/usage/query"
)

// wireQuery adds the query layer: the engine behind the usage endpoints and the Deriver actor
// that writes the hourly series, the hourly cost series and the budget gauges every minute.
func (p *process) wireQuery() error {
	engine, d, err := p.newQuery()
	if err != nil {
		return err
	}
	if p.parts["collector"] {
		// Derive an hour only once this process's collector has completed its first cycle and
		// read past the hour (p.col is set by wireCollector before anything runs).
		d.SetCollectedUntil(func() (time.Time, bool) {
			// Nothing before the first cycle has completed: the gauges are written at now, and a
			// sample at now during a backfill longer than the TSDB's out-of-order window would
			// make the TSDB reject the rest of the backfill as too old.
			if p.col == nil || p.col.Ready() != nil {
				return time.Time{}, false
			}
			return p.col.Watermark()
		})
	}
	p.add("deriver", d.Run)
	p.api.UsageDeps = api.UsageDeps{Usage: engine}
	if p.store != nil {
		p.api.UsageProjects = p.store
	}
	return nil
}

// newQuery builds the query engine and its Deriver over the process's TSDB and store.
func (p *process) newQuery() (*query.Engine, *query.Deriver, error) {
	var d *query.Deriver
	engine, err := query.New(p.logger, p.reg, query.Options{
		Storage:     p.db,
		Prices:      query.NewPrices(p.cfg.Pricing),
		HourlyRange: func() (from, through time.Time) { return d.Range() },
		Now:         p.now,
	})
	if err != nil {
		return nil, nil, err
	}
	opts := query.DeriverOptions{Storage: p.db, Engine: engine, Metrics: p.vm, Now: p.now}
	if p.store != nil {
		opts.Projects = p.store
	}
	d, err = query.NewDeriver(p.logger, p.reg, opts)
	if err != nil {
		return nil, nil, err
	}
	return engine, d, nil
}
