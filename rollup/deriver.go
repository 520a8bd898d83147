// Package rollup is the derivation stage: it writes the derived tiers of the usage series back
// into the TSDB — <series>:sum1h for every hour the TSDB holds (hours older than the
// out-of-order window as persisted blocks), <series>:sum1d for the whole UTC days among them
// (daily.go), the hourly cost series and the budget gauges — and records the span it has
// derived. The query layer only reads them.
//
// Invariants:
//   - An hourly point (and every correction of it) is a whole number of quanta (query.Quantize)
//     of the 1-minute samples of its hour, so a reader recovers the hour's amount exactly.
//   - Only differences are written: deriving a span again writes nothing; late data becomes a
//     correction sample inside the same hour (at the earliest sample − 1 ms).
//   - The hourly cost series are priced from query.Engine.HourlyAmounts, the read billing and
//     the API use.
package rollup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/cygni/usage/budget"
	"github.com/cygni/usage/config"
	"github.com/cygni/usage/query"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/store"
)

const (
	minuteMs = int64(time.Minute / time.Millisecond)
	hourMs   = int64(time.Hour / time.Millisecond)
	dayMs    = 24 * hourMs
)

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func floorTo(t, step int64) int64 { return floorDiv(t, step) * step }
func ceilTo(t, step int64) int64  { return -floorDiv(-t, step) * step }

// ksum is a Neumaier compensated float sum (the cost series are floats for the rule engine,
// never billed).
type ksum struct{ s, c float64 }

func (k *ksum) add(v float64) {
	t := k.s + v
	if math.Abs(k.s) >= math.Abs(v) {
		k.c += (k.s - t) + v
	} else {
		k.c += (v - t) + k.s
	}
	k.s = t
}

func (k *ksum) value() float64 { return k.s + k.c }

// Storage is what the Deriver reads and writes: the TSDB.
type Storage interface {
	storage.Queryable
	storage.Appendable
}

// ProjectSource lists the projects and their teams (the metadata store).
type ProjectSource interface {
	AllProjects(ctx context.Context) ([]store.Project, error)
	GetTeam(ctx context.Context, id string) (store.Team, error)
}

// RangeSeries records the span of hours the Deriver has derived, so that a restart continues
// where it stopped: bound="from" and bound="through", values in Unix seconds; bound="days" is 1
// once the daily tier covers the span's whole UTC days.
const RangeSeries = "cygni_query_hourly_derived_seconds"

// DeriverOptions configure a Deriver. Zero values take the defaults.
type DeriverOptions struct {
	// Storage is the TSDB. Required.
	Storage Storage
	// Prices price the hourly cost series and the month-to-date gauges. Zero: the defaults.
	Prices query.Prices
	// Overrides are the teams' and projects' negotiated prices on top of Prices (nil: none).
	Overrides query.OverridesFunc
	// Projects lists projects and teams for the budget gauges; nil writes no gauges.
	Projects ProjectSource
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Interval between runs (default 1m).
	Interval time.Duration
	// RecentWindow is re-derived on every run, for late data (default 3h; the collector's
	// look-back is 15m).
	RecentWindow time.Duration
	// FullWindow is re-derived every FullEvery, for gap backfills (default 48h, every 1h).
	FullWindow, FullEvery time.Duration
	// Metrics receives the Deriver's counters; nil makes a private set.
	Metrics *metrics.Set
	// CollectedUntil, if set, bounds the derived hours by the collector's watermark: an hour is
	// derived (and counted as derived) only once the collector has read past its end, so a gap
	// the collector is still backfilling (after an outage) is never frozen as empty hourly
	// points. ok=false (no watermark yet) derives nothing and writes no gauges. Nil: no bound (the collector runs
	// elsewhere, or data is written by other means).
	CollectedUntil func() (until time.Time, ok bool)
	// OnStep, if set, is called after every run that wrote the gauges (the alert rules
	// evaluate then, on fresh data). It must not block.
	OnStep func()
}

