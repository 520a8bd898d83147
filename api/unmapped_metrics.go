package api

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/shopspring/decimal"
)

// Defaults of UnmappedMetrics.
const (
	DefaultUnmappedMetricsWindow = 24 * time.Hour
	DefaultUnmappedMetricsEvery  = 5 * time.Minute
)

// UnmappedMetrics exports, for the operators' alert rules, what FindUnmapped finds over the
// last Window: cygni_unmapped_estimated_cost_usd (the estimated cost of the usage no project
// is billed for, at the price sheets) and cygni_unmapped_services. The values are refreshed by
// Run every Every, not at scrape time, so a scrape never reads the TSDB.
type UnmappedMetrics struct {
	deps   UnmappedDeps
	window time.Duration
	logger *slog.Logger

	mu       sync.Mutex
	cost     decimal.Decimal
	services int
	ok       bool // the last refresh succeeded
}

// NewUnmappedMetrics registers the gauges in set. window 0 takes DefaultUnmappedMetricsWindow.
func NewUnmappedMetrics(logger *slog.Logger, set *metrics.Set, deps UnmappedDeps, window time.Duration) *UnmappedMetrics {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if window <= 0 {
		window = DefaultUnmappedMetricsWindow
	}
	u := &UnmappedMetrics{deps: deps, window: window, logger: logger.With("component", "unmapped-metrics")}
	set.NewGauge("cygni_unmapped_estimated_cost_usd", func() float64 {
		u.mu.Lock()
		defer u.mu.Unlock()
		return u.cost.InexactFloat64() // an exposition value only; the API shows the exact decimal
	})
	set.NewGauge("cygni_unmapped_services", func() float64 {
		u.mu.Lock()
		defer u.mu.Unlock()
		return float64(u.services)
	})
	set.NewGauge("cygni_unmapped_window_seconds", func() float64 { return window.Seconds() })
	set.NewGauge("cygni_unmapped_last_refresh_success", func() float64 {
		u.mu.Lock()
		defer u.mu.Unlock()
		if u.ok {
			return 1
		}
		return 0
	})
	return u
}

// Refresh recomputes the gauges over (now − window, now].
func (u *UnmappedMetrics) Refresh(ctx context.Context) error {
	now := time.Now
	if u.deps.Now != nil {
		now = u.deps.Now
	}
	fail := func(err error) error {
		u.mu.Lock()
		u.ok = false
		u.mu.Unlock()
		return err
	}
	known, err := KnownProjects(ctx, u.deps.Projects)
	if err != nil {
		return fail(err)
	}
	to := now().UTC()
	list, err := FindUnmapped(ctx, u.deps.Series, known, to.Add(-u.window), to, u.deps.Prices)
	if err != nil {
		return fail(err)
	}
	total := UnmappedTotal(list)
	u.mu.Lock()
	u.cost, u.services, u.ok = total, len(list), true
	u.mu.Unlock()
	return nil
}

// Run refreshes at once, then every every (0: DefaultUnmappedMetricsEvery), until ctx ends. A
// failed refresh is logged and keeps the previous values.
func (u *UnmappedMetrics) Run(ctx context.Context, every time.Duration) error {
	if every <= 0 {
		every = DefaultUnmappedMetricsEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := u.Refresh(ctx); err != nil && ctx.Err() == nil {
			u.logger.Warn("refresh the unmapped-usage metrics; the previous values stay", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
