package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cygni/usage/api"
	"github.com/cygni/usage/collector"
	"github.com/cygni/usage/query"
	"github.com/cygni/usage/store"
)

// openStore opens the metadata store of the configuration and applies its migrations.
func (p *process) openStore() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := openConfiguredStore(ctx, p)
	if err != nil {
		return err
	}
	p.store = st
	p.closer = append(p.closer, st.Close)
	return nil
}

// openConfiguredStore opens the store named by the configuration (used by the server and the
// admin commands alike).
func openConfiguredStore(ctx context.Context, p *process) (*store.Store, error) {
	st, err := store.Open(ctx, p.logger, store.Options{Driver: p.cfg.Store.Driver, DSN: p.cfg.Store.DSN, DataDir: p.cfg.DataDir, Now: p.now})
	if err != nil {
		return nil, fmt.Errorf("open the metadata store: %w", err)
	}
	return st, nil
}

// wireStore gives the API its token verifier, notifications and unmapped-usage sources, and
// makes /readyz report an unreachable store.
func (p *process) wireStore() error {
	prev := p.ready
	p.ready = func() error {
		if prev != nil {
			if err := prev(); err != nil {
				return err
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := p.store.Ping(ctx); err != nil {
			return fmt.Errorf("metadata store unreachable: %w", err)
		}
		return nil
	}
	p.api.Tokens = api.StoreTokens(p.store)
	p.api.Notifications = p.store
	p.api.Unmapped = api.UnmappedDeps{Series: p.db, Projects: p.store, Prices: query.NewPrices(p.cfg.Pricing), Now: p.now}
	// cygni_unmapped_estimated_cost_usd for the operators' CygniUnattributedCost rule, refreshed
	// at the collection interval.
	um := api.NewUnmappedMetrics(p.logger, p.vm, p.api.Unmapped, api.DefaultUnmappedMetricsWindow)
	p.add("unmapped-metrics", func(ctx context.Context) error { return um.Run(ctx, p.cfg.Collector.Interval.D()) })
	return nil
}

// recordDeployments records every tagged ECS service the collector discovered as a deployment of
// its project, so that the limits API counts them. Services of projects the store does not know
// are left to the unmapped-usage list.
func (p *process) recordDeployments(ctx context.Context, found []collector.Discovered) error {
	if p.store == nil {
		return nil
	}
	var errs []error
	for _, d := range found {
		if d.Project == "" {
			continue
		}
		err := p.store.UpsertDeployment(ctx, d.Project, d.Service, d.Cluster)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