// Deriver keeps the derived series up to date (an actor, every minute):
//
//   - <usage series>:sum1h — one point per series and hour, stamped at the hour's end, with the
//     same labels as the 1-minute series. When late data changes a derived hour, the difference
//     is written as a further sample inside the same hour (at the earliest sample − 1 ms), so
//     nothing is overwritten and sum_over_time over the hour stays exact.
//   - cygni_project_cost_usd{project,resource} — the hour's cost in USD, the same way.
//   - cygni_project_budget_usd{project}, cygni_project_cost_month_to_date_usd{project},
//     cygni_project_cost_forecast_month_usd{project}, cygni_project_budget_used_percent{project}
//     (budget.PercentUsed) — gauges stamped at now.
type Deriver struct {
	logger *slog.Logger
	opts   DeriverOptions
	now    func() time.Time
	engine *query.Engine

	kick          chan struct{}
	mu            sync.Mutex
	from, through int64 // derived span, ms; through == 0 before the first run
	days          bool  // the daily tier holds every whole UTC day of the span (DailyRange)
	rangeT        int64 // timestamp of the last write of RangeSeries
	lastFull      int64
	// The price overrides of the previous run, to re-price the cost series of the hours a
	// changed override reaches back to.
	overrides      map[string]int64
	overridesKnown bool

	runs, samples, appendErrors, blocks *metrics.Counter
	runSeconds                          *metrics.Histogram
}

// NewDeriver builds a Deriver. It starts no goroutines.
func NewDeriver(logger *slog.Logger, _ prometheus.Registerer, opts DeriverOptions) (*Deriver, error) {
	if opts.Storage == nil {
		return nil, errors.New("rollup: deriver needs Storage")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&opts.Interval, time.Minute)
	def(&opts.RecentWindow, 3*time.Hour)
	def(&opts.FullWindow, 48*time.Hour)
	def(&opts.FullEvery, time.Hour)
	for _, d := range []time.Duration{opts.Interval, opts.RecentWindow, opts.FullWindow, opts.FullEvery} {
		if d < 0 {
			return nil, fmt.Errorf("rollup: negative deriver duration %s", d)
		}
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.NewSet()
	}
	vm := opts.Metrics
	d := &Deriver{
		logger: logger.With("component", "deriver"), opts: opts, now: opts.Now, kick: make(chan struct{}, 1),
		runs:         vm.GetOrCreateCounter(`cygni_query_deriver_runs_total`),
		samples:      vm.GetOrCreateCounter(`cygni_query_deriver_samples_written_total`),
		appendErrors: vm.GetOrCreateCounter(`cygni_query_deriver_append_errors_total`),
		blocks:       vm.GetOrCreateCounter(`cygni_query_deriver_blocks_written_total`),
		runSeconds:   vm.GetOrCreateHistogram(`cygni_query_deriver_run_duration_seconds`),
	}
	// The Deriver's own reads (hourly amounts for the cost series, month-to-date costs for the
	// gauges) go through a query engine over its own span; the API's engine takes Range too.
	e, err := query.New(logger, nil, query.Options{Storage: opts.Storage, Prices: opts.Prices, Overrides: opts.Overrides, Now: opts.Now, HourlyRange: d.Range, DailyRange: d.DailyRange})
	if err != nil {
		return nil, fmt.Errorf("rollup: %w", err)
	}
	d.engine = e
	return d, nil
}

// Range returns the span of hours whose hourly series are complete: query.Options.HourlyRange.
func (d *Deriver) Range() (from, through time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.through == 0 {
		return time.Time{}, time.Time{}
	}
	return time.UnixMilli(d.from).UTC(), time.UnixMilli(d.through).UTC()
}

// SetOnStep sets DeriverOptions.OnStep; call it before Run.
func (d *Deriver) SetOnStep(f func()) { d.opts.OnStep = f }

