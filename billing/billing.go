// Package billing is the Stripe sink. It closes every hour — once the hour has ended and a
// settle delay for late CloudWatch data has passed — into a durable outbox in the metadata
// store, one row per project, billed metric and hour, and reports the outbox to Stripe exactly
// once: as Billing Meter events (default) or as legacy usage records (action=set).
//
// Invariants:
//   - Billing reports quantities, never money; Stripe prices them.
//   - The exact amount of a project's metric in hour [h, h+1h) comes from the query layer's
//     HourlyAmounts (integer quanta of the samples stamped in (h, h+1h]): the same read as the
//     API and the derived cost series.
//   - For every project and metric the reported whole quantities add up to
//     floor(exact total / unit): the fractional remainder is carried to the next hour, and the
//     carry is written in the same transaction as the rows it produced.
//   - Late data that changes a closed hour becomes a correction row (revision n+1) holding the
//     difference, inside Stripe's window; a downward correction is absorbed by the carry.
//   - Every row has a deterministic identifier, sent as Stripe's identifier and idempotency
//     key, so a crash between sending and recording re-sends what Stripe deduplicates.
//   - Rows are never deleted: each ends sent, carried (nothing whole to report), failed (with
//     the reason) or expired (older than Stripe's window); held rows wait for a Stripe key or a
//     customer mapping. Nothing is dropped silently.
//   - One leader sends: a PostgreSQL advisory lock when replicas share a database.
package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/storage"
	"github.com/shopspring/decimal"

	"github.com/cygni/usage/query"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/store"
)

// Modes of reporting.
const (
	ModeMeterEvents  = "meter_events"
	ModeUsageRecords = "usage_records"
)

// Ledger is where hours are closed: the watermark, the carries and the outbox rows.
type Ledger interface {
	BillingWatermark(ctx context.Context) (time.Time, error)
	BillingCarries(ctx context.Context) ([]store.BillingCarry, error)
	AppendBillingReports(ctx context.Context, reports []store.BillingReport, carries []store.BillingCarry, watermark time.Time) error
	ListBillingReports(ctx context.Context, f store.BillingReportFilter) ([]store.BillingReport, error)
}

// Outbox is the delivery side of the outbox.
type Outbox interface {
	DueBillingReports(ctx context.Context, now time.Time, limit int) ([]store.BillingReport, error)
	UpdateBillingReport(ctx context.Context, r store.BillingReport) error
	ReleaseHeldBillingReports(ctx context.Context, now time.Time) error
	BillingReportCounts(ctx context.Context) (map[string]int, error)
}

// Mapping resolves where a project's usage goes in Stripe.
type Mapping interface {
	// ProjectStripeCustomer returns the customer of the project's team ("" when unmapped),
	// store.ErrNotFound for an unknown project.
	ProjectStripeCustomer(ctx context.Context, projectID string) (string, error)
	// BillingSubscriptionItem returns the subscription item of a project's metric,
	// store.ErrNotFound when none is mapped.
	BillingSubscriptionItem(ctx context.Context, projectID, metric string) (string, error)
}

// Leader elects the one process that bills.
type Leader interface {
	TryBillingLeader(ctx context.Context) (*store.BillingLease, bool, error)
}

// Store is everything billing needs from the metadata store.
type Store interface {
	Ledger
	Outbox
	Mapping
	Leader
}

// Meter is one billed metric's Stripe meter and reporting unit.
type Meter struct {
	// EventName is the meter's event_name (meter events mode).
	EventName string
	// Unit is one reported unit in the metric's billed unit (0.001 = thousandths of a vCPU-hour).
	Unit decimal.Decimal
}

// metricDef says where a billed metric comes from: its series and how many stored units make
// one billed unit.
type metricDef struct {
	series  string
	perUnit decimal.Decimal
	unit    string
}

// Metrics are the billed metrics: cpu in vCPU-hours from vCPU-seconds, memory in GB-hours,
// egress in GB (2^30 bytes) from bytes, requests as counted.
var Metrics = map[string]metricDef{
	"cpu":      {series.CPUSeconds, decimal.NewFromInt(3600), "vCPU-hour"},
	"memory":   {series.MemoryGBHours, decimal.NewFromInt(1), "GB-hour"},
	"egress":   {series.EgressBytes, decimal.NewFromInt(series.GiB), "GB"},
	"requests": {series.Requests, decimal.NewFromInt(1), "request"},
}

