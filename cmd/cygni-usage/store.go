package main

import (
	"context"
	"fmt"
	"time"

	"github.com/cygni/usage/api"
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
	st, err := store.Open(ctx, p.logger, store.Options{Driver: p.cfg.Store.Driver, DSN: p.cfg.Store.DSN, DataDir: p.cfg.DataDir})
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
	p.api.Unmapped = api.UnmappedDeps{Series: p.db, Projects: p.store}
	return nil
}