// Trigger asks for a run now (the collector committed new data, a budget changed). It never
// blocks; triggers during a run fold into one more run.
func (d *Deriver) Trigger() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Run derives at once, on every Trigger and every Interval until ctx ends. A failed run is
// logged and retried next time.
func (d *Deriver) Run(ctx context.Context) error {
	t := time.NewTicker(d.opts.Interval)
	defer t.Stop()
	for {
		if err := d.Step(ctx); err != nil && ctx.Err() == nil {
			d.logger.Warn("derive series; retrying on the next tick", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-d.kick:
			t.Reset(d.opts.Interval)
		}
	}
}

// Step is one run: derive the hours that closed (a day of backlog at most), re-derive the recent
// window (and the full window when due), then write the gauges.
func (d *Deriver) Step(ctx context.Context) error {
	start := time.Now()
	defer func() { d.runs.Inc(); d.runSeconds.UpdateDuration(start) }()
	now := d.now().UnixMilli()
	hour := floorTo(now, hourMs)
	target := hour
	if d.opts.CollectedUntil != nil {
		until, ok := d.opts.CollectedUntil()
		if !ok {
			return nil // no gauges either: month-to-date cost is not known before the first collection
		}
		target = min(target, floorTo(until.UnixMilli(), hourMs))
	}
	d.mu.Lock()
	from, through, lastFull := d.from, d.through, d.lastFull
	d.mu.Unlock()
	if through == 0 {
		f, t, ok, days, err := d.readRange(ctx, now)
		if err != nil {
			return err
		}
		if !ok {
			// First start: derive every hour the TSDB holds (below).
			f, t = target, target
		} else if !days {
			// A span derived before the daily tier existed: its days, once.
			if err := d.catchUpDays(ctx, f, t); err != nil {
				return err
			}
		}
		from, through = f, t
		d.mu.Lock()
		d.days = true
		d.mu.Unlock()
	}
	lo := min(through, target-d.opts.RecentWindow.Milliseconds())
	if now-lastFull >= d.opts.FullEvery.Milliseconds() {
		lo = min(lo, target-d.opts.FullWindow.Milliseconds())
		lastFull = now
	}
	lo = max(floorTo(lo, hourMs), from)
	// A changed price override re-prices the cost series back to its instant (this run derives
	// the hours from lo on anyway).
	if since, changed, err := d.overridesChangedSince(ctx); err != nil {
		return err
	} else if changed && since < lo {
		if err := d.reprice(ctx, since, lo); err != nil {
			return err
		}
	}
	// The whole backlog in this run, a day at a time (a first start derives its backfill in
	// seconds, not a day per Interval).
	for {
		hi := min(target, max(through, lo)+backlogChunk)
		if hi > lo {
			if err := d.Derive(ctx, time.UnixMilli(lo), time.UnixMilli(hi)); err != nil {
				return err
			}
			if err := d.deriveDays(ctx, lo, hi, from, max(through, hi)); err != nil {
				return err
			}
		}
		if hi > through {
			through = hi
			if err := d.writeRange(ctx, from, through, now); err != nil {
				return err
			}
		}
		d.mu.Lock()
		d.from, d.through, d.lastFull = from, through, lastFull
		d.mu.Unlock()
		if hi >= target || hi <= lo {
			break
		}
		lo = hi
	}
	if err := d.writeGauges(ctx, now); err != nil {
		return err
	}
	if d.opts.Projects != nil && d.opts.OnStep != nil {
		d.opts.OnStep()
	}
	return d.deriveHistory(ctx, start, now)
}

// HistoryWithoutStartTime is how far back a first start derives when the Storage cannot tell
// its oldest sample (the remote stores): 15 days, CloudWatch's retention of 1-minute data and the
// default out-of-order window.
const HistoryWithoutStartTime = 15 * 24 * time.Hour

// historyBudget bounds the history one run derives, so that the gauges (and the alerts) stay
// fresh while a first start works through a long history; the run then triggers the next.
const historyBudget = 30 * time.Second

// deriveHistory derives, newest first and a chunk at a time, the hours the TSDB holds before the
// derived span — every hour on a first start, and the hours a backfill wrote before the span —
// extending the span after each chunk, so the hourly tier serves them at once and a restart
// continues. Hours older than the out-of-order window go into blocks.
func (d *Deriver) deriveHistory(ctx context.Context, started time.Time, now int64) error {
	oldest, ok := d.oldest(now)
	if !ok {
		return nil
	}
	d.mu.Lock()
	from, through := d.from, d.through
	d.mu.Unlock()
	for oldest < from {
		if time.Since(started) > historyBudget {
			d.Trigger()
			return nil
		}
		lo := max(oldest, from-backlogChunk)
		if err := d.Derive(ctx, time.UnixMilli(lo), time.UnixMilli(from)); err != nil {
			return err
		}
		if err := d.deriveDays(ctx, lo, from, lo, through); err != nil {
			return err
		}
		from = lo
		if err := d.writeRange(ctx, from, through, now); err != nil {
			return err
		}
		d.mu.Lock()
		d.from = from
		d.mu.Unlock()
	}
	return nil
}

// RebuildProgress reports a Rebuild: hours done of the total, after every chunk.
type RebuildProgress func(done, total int)

// Rebuild derives every hour of [from, to) again from the 1-minute samples (whole hours, at most
// query.MaxRange), a chunk at a time, writing only differences (older hours as blocks): running it
// twice writes nothing the second time. The derived span then includes [from, to) when the two
// overlap or touch (a span with a gap to the derived one stays outside it: its hours are read
// from the 1-minute samples). For the `derive` command and operators after a backfill.
func (d *Deriver) Rebuild(ctx context.Context, from, to time.Time, progress RebuildProgress) error {
	lo, hi := floorTo(from.UnixMilli(), hourMs), ceilTo(to.UnixMilli(), hourMs)
	if lo >= hi {
		return fmt.Errorf("derive: empty span [%s, %s)", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	}
	if hi-lo > query.MaxRange.Milliseconds() {
		return fmt.Errorf("derive: span longer than %d days", int(query.MaxRange/(24*time.Hour)))
	}
	total := int((hi - lo) / hourMs)
	for t := lo; t < hi; t += backlogChunk {
		end := min(hi, t+backlogChunk)
		if err := d.Derive(ctx, time.UnixMilli(t), time.UnixMilli(end)); err != nil {
			return err
		}
		if progress != nil {
			progress(int((end-lo)/hourMs), total)
		}
	}
	now := d.now().UnixMilli()
	f, th, ok, days, err := d.readRange(ctx, now)
	if err != nil {
		return err
	}
	switch {
	case !ok || th <= f:
		f, th = lo, hi
		days = true
	case lo <= th && hi >= f:
		f, th = min(f, lo), max(th, hi)
	default:
		return nil
	}
	// The daily tier of the rebuilt days (of the whole span when it predates the daily tier).
	if days {
		err = d.catchUpDays(ctx, lo, hi, f, th)
	} else {
		err = d.catchUpDays(ctx, f, th, f, th)
	}
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.days = true
	d.mu.Unlock()
	if err := d.writeRange(ctx, f, th, now); err != nil {
		return err
	}
	d.mu.Lock()
	d.from, d.through = f, th
	d.mu.Unlock()
	return nil
}

// catchUpDays derives the daily tier of the days overlapping [lo, hi) that lie whole inside the
// span [spanFrom, spanThrough) (spanFrom, spanThrough default to lo, hi), a chunk at a time.
func (d *Deriver) catchUpDays(ctx context.Context, lo, hi int64, span ...int64) error {
	sf, st := lo, hi
	if len(span) == 2 {
		sf, st = span[0], span[1]
	}
	for t := floorTo(lo, dayMs); t < hi; t += 31 * dayMs {
		if err := d.deriveDays(ctx, max(t, lo), min(hi, t+31*dayMs), sf, st); err != nil {
			return err
		}
	}
	return nil
}

// backlogChunk is the span one Derive call covers in a backlog: one TSDB read and, for old
// hours, one block per chunk.
const backlogChunk = 3 * 24 * hourMs

// oldest returns the start of the hour of the oldest stored sample, within query.MaxRange of now,
// when the storage knows it (tsdb.DB.StartTime).
func (d *Deriver) oldest(now int64) (int64, bool) {
	st, ok := d.opts.Storage.(interface{ StartTime() (int64, error) })
	if !ok {
		// A remote store does not say where its data starts: derive the span a collector's
		// backfill covers (older spans: the derive command).
		return floorTo(now-HistoryWithoutStartTime.Milliseconds(), hourMs), true
	}
	t, err := st.StartTime()
	if err != nil || t == math.MaxInt64 || t >= now {
		return 0, false
	}
	// A sample stamped at t belongs to the minute (and hour) before it.
	return max(floorTo(t-1, hourMs), floorTo(now-query.MaxRange.Milliseconds(), hourMs)), true
}

// writeGauges writes the budget gauges when the Deriver knows the projects.
func (d *Deriver) writeGauges(ctx context.Context, now int64) error {
	if d.opts.Projects == nil {
		return nil
	}
	return d.WriteGauges(ctx, time.UnixMilli(now))
}

func (d *Deriver) readRange(ctx context.Context, now int64) (from, through int64, ok, days bool, err error) {
	q, err := d.opts.Storage.Querier(now-query.MaxRange.Milliseconds(), now)
	if err != nil {
		return 0, 0, false, false, fmt.Errorf("open TSDB querier: %w", err)
	}
	defer q.Close()
	ss := q.Select(ctx, false, nil, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, RangeSeries))
	var it chunkenc.Iterator
	var got [3]bool
	for ss.Next() {
		s := ss.At()
		it = s.Iterator(it)
		var last float64
		var have bool
		for it.Next() == chunkenc.ValFloat {
			_, last = it.At()
			have = true
		}
		if !have {
			continue
		}
		switch s.Labels().Get("bound") {
		case "from":
			from, got[0] = int64(last)*1000, true
		case "through":
			through, got[1] = int64(last)*1000, true
		case "days":
			got[2] = last == 1
		}
	}
	if err := ss.Err(); err != nil {
		return 0, 0, false, false, fmt.Errorf("read %s: %w", RangeSeries, err)
	}
	return from, through, got[0] && got[1] && through >= from, got[2], nil
}

// writeRange records the derived span. Several writes in one run (a chunk at a time) are
// stamped a millisecond apart: the TSDB refuses a different value at the same timestamp, and the
// last sample is the span.
func (d *Deriver) writeRange(ctx context.Context, from, through, now int64) error {
	d.mu.Lock()
	t := max(now, d.rangeT+1)
	d.rangeT = t
	days := d.days
	d.mu.Unlock()
	w := d.newWriter(ctx)
	w.add(labels.FromStrings(labels.MetricName, RangeSeries, "bound", "from"), t, float64(from/1000))
	w.add(labels.FromStrings(labels.MetricName, RangeSeries, "bound", "through"), t, float64(through/1000))
	if days {
		// bound="days" is 1 once the daily tier holds every whole UTC day of the span.
		w.add(labels.FromStrings(labels.MetricName, RangeSeries, "bound", "days"), t, 1)
	}
	return w.commit()
}

// hourSums is the per-hour sum of one series over the derived span: integer quanta for the
// usage series (exact), a compensated float sum for the cost series.
type hourSums struct {
	lbls   labels.Labels
	metric query.Metric // usage series only
	usage  bool
	quanta []int64
	sums   []ksum
	has    []bool
	min    []int64 // earliest sample of each hour (existing derived series only)
}

// Derive recomputes the hourly series and the hourly cost series for the hours in [from, to)
// (whole hours) from the 1-minute samples, and writes what changed. It is idempotent.
func (d *Deriver) Derive(ctx context.Context, from, to time.Time) error {
	lo, hi := floorTo(from.UnixMilli(), hourMs), ceilTo(to.UnixMilli(), hourMs)
	n := int((hi - lo) / hourMs)
	if n <= 0 {
		return nil
	}
	raw := map[string]*hourSums{} // by the labels of the hourly series
	usageNames := ""
	for m := range query.NumMetrics {
		if m > 0 {
			usageNames += "|"
		}
		usageNames += query.SeriesOf(m)
	}
	hourly := func(l labels.Labels) labels.Labels {
		b := labels.NewBuilder(l)
		b.Set(labels.MetricName, query.HourlyName(l.Get(labels.MetricName)))
		return b.Labels()
	}
	err := d.scan(ctx, lo, hi, usageNames, n, raw, hourly, minuteMs, hourMs)
	if err != nil {
		return err
	}
	have := map[string]*hourSums{}
	derivedNames := ""
	for m := range query.NumMetrics {
		if m > 0 {
			derivedNames += "|"
		}
		derivedNames += query.HourlyName(query.SeriesOf(m))
	}
	if err := d.scan(ctx, lo, hi, derivedNames+"|"+series.ProjectCostUSD, n, have, nil, hourMs, hourMs); err != nil {
		return err
	}

	// Hourly usage series: the hour's exact quanta of every series.
	w := d.newWriter(ctx)
	for key, r := range raw {
		for h := range n {
			if r.has[h] {
				w.reconcileQuanta(r.lbls, key, have, h, lo, hourMs, r.metric, r.quanta[h])
			}
		}
	}
	if err := w.commit(); err != nil {
		return err
	}
	// Hourly cost series, priced from the Engine's HourlyAmounts — the read billing and the API
	// use — over the hourly points just written (the same integers, a sixtieth of the samples);
	// from the 1-minute samples if some point could not be written.
	span := [2]int64{lo, hi}
	if w.skipped > 0 {
		span = [2]int64{}
	}
	return d.priceHours(ctx, lo, hi, span, have)
}

// priceHours writes the hourly cost series of the hours [lo, hi) from HourlyAmounts, reading the
// hourly tier inside span; have holds the cost samples already written.
func (d *Deriver) priceHours(ctx context.Context, lo, hi int64, span [2]int64, have map[string]*hourSums) error {
	e := d.engine
	// Each project's prices (its team's and its own overrides on the default sheets), read once
	// for the cycle.
	pl, err := e.PriceList(ctx, nil)
	if err != nil {
		return err
	}
	w := d.newWriter(ctx)
	err = e.HourlyAmountsTier(ctx, nil, time.UnixMilli(lo), time.UnixMilli(hi), time.UnixMilli(span[0]), time.UnixMilli(span[1]), func(project string, hour time.Time, a *query.Amounts) error {
		t := hour.UnixMilli()
		c := pl.Of(project).CostAt(hour, a)
		for _, res := range query.Resources {
			l := labels.FromStrings(labels.MetricName, series.ProjectCostUSD, series.LabelProject, project, series.LabelResource, string(res))
			w.reconcile(l, l.String(), have, int((t-lo)/hourMs), lo, c.Of(res).InexactFloat64())
		}
		return nil
	})
	if err != nil {
		_ = w.app.Rollback()
		return err
	}
	return w.commit()
}

// reprice re-prices the hourly cost series of the derived hours in [lo, hi) (after a change of
// price overrides that reaches back before the recent window), a chunk at a time.
func (d *Deriver) reprice(ctx context.Context, lo, hi int64) error {
	d.mu.Lock()
	lo, hi = max(floorTo(lo, hourMs), d.from), min(hi, d.through)
	d.mu.Unlock()
	for ; lo < hi; lo += backlogChunk {
		end := min(hi, lo+backlogChunk)
		have := map[string]*hourSums{}
		if err := d.scan(ctx, lo, end, series.ProjectCostUSD, int((end-lo)/hourMs), have, nil, hourMs, hourMs); err != nil {
			return err
		}
		if err := d.priceHours(ctx, lo, end, [2]int64{lo, end}, have); err != nil {
			return err
		}
	}
	return nil
}

// overridesChangedSince reads the price overrides and returns the earliest instant (ms) from
// which some project's prices differ from those of the previous run (ok false when nothing
// changed, or on the first run, which has nothing to compare with).
func (d *Deriver) overridesChangedSince(ctx context.Context) (int64, bool, error) {
	if d.opts.Overrides == nil {
		return 0, false, nil
	}
	ov, err := d.opts.Overrides(ctx, nil)
	if err != nil {
		return 0, false, fmt.Errorf("read the price overrides: %w", err)
	}
	cur := map[string]int64{} // "project from prices" → from (ms)
	for p, o := range ov {
		for scope, l := range map[string][]config.PriceOverride{"team": o.Team, "project": o.Project} {
			for _, x := range l {
				cur[p+" "+scope+" "+strconv.FormatInt(x.EffectiveFrom.UnixMilli(), 10)+" "+x.PricesJSON()] = x.EffectiveFrom.UnixMilli()
			}
		}
	}
	d.mu.Lock()
	prev, known := d.overrides, d.overridesKnown
	d.overrides, d.overridesKnown = cur, true
	d.mu.Unlock()
	if !known {
		return 0, false, nil
	}
	earliest, changed := int64(math.MaxInt64), false
	for k, t := range cur {
		if _, ok := prev[k]; !ok {
			earliest, changed = min(earliest, t), true
		}
	}
	for k, t := range prev {
		if _, ok := cur[k]; !ok {
			earliest, changed = min(earliest, t), true
		}
	}
	return earliest, changed, nil
}

// scan sums the samples of the series named by the regexp names into out, per step (an hour or
// a UTC day) of [lo, hi). A sample stamped at t belongs to the period of length unit (a minute
// for the raw series, an hour or a day for the tiers) ending at ceil(t, unit), and so to the step
// in which that period starts. rename maps a series to the key of its derived series.
func (d *Deriver) scan(ctx context.Context, lo, hi int64, names string, n int, out map[string]*hourSums, rename func(labels.Labels) labels.Labels, unit, step int64) error {
	q, err := d.opts.Storage.Querier(lo+1, hi)
	if err != nil {
		return fmt.Errorf("open TSDB querier: %w", err)
	}
	defer q.Close()
	ss := q.Select(ctx, false, nil, labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, names))
	var it chunkenc.Iterator
	for ss.Next() {
		s := ss.At()
		l := s.Labels()
		if rename != nil {
			l = rename(l)
		}
		key := l.String()
		hs := out[key]
		if hs == nil {
			hs = &hourSums{lbls: l, has: make([]bool, n), min: make([]int64, n)}
			hs.metric, hs.usage = query.MetricOf(l.Get(labels.MetricName))
			if hs.usage {
				hs.quanta = make([]int64, n)
			} else {
				hs.sums = make([]ksum, n)
			}
			out[key] = hs
		}
		it = s.Iterator(it)
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			if vt != chunkenc.ValFloat {
				continue
			}
			t, v := it.At()
			h := (floorTo(ceilTo(t, unit)-unit, step) - lo) / step
			if h < 0 || h >= int64(n) {
				continue
			}
			if !hs.has[h] || t < hs.min[h] {
				hs.min[h] = t
			}
			if hs.usage {
				q, err := query.Quantize(hs.metric, v)
				if err != nil {
					return fmt.Errorf("read series %s at %d: %w", l, t, err)
				}
				sum, over := query.Int128Of(hs.quanta[h]).Add64(q)
				v64, fits := sum.Int64()
				if over || !fits || !query.Recoverable(hs.metric, v64) {
					return fmt.Errorf("hour of %s at %d: %w", l, t, query.ErrSampleRange)
				}
				hs.quanta[h] = v64
			} else {
				hs.sums[h].add(v)
			}
			hs.has[h] = true
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("read series %s: %w", l, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if err := ss.Err(); err != nil {
		return fmt.Errorf("select series %s: %w", names, err)
	}
	return nil
}

// writer appends derived samples, committing in batches.
type writer struct {
	d       *Deriver
	ctx     context.Context
	app     storage.Appender
	n       int
	old     []pendingSample // older than the out-of-order window: written as a block on commit
	skipped int             // samples neither the head nor a block could take
	err     error
}

type pendingSample struct {
	l labels.Labels
	t int64
	v float64
}

// BlockWriter writes samples older than the TSDB's out-of-order window as a persisted block
// (tsdb.DB.WriteBlock). A Storage without it skips such samples and queries read those hours
// from the 1-minute samples.
type BlockWriter interface {
	WriteBlock(ctx context.Context, maxt int64, fn func(app storage.Appender) error) error
}

func (d *Deriver) newWriter(ctx context.Context) *writer {
	return &writer{d: d, ctx: ctx, app: d.opts.Storage.Appender(ctx)}
}

func (w *writer) add(l labels.Labels, t int64, v float64) {
	if w.err != nil {
		return
	}
	if _, err := w.app.Append(0, l, t, v); err != nil {
		// An hour older than the TSDB's out-of-order window: the head refuses it, a block
		// takes it on commit.
		if _, ok := w.d.opts.Storage.(BlockWriter); ok && (errors.Is(err, storage.ErrTooOldSample) || errors.Is(err, storage.ErrOutOfBounds)) {
			w.old = append(w.old, pendingSample{l, t, v})
			return
		}
		w.d.appendErrors.Inc()
		w.skipped++
		w.d.logger.Debug("append derived sample; skipped", "series", l.String(), "t", t, "err", err)
		return
	}
	w.d.samples.Inc()
	w.n++
	if w.n >= 5000 {
		w.err = w.app.Commit()
		w.app = w.d.opts.Storage.Appender(w.ctx)
		w.n = 0
	}
}

func (w *writer) commit() error {
	if w.err != nil {
		_ = w.app.Rollback()
		return fmt.Errorf("commit derived samples: %w", w.err)
	}
	if err := w.app.Commit(); err != nil {
		return fmt.Errorf("commit derived samples: %w", err)
	}
	if len(w.old) == 0 {
		return nil
	}
	bw := w.d.opts.Storage.(BlockWriter)
	maxt := int64(math.MinInt64)
	for _, p := range w.old {
		maxt = max(maxt, p.t)
	}
	err := bw.WriteBlock(w.ctx, maxt, func(app storage.Appender) error {
		for _, p := range w.old {
			if _, err := app.Append(0, p.l, p.t, p.v); err != nil {
				return fmt.Errorf("append %s at %d to a block: %w", p.l, p.t, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write derived samples older than the out-of-order window: %w", err)
	}
	w.d.samples.Add(len(w.old))
	w.d.blocks.Inc()
	w.old = nil
	return nil
}

// reconcile writes the difference between want and what the derived series already holds for
// hour h: a first sample at the hour's end, or a correction just before the earliest one.
func (w *writer) reconcile(l labels.Labels, key string, have map[string]*hourSums, h int, lo int64, want float64) {
	end := lo + int64(h+1)*hourMs
	hs := have[key]
	if hs == nil || !hs.has[h] {
		w.add(l, end, want)
		return
	}
	got := hs.sums[h].value()
	diff := want - got
	if math.Abs(diff) <= 1e-12*math.Max(1, math.Abs(want)) {
		return
	}
	w.add(l, hs.min[h]-1, diff)
	hs.sums[h].add(diff)
	hs.min[h]--
}

// reconcileQuanta is reconcile for a usage series in exact quanta, for step h (an hour or a day
// of length step from lo): the point (or the correction) is a whole number of quanta, so a reader
// recovers the amount exactly.
func (w *writer) reconcileQuanta(l labels.Labels, key string, have map[string]*hourSums, h int, lo, step int64, m query.Metric, want int64) {
	end := lo + int64(h+1)*step
	hs := have[key]
	if hs == nil || !hs.has[h] {
		w.add(l, end, query.Dequantize(m, want))
		return
	}
	diff := want - hs.quanta[h]
	if diff == 0 {
		return
	}
	w.add(l, hs.min[h]-1, query.Dequantize(m, diff))
	hs.quanta[h] += diff
	hs.min[h]--
}

// WriteGauges writes, for every project, its effective budget, its cost in the current billing
// period so far and the period's forecast, stamped at now.
func (d *Deriver) WriteGauges(ctx context.Context, now time.Time) error {
	projects, err := d.opts.Projects.AllProjects(ctx)
	if err != nil {
		return fmt.Errorf("list projects: %w", err)
	}
	byTeam := map[string][]store.Project{}
	for _, p := range projects {
		byTeam[p.TeamID] = append(byTeam[p.TeamID], p)
	}
	w := d.newWriter(ctx)
	committed := false
	defer func() {
		if !committed { // an error below: give the appender (and the TSDB's write lock) back
			_ = w.app.Rollback()
		}
	}()
	ts := now.UnixMilli()
	settings, err := d.budgetSettings(ctx)
	if err != nil {
		return err
	}
	for teamID, ps := range byTeam {
		team, err := d.opts.Projects.GetTeam(ctx, teamID)
		if err != nil {
			return fmt.Errorf("get team %s: %w", teamID, err)
		}
		ids := make([]string, len(ps))
		for i, p := range ps {
			ids[i] = p.ID
		}
		f, err := d.engine.Forecast(ctx, ids, team.BillingAnchorDay, now)
		if err != nil {
			return err
		}
		for _, p := range ps {
			l := func(name string) labels.Labels {
				return labels.FromStrings(labels.MetricName, name, series.LabelProject, p.ID)
			}
			limit, fc := store.EffectiveLimit(p, team), f[p.ID]
			w.add(l(series.ProjectBudgetUSD), ts, limit.InexactFloat64())
			w.add(l(series.ProjectCostMonthToDateUSD), ts, fc.MonthToDate.Total().InexactFloat64())
			// The rule files compare this with their thresholds: exact (budget.PercentUsed
			// floors to 0.1), unlike the ratio of the two rounded floats above.
			w.add(l(series.ProjectBudgetUsedPercent), ts, budget.PercentUsed(fc.MonthToDate.Total(), limit).InexactFloat64())
			w.add(l(series.ProjectCostForecastUSD), ts, fc.Forecast.InexactFloat64())
			writeThresholds(w, settings, p, ts)
		}
		writeTeamBudget(w, settings, team, ps, f, ts)
		if err := d.writeDaily(ctx, w, settings, team, ps, now); err != nil {
			return err
		}
	}
	committed = true
	return w.commit()
}