// Options configure the billing sink. Zero durations take the defaults.
type Options struct {
	// Queryable reads the usage series (the TSDB). Required.
	Queryable storage.Queryable
	// Usage yields the exact hourly amounts (the process's query.Engine, which reads the hourly
	// tier where derived). Nil: a query.Engine over Queryable reading 1-minute samples.
	Usage HourlyUsage
	// Store is the metadata store. Required.
	Store Store
	// Metrics receives the sink's counters and gauges; nil: a private set.
	Metrics *metrics.Set
	// Mode is ModeMeterEvents (default) or ModeUsageRecords.
	Mode string
	// Meters are the billed metrics by name (cpu, memory, egress, requests). Required.
	Meters map[string]Meter
	// StripeURL is Stripe's API base URL (default https://api.stripe.com).
	StripeURL string
	// StripeKey is the secret key; empty holds every report until one is configured.
	StripeKey string
	// HTTPClient talks to Stripe (default a client with a 30 s timeout).
	HTTPClient *http.Client
	// SettleDelay is how long after its end an hour is closed (default 15m).
	SettleDelay time.Duration
	// Interval between cycles (default 1m).
	Interval time.Duration
	// RecheckWindow is how far back closed hours are recomputed for corrections (default 72h).
	RecheckWindow time.Duration
	// RecheckEvery is how often that recomputation runs (default 15m).
	RecheckEvery time.Duration
	// Window is how far back Stripe accepts usage (default 35 days); older rows expire.
	Window time.Duration
	// Backfill is how far back the very first cycle starts (default Window).
	Backfill time.Duration
	// HoldRecheck is how often a held row is checked again (default 5m, at least Interval;
	// every held row is also checked at start, and on an operator's retry).
	HoldRecheck time.Duration
	// VerifyAfter is how long after a row's first attempt a resend first asks Stripe's event
	// summaries whether it holds the row already (default 20h; Stripe deduplicates
	// identifiers for at least 24h).
	VerifyAfter time.Duration
	// BaseBackoff and MaxBackoff bound the exponential back-off of retries (default 2s, 10m).
	BaseBackoff, MaxBackoff time.Duration
	// CollectedUntil, if set, says up to when the usage series are complete (the collector's
	// watermark); an hour closes only once it ended before that. ok false: nothing collected
	// yet, close nothing. nil: no gate (the settle delay alone).
	CollectedUntil func() (t time.Time, ok bool)
	// Now is the clock (default time.Now).
	Now func() time.Time
	// AfterSend, if set, is called right after Stripe answered a report and before the answer
	// is recorded. Tests use it to crash the process in exactly that gap.
	AfterSend func(r store.BillingReport)
}

// Defaults.
const (
	DefaultSettleDelay   = 15 * time.Minute
	DefaultInterval      = time.Minute
	DefaultRecheckWindow = 72 * time.Hour
	DefaultRecheckEvery  = 15 * time.Minute
	DefaultWindow        = 35 * 24 * time.Hour
	DefaultBaseBackoff   = 2 * time.Second
	DefaultMaxBackoff    = 10 * time.Minute
	DefaultVerifyAfter   = 20 * time.Hour
	DefaultStripeURL     = "https://api.stripe.com"
)

// Biller closes hours into the outbox and sends the outbox to Stripe.
type Biller struct {
	opts   Options
	logger *slog.Logger
	stripe *stripeClient // nil without a key
	units  map[string]decimal.Decimal
	names  []string // billed metric names, sorted

	sent, retried, failedPerm, corrections, expired, alreadyHeld *metrics.Counter

	meterMu  sync.Mutex
	meterIDs map[string]string // Stripe meter ids by event name

	mu          sync.Mutex
	counts      map[string]int
	watermark   time.Time
	leader      bool
	lastRecheck time.Time
	released    bool // held rows were made due once, at the first cycle
	held        int  // rows held in the current sending pass (Cycle runs on one goroutine)
}

