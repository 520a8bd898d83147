package main

import (
	"github.com/cygni/usage/api"
	"github.com/cygni/usage/collector"
	"github.com/cygni/usage/tsdb"
)

// wire builds the parts the process runs and adds them to the run group and the API options.
// Each part has its own wireX method, in the file of its part. The data pipeline is triggered
// end to end: a collector commit triggers the Deriver, a Deriver run that wrote the gauges
// triggers the alert rules, a new notification wakes the e-mail and webhook senders.
func (p *process) wire(ps parts) error {
	p.parts = ps
	for _, w := range []struct {
		part string
		fn   func() error
	}{
		{"api", p.wireStore},
		{"api", p.wireQuery},
		{"api", p.wireProm},
		{"collector", p.wireCollector},
		{"api", p.wireBillingAPI},
		{"billing", p.wireBilling},
		{"alerting", p.wireAlerting},
	} {
		if ps[w.part] {
			if err := w.fn(); err != nil {
				return err
			}
		}
	}
	return nil
}

// reload is called on SIGHUP.
func (p *process) reload() { p.reloadRules() }

// wireCollector adds the CloudWatch collector: it catches up from the watermark (or backfills
// collector.backfill on first start, with a progress bar on stderr, ending with "backfill done"),
// then collects every collector.interval. /readyz reports not ready until
// its first cycle has completed.
func (p *process) wireCollector() error {
	bars := &progressBars{t: p.term}
	// After every committed chunk: the progress bar, and the Deriver (then the alert rules) on
	// the new data at once, not on a later tick.
	onProgress := func(pr collector.Progress) {
		bars.update(pr)
		if p.derive != nil {
			p.derive.Trigger()
		}
	}
	col, err := p.newCollector(onProgress)
	if err != nil {
		return err
	}
	run, leading := col.Run, func() bool { return true }
	if p.cfg.Storage.Mode == tsdb.ModeRemote {
		// One collector per shard at a time: a second process configured with the same shard
		// is a standby that takes the shard over when the first one's lease goes.
		run, leading = p.leaderGate("collector/"+col.WatermarkKey(), col.Run)
	}
	prev := p.ready
	p.ready = func() error {
		if prev != nil {
			if err := prev(); err != nil {
				return err
			}
		}
		if !leading() {
			return nil // a standby has nothing to catch up
		}
		return col.Ready()
	}
	p.col = col
	p.add("collector", run)
	return nil
}

// wireProm serves the Prometheus HTTP API (/api/v1/) over the process's TSDB, each request
// scoped to the projects the store lists for the token's team.
func (p *process) wireProm() error {
	p.api.PromStorage = p.db
	if p.store != nil {
		p.api.PromProjects = p.store
	}
	p.api.PromEngine = api.NewLimitedPromEngine(p.logger, p.reg, apiLimits(p.cfg))
	return nil
}