// New validates opts and builds the sink. It starts nothing.
func New(logger *slog.Logger, reg prometheus.Registerer, opts Options) (*Biller, error) {
	_ = reg // the sink's own metrics are VictoriaMetrics counters on opts.Metrics
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.Queryable == nil {
		return nil, errors.New("billing: no Queryable")
	}
	if opts.Store == nil {
		return nil, errors.New("billing: no store")
	}
	if opts.Usage == nil {
		e, err := query.New(logger, nil, query.Options{Storage: opts.Queryable, Now: opts.Now})
		if err != nil {
			return nil, fmt.Errorf("billing: %w", err)
		}
		opts.Usage = e
	}
	if opts.Mode == "" {
		opts.Mode = ModeMeterEvents
	}
	if opts.Mode != ModeMeterEvents && opts.Mode != ModeUsageRecords {
		return nil, fmt.Errorf("billing: mode %q; want %s or %s", opts.Mode, ModeMeterEvents, ModeUsageRecords)
	}
	if len(opts.Meters) == 0 {
		return nil, errors.New("billing: no meters")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&opts.SettleDelay, DefaultSettleDelay)
	def(&opts.Interval, DefaultInterval)
	def(&opts.RecheckWindow, DefaultRecheckWindow)
	def(&opts.RecheckEvery, DefaultRecheckEvery)
	def(&opts.Window, DefaultWindow)
	def(&opts.Backfill, opts.Window)
	def(&opts.HoldRecheck, max(5*time.Minute, opts.Interval))
	def(&opts.BaseBackoff, DefaultBaseBackoff)
	def(&opts.MaxBackoff, DefaultMaxBackoff)
	def(&opts.VerifyAfter, DefaultVerifyAfter)
	if opts.StripeURL == "" {
		opts.StripeURL = DefaultStripeURL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.NewSet()
	}
	b := &Biller{opts: opts, logger: logger.With("component", "billing"), units: map[string]decimal.Decimal{}, counts: map[string]int{},
		meterIDs: map[string]string{}}
	for name, m := range opts.Meters {
		def, ok := Metrics[name]
		if !ok {
			return nil, fmt.Errorf("billing: unknown metric %q; want cpu, memory, egress or requests", name)
		}
		if !m.Unit.IsPositive() {
			return nil, fmt.Errorf("billing: metric %s: unit %s is not positive", name, m.Unit)
		}
		if opts.Mode == ModeMeterEvents && m.EventName == "" {
			return nil, fmt.Errorf("billing: metric %s: no event name", name)
		}
		// One reported unit in stored units: exact (0.001 vCPU-hour = 3.6 vCPU-seconds).
		b.units[name] = m.Unit.Mul(def.perUnit)
		b.names = append(b.names, name)
	}
	sort.Strings(b.names)
	if opts.StripeKey != "" {
		b.stripe = newStripeClient(opts.StripeURL, opts.StripeKey, opts.HTTPClient)
	}
	set := opts.Metrics
	b.sent = set.GetOrCreateCounter(`cygni_billing_reports_sent_total`)
	b.retried = set.GetOrCreateCounter(`cygni_billing_send_errors_total{kind="retryable"}`)
	b.failedPerm = set.GetOrCreateCounter(`cygni_billing_send_errors_total{kind="permanent"}`)
	b.corrections = set.GetOrCreateCounter(`cygni_billing_corrections_total`)
	b.expired = set.GetOrCreateCounter(`cygni_billing_reports_expired_total`)
	b.alreadyHeld = set.GetOrCreateCounter(`cygni_billing_reports_found_in_stripe_total`)
	for _, st := range store.BillingStates {
		set.GetOrCreateGauge(`cygni_billing_reports{state="`+st+`"}`, func() float64 {
			b.mu.Lock()
			defer b.mu.Unlock()
			return float64(b.counts[st])
		})
	}
	set.GetOrCreateGauge(`cygni_billing_closed_until_timestamp_seconds`, func() float64 {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.watermark.IsZero() {
			return 0
		}
		return float64(b.watermark.Unix())
	})
	set.GetOrCreateGauge(`cygni_billing_leader`, func() float64 {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.leader {
			return 1
		}
		return 0
	})
	return b, nil
}

// Run bills until ctx ends: it takes the leadership (retrying every interval while another
// replica holds it), then runs a cycle every interval. A failed cycle is logged and retried.
func (b *Biller) Run(ctx context.Context) error {
	var lease *store.BillingLease
	defer func() { lease.Release() }()
	t := time.NewTicker(b.opts.Interval)
	defer t.Stop()
	for {
		if lease != nil {
			if err := lease.Check(ctx); err != nil {
				b.logger.Warn("billing leadership lost; stopping sends until it is taken again", "err", err)
				lease.Release()
				lease = nil
				b.setLeader(false)
			}
		}
		if lease == nil {
			l, ok, err := b.opts.Store.TryBillingLeader(ctx)
			switch {
			case err != nil:
				b.logger.Warn("take the billing leadership; retrying next interval", "err", err)
			case ok:
				lease = l
				b.setLeader(true)
				b.logger.Info("billing leadership taken")
			}
		}
		if lease != nil {
			if err := b.Cycle(ctx); err != nil && ctx.Err() == nil {
				b.logger.Warn("billing cycle; retrying next interval", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (b *Biller) setLeader(v bool) {
	b.mu.Lock()
	b.leader = v
	b.mu.Unlock()
}

// Cycle runs one pass: close the hours that have settled, recompute recent hours for
// corrections (every RecheckEvery), send what is due, refresh the gauges. Only the leader may
// call it; Run does.
func (b *Biller) Cycle(ctx context.Context) error {
	now := b.opts.Now().UTC()
	if !b.released {
		if err := b.opts.Store.ReleaseHeldBillingReports(ctx, now); err != nil {
			return err
		}
		b.released = true
	}
	if err := b.closeHours(ctx, now); err != nil {
		return err
	}
	b.mu.Lock()
	recheck := now.Sub(b.lastRecheck) >= b.opts.RecheckEvery
	b.mu.Unlock()
	if recheck {
		if err := b.recheck(ctx, now); err != nil {
			return err
		}
		b.mu.Lock()
		b.lastRecheck = now
		b.mu.Unlock()
	}
	if err := b.sendDue(ctx, now); err != nil {
		return err
	}
	return b.refreshCounts(ctx)
}

func (b *Biller) refreshCounts(ctx context.Context) error {
	counts, err := b.opts.Store.BillingReportCounts(ctx)
	if err != nil {
		return err
	}
	wm, err := b.opts.Store.BillingWatermark(ctx)
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.counts = counts
	b.watermark = wm
	b.mu.Unlock()
	return nil
}
