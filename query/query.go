// Package query is the read side of the usage series: exact calendar rollups by hour, day, ISO
// week and month in any IANA time zone, per project and per deployment, priced with the
// configured price sheets; the one read of a project's hourly amounts (HourlyAmounts) that the
// API, the derived cost series (package rollup, which writes the hourly tier) and billing share;
// and right-sizing recommendations. It only reads.
//
// Invariants:
//   - Usage samples are per-period amounts stamped at the END of their period (package series):
//     a sample stamped at t belongs to the 1-minute period starting at ceil(t, 1m) − 1m, so late
//     corrections written at end − k ms land in the same period. Hourly points
//     (<series>:sum1h) belong to the hour starting at ceil(t, 1h) − 1h.
//   - A bucket sums the periods that START inside it. Whole UTC days inside a bucket (priced by
//     one sheet) are read from the daily series (<series>:sum1d) once derived, the other whole
//     hours from the hourly series once derived; partial hours (time zones with half-hour
//     offsets) and hours not yet derived are read from the 1-minute samples.
//   - Every stored sample is read as an exact integer count of quanta of what CloudWatch
//     reported (Quantize, PerUnit: 1/256 vCPU-second, MiB-minutes, bytes, requests); every sum
//     above it is an exact 128-bit integer sum (Amounts), independent of order, and money is
//     priced from the hourly amounts in exact decimals with the sheet in force at each hour's
//     start, never through a float. Nothing is rounded before the API renders it.
package query

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/shopspring/decimal"
	"golang.org/x/sync/errgroup"

	"github.com/cygni/usage/series"
)

const (
	minuteMs = int64(time.Minute / time.Millisecond)
	hourMs   = int64(time.Hour / time.Millisecond)
	dayMs    = 24 * hourMs
	minTime  = math.MinInt64
)

// Options configure an Engine.
type Options struct {
	// Storage is the TSDB. Required.
	Storage storage.Queryable
	// Prices is the price list. Zero: the default prices.
	Prices Prices
	// Overrides, if set, returns the projects' negotiated price overrides, which every cost
	// figure puts on top of Prices (PriceList). Nil: every project has the default prices.
	Overrides OverridesFunc
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// HourlyRange returns the span [from, through) in which the hourly series are complete
	// (Deriver.Range). Hours outside it are read from 1-minute samples. Nil means an empty span:
	// every query reads 1-minute samples.
	HourlyRange func() (from, through time.Time)
	// DailyRange returns the span of whole UTC days [from, through) in which the daily series
	// (<series>:sum1d) are complete (Deriver.DailyRange); it must lie inside HourlyRange. A UTC
	// day inside it that lies whole inside one bucket, priced by one sheet, is read from its
	// daily points. Nil: no day is read from the daily series.
	DailyRange func() (from, through time.Time)
	// DayCacheEntries bounds the day cache (project-days of daily-tier sums, reused while the
	// storage reports their days unchanged; see Generations). Zero: DefaultDayCacheEntries;
	// negative: no cache.
	DayCacheEntries int
	// HourCacheEntries bounds the hour cache (project-days of hourly-tier sums, per hour, reused
	// the same way). Zero: DefaultHourCacheEntries; negative: no cache.
	HourCacheEntries int
	// MinuteCacheEntries bounds the minute cache (project-hours of 1-minute sums, for the hours
	// not derived yet, reused the same way). Zero: DefaultMinuteCacheEntries; negative: no cache.
	MinuteCacheEntries int
}

// Engine answers usage and cost questions over the TSDB. It is safe for concurrent use.
type Engine struct {
	logger      *slog.Logger
	db          storage.Queryable
	prices      Prices
	overrides   OverridesFunc
	now         func() time.Time
	hourlyRange func() (from, through time.Time)
	dailyRange  func() (from, through time.Time)
	days        *dayCache // nil: every day is read from the storage
	hours       *dayCache // hourly cells; nil: every hour is read from the storage
	minutes     *dayCache // per project and UTC hour, 1-minute sums; nil: read from the storage
}

// New builds an Engine. It starts no goroutines.
func New(logger *slog.Logger, _ prometheus.Registerer, opts Options) (*Engine, error) {
	if opts.Storage == nil {
		return nil, errors.New("query: Storage is nil")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.Prices.sheets == nil {
		opts.Prices = NewPrices(defaultPricing())
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HourlyRange == nil {
		opts.HourlyRange = func() (time.Time, time.Time) { return time.Time{}, time.Time{} }
	}
	if opts.DailyRange == nil {
		opts.DailyRange = func() (time.Time, time.Time) { return time.Time{}, time.Time{} }
	}
	if opts.DayCacheEntries == 0 {
		opts.DayCacheEntries = DefaultDayCacheEntries
	}
	if opts.HourCacheEntries == 0 {
		opts.HourCacheEntries = DefaultHourCacheEntries
	}
	if opts.MinuteCacheEntries == 0 {
		opts.MinuteCacheEntries = DefaultMinuteCacheEntries
	}
	e := &Engine{logger: logger.With("component", "query"), db: opts.Storage, prices: opts.Prices, overrides: opts.Overrides, now: opts.Now,
		hourlyRange: opts.HourlyRange, dailyRange: opts.DailyRange}
	if _, ok := opts.Storage.(Generations); ok {
		e.days = newDayCache(opts.DayCacheEntries)
		e.hours = newDayCache(opts.HourCacheEntries)
		e.minutes = newDayCache(opts.MinuteCacheEntries)
	}
	return e, nil
}

// Prices returns the engine's default price list (a project's own prices: PriceList).
func (e *Engine) Prices() Prices { return e.prices }

// Now returns the engine's clock.
func (e *Engine) Now() time.Time { return e.now() }

// Grouping says which labels a rollup keeps.
type Grouping int

// Groupings.
const (
	ByTotal      Grouping = iota // one row per bucket
	ByProject                    // one row per project and bucket
	ByDeployment                 // one row per project, deployment and bucket
)

// Key identifies a rollup's row: empty fields are summed over.
type Key struct{ Project, Deployment string }

// Bucket is one bucket of a rollup: exact usage and cost.
type Bucket struct {
	Start, End time.Time
	Usage      Amounts
	Cost       Cost
	// Sheet is the index of the price sheet that prices every hour of the bucket, or -1 when
	// several sheets price its hours or it has no usage (see Prices.Cost and Prices.Shown).
	Sheet int
}

// Rollup is the answer of Engine.Rollup.
type Rollup struct {
	Bounds []time.Time      // n+1 boundaries
	Rows   map[Key][]Bucket // each row has n buckets
	// Prices are the prices of the rollup's projects; a Bucket's Sheet indexes Prices.Of(its
	// project).
	Prices PriceList
}

// Keys returns the row keys sorted by project, then deployment.
func (r *Rollup) Keys() []Key {
	keys := make([]Key, 0, len(r.Rows))
	for k := range r.Rows {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Project != keys[j].Project {
			return keys[i].Project < keys[j].Project
		}
		return keys[i].Deployment < keys[j].Deployment
	})
	return keys
}

// Total sums every row into one row of n buckets. Usage sums are exact integers and costs
// exact decimals, so the result does not depend on the order of the rows; an overflow (which the
// accepted ranges cannot reach, see ErrOverflow) is returned, never dropped.
func (r *Rollup) Total() ([]Bucket, error) {
	out := r.empty()
	for _, k := range r.Keys() {
		row := r.Rows[k]
		for i := range row {
			if err := out[i].Usage.Add(&row[i].Usage); err != nil {
				return nil, err
			}
			out[i].Cost = out[i].Cost.Add(row[i].Cost)
		}
	}
	return out, nil
}

func (r *Rollup) empty() []Bucket {
	n := max(len(r.Bounds)-1, 0)
	out := make([]Bucket, n)
	for i := range out {
		out[i].Start, out[i].End, out[i].Sheet = r.Bounds[i], r.Bounds[i+1], -1
	}
	return out
}

// Rollup sums the usage of projects (at least one) over the buckets bounds (n+1 boundaries),
// grouped by g, and prices it.
func (e *Engine) Rollup(ctx context.Context, projects []string, bounds []time.Time, g Grouping) (*Rollup, error) {
	return e.rollup(ctx, projects, bounds, g, true)
}

// RollupUsage is Rollup without the pricing of the buckets one price sheet prices, for callers
// that price many buckets themselves (Prices.Shown, Prices.Cost): such a bucket's Cost is zero
// and its Sheet names the sheet. A bucket several sheets price (a price change inside it) has
// its exact Cost and Sheet -1, as in Rollup.
func (e *Engine) RollupUsage(ctx context.Context, projects []string, bounds []time.Time, g Grouping) (*Rollup, error) {
	return e.rollup(ctx, projects, bounds, g, false)
}

func (e *Engine) rollup(ctx context.Context, projects []string, bounds []time.Time, g Grouping, price bool) (*Rollup, error) {
	r := &Rollup{Bounds: bounds, Rows: map[Key][]Bucket{}, Prices: PriceList{def: e.prices}}
	if len(bounds) < 2 || len(projects) == 0 {
		return r, nil
	}
	pl, err := e.PriceList(ctx, projects)
	if err != nil {
		return nil, err
	}
	r.Prices = pl
	// Projects priced differently cannot share a total's cells: read them by project, then sum.
	rg := g
	if g == ByTotal && !pl.uniform() {
		rg = ByProject
		price = true // the total's buckets are not priced by one sheet
	}
	rd, err := e.readParallel(ctx, projects, bounds, rg, pl.def)
	if err != nil {
		return nil, err
	}
	ns := rd.nsheets
	for key, acc := range rd.rows {
		prices := pl.Of(key.Project)
		row := r.empty()
		for i := range row {
			b := &row[i]
			b.Sheet = -1
			n := 0
			for s := range ns {
				c := i*ns + s
				if !acc.has[c] {
					continue
				}
				a := &acc.cells[c]
				if err := b.Usage.Add(a); err != nil {
					return nil, err
				}
				if price {
					b.Cost = b.Cost.Add(prices.cost(s, a))
				}
				b.Sheet = s
				n++
			}
			if n > 1 {
				b.Sheet = -1
				if !price {
					for s := range ns {
						if c := i*ns + s; acc.has[c] {
							b.Cost = b.Cost.Add(prices.cost(s, &acc.cells[c]))
						}
					}
				}
			}
		}
		r.Rows[key] = row
	}
	if rg != g {
		total, err := r.Total()
		if err != nil {
			return nil, err
		}
		for i := range total {
			total[i].Sheet = -1
		}
		r.Rows = map[Key][]Bucket{}
		if len(rd.rows) > 0 {
			r.Rows[Key{}] = total
		}
	}
	return r, nil
}

// parallelProjects is the number of projects from which a rollup reads in several goroutines
// (one per core, at most maxParts), each over a share of the projects.
const (
	parallelProjects = 64
	maxParts         = 4
)

// readParallel reads the rows of projects into one reader: for many projects, shares of them
// are read concurrently and their rows merged (exact integer sums, so the result does not
// depend on the split or the order).
func (e *Engine) readParallel(ctx context.Context, projects []string, bounds []time.Time, g Grouping, prices Prices) (*reader, error) {
	parts := min(runtime.GOMAXPROCS(0), maxParts, len(projects)/parallelProjects)
	if parts <= 1 {
		rd := newReader(e, bounds, g, prices)
		rd.projects = projects
		return rd, rd.read(ctx, projectMatcher(projects))
	}
	sorted := slices.Clone(projects)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted) // a project in two shares would be read twice
	rds := make([]*reader, parts)
	grp, gctx := errgroup.WithContext(ctx)
	for i := range parts {
		share := sorted[i*len(sorted)/parts : (i+1)*len(sorted)/parts]
		rds[i] = newReader(e, bounds, g, prices)
		rds[i].projects = share
		grp.Go(func() error { return rds[i].read(gctx, projectMatcher(share)) })
	}
	if err := grp.Wait(); err != nil {
		return nil, err
	}
	out := rds[0]
	for _, rd := range rds[1:] {
		for k, acc := range rd.rows {
			dst, ok := out.rows[k]
			if !ok {
				out.rows[k] = acc
				continue
			}
			for c := range acc.cells {
				if !acc.has[c] {
					continue
				}
				if err := dst.cells[c].Add(&acc.cells[c]); err != nil {
					return nil, err
				}
				dst.has[c] = true
			}
		}
	}
	return out, nil
}

// HourlyFunc receives one project's exact amounts for the hour starting at hour (UTC). a is
// valid only during the call.
type HourlyFunc func(project string, hour time.Time, a *Amounts) error

// HourlyAmounts calls fn, hour by hour and within an hour by project ID, for every project of
// projects (nil: every series with a project label) and every whole UTC hour in [from, to)
// that has usage, with the hour's exact amounts in quanta. It is the one read of hourly usage:
// the API's rollups sum the same cells (Rollup), the Deriver prices them into
// cygni_project_cost_usd, and billing reports them to Stripe, so the dashboard, the alerts and
// the invoice cannot disagree. Hours inside the Deriver's span come from the hourly series
// (which hold the same integers), the others from the 1-minute samples.
func (e *Engine) HourlyAmounts(ctx context.Context, projects []string, from, to time.Time, fn HourlyFunc) error {
	f, t := e.hourlyRange()
	return e.hourlyAmounts(ctx, projects, from, to, [2]int64{f.UnixMilli(), t.UnixMilli()}, fn)
}

// HourlyAmountsTier is HourlyAmounts reading the hourly series for the whole hours inside
// [tierFrom, tierTo) instead of the Deriver's span: the Deriver prices the hourly points it has
// just written (an empty tier reads 1-minute samples only).
func (e *Engine) HourlyAmountsTier(ctx context.Context, projects []string, from, to, tierFrom, tierTo time.Time, fn HourlyFunc) error {
	return e.hourlyAmounts(ctx, projects, from, to, [2]int64{tierFrom.UnixMilli(), tierTo.UnixMilli()}, fn)
}

func (e *Engine) hourlyAmounts(ctx context.Context, projects []string, from, to time.Time, derived [2]int64, fn HourlyFunc) error {
	from, to = from.UTC().Truncate(time.Hour), to.UTC().Truncate(time.Hour)
	if !from.Before(to) {
		return nil
	}
	if to.Sub(from) > MaxRange {
		return fmt.Errorf("%w: at most %d days", ErrRangeTooLarge, int(MaxRange/(24*time.Hour)))
	}
	bounds := make([]time.Time, 0, int(to.Sub(from)/time.Hour)+1)
	for h := from; !h.After(to); h = h.Add(time.Hour) {
		bounds = append(bounds, h)
	}
	m := labels.MustNewMatcher(labels.MatchRegexp, series.LabelProject, ".+")
	if projects != nil {
		if len(projects) == 0 {
			return nil
		}
		m = projectMatcher(projects)
	}
	rd := newReaderSpan(e, bounds, ByProject, derived, [2]int64{}, e.prices)
	if err := rd.read(ctx, m); err != nil {
		return err
	}
	keys := make([]string, 0, len(rd.rows))
	for k := range rd.rows {
		keys = append(keys, k.Project)
	}
	sort.Strings(keys)
	ns := rd.nsheets
	for i := range len(bounds) - 1 {
		for _, p := range keys {
			acc := rd.rows[Key{Project: p}]
			var a Amounts
			has := false
			for s := range ns {
				if c := i*ns + s; acc.has[c] {
					if err := a.Add(&acc.cells[c]); err != nil {
						return err
					}
					has = true
				}
			}
			if !has {
				continue
			}
			if err := fn(p, bounds[i], &a); err != nil {
				return err
			}
		}
	}
	return nil
}

// projectMatcher matches the project label against a set of project IDs.
func projectMatcher(projects []string) *labels.Matcher {
	if len(projects) == 1 {
		return labels.MustNewMatcher(labels.MatchEqual, series.LabelProject, projects[0])
	}
	q := make([]string, len(projects))
	for i, p := range projects {
		q[i] = regexp.QuoteMeta(p)
	}
	return labels.MustNewMatcher(labels.MatchRegexp, series.LabelProject, strings.Join(q, "|"))
}

// rowAcc accumulates one row: an Amounts per bucket and price sheet (cells[bucket*nsheets+sheet]).
type rowAcc struct {
	cells []Amounts
	has   []bool
}

// reader sums samples into rows.
type reader struct {
	e       *Engine
	prices  Prices   // the timeline of sheets that splits the cells
	bounds  []int64  // ms
	derived [2]int64 // hourly points are used for hours inside [derived[0], derived[1])
	daily   [2]int64 // daily points are used for UTC days inside [daily[0], daily[1])
	group   Grouping
	nsheets int
	// projects are the projects read, when known: the day cache is used only then.
	projects []string
	rows     map[Key]*rowAcc
	// The hours [h0, h0 + len(hourBucket)·1h) of the range: the bucket that holds each hour
	// whole (-1 when it straddles a boundary or lies outside) and the sheet that prices it.
	h0         int64
	hourBucket []int32
	hourSheet  []int32
	// The UTC days [d0, d0 + len(dayBucket)·1d): the bucket that holds each day whole when it is
	// read from the daily series (inside daily, one sheet for all its hours), else -1.
	d0        int64
	dayBucket []int32
}

func newReader(e *Engine, bounds []time.Time, g Grouping, prices Prices) *reader {
	from, through := e.hourlyRange()
	df, dt := e.dailyRange()
	daily := [2]int64{}
	if !df.IsZero() && !dt.IsZero() {
		daily = [2]int64{max(df.UnixMilli(), from.UnixMilli()), min(dt.UnixMilli(), through.UnixMilli())}
	}
	return newReaderSpan(e, bounds, g, [2]int64{from.UnixMilli(), through.UnixMilli()}, daily, prices)
}

// newReaderSpan is newReader reading hourly points for the whole hours inside derived and daily
// points for the whole UTC days inside daily. Cells are kept per sheet of prices' timeline.
func newReaderSpan(e *Engine, bounds []time.Time, g Grouping, derived, daily [2]int64, prices Prices) *reader {
	b := make([]int64, len(bounds))
	for i, t := range bounds {
		b[i] = t.UnixMilli()
	}
	r := &reader{e: e, prices: prices, bounds: b, derived: derived, daily: daily, group: g,
		nsheets: len(prices.sheets), rows: map[Key]*rowAcc{}}
	r.h0 = floorTo(b[0], hourMs)
	n := (ceilTo(b[len(b)-1], hourMs) - r.h0) / hourMs
	r.hourBucket, r.hourSheet = make([]int32, n), make([]int32, n)
	for i := range r.hourBucket {
		h := r.h0 + int64(i)*hourMs
		bk := r.bucketOf(h)
		if bk < 0 || bk != r.bucketOf(h+hourMs-1) {
			bk = -1
		}
		r.hourBucket[i], r.hourSheet[i] = int32(bk), int32(prices.sheet(h))
	}
	r.d0 = floorTo(b[0], dayMs)
	if daily[1] > daily[0] {
		nd := (ceilTo(b[len(b)-1], dayMs) - r.d0) / dayMs
		r.dayBucket = make([]int32, nd)
		for i := range r.dayBucket {
			r.dayBucket[i] = r.dayTier(r.d0 + int64(i)*dayMs)
		}
	}
	return r
}

// dayTier returns the bucket of the UTC day starting at dy when the day is read from the daily
// series — derived, whole inside one bucket and priced by one sheet — else -1.
func (r *reader) dayTier(dy int64) int32 {
	if dy < r.daily[0] || dy+dayMs > r.daily[1] {
		return -1
	}
	i := r.hourIndex(dy)
	if i < 0 || r.hourIndex(dy+dayMs-hourMs) < 0 {
		return -1
	}
	bk, sh := r.hourBucket[i], r.hourSheet[i]
	for j := i; j < i+24; j++ {
		if r.hourBucket[j] != bk || r.hourSheet[j] != sh || bk < 0 {
			return -1
		}
	}
	return bk
}

// dayIndex returns the index of the UTC day starting at dy in dayBucket when that day is read
// from the daily series, or -1.
func (r *reader) dayIndex(dy int64) int {
	i := (dy - r.d0) / dayMs
	if dy < r.d0 || i >= int64(len(r.dayBucket)) || r.dayBucket[i] < 0 {
		return -1
	}
	return int(i)
}

// inDay reports whether the hour starting at h belongs to a UTC day read from the daily series.
func (r *reader) inDay(h int64) bool {
	return len(r.dayBucket) > 0 && r.dayIndex(floorTo(h, dayMs)) >= 0
}

// bucketOf returns the bucket containing t, or -1.
func (r *reader) bucketOf(t int64) int {
	if t < r.bounds[0] || t >= r.bounds[len(r.bounds)-1] {
		return -1
	}
	return sort.Search(len(r.bounds), func(i int) bool { return r.bounds[i] > t }) - 1
}

// hourIndex returns the index of the hour starting at h in the hour tables, or -1.
func (r *reader) hourIndex(h int64) int {
	i := (h - r.h0) / hourMs
	if h < r.h0 || i >= int64(len(r.hourBucket)) {
		return -1
	}
	return int(i)
}

// hourly reports whether the hour starting at h is read from the hourly series: it lies whole
// inside one bucket and has been derived.
func (r *reader) hourly(h int64) bool {
	if h < r.derived[0] || h+hourMs > r.derived[1] || r.inDay(h) {
		return false
	}
	i := r.hourIndex(h)
	return i >= 0 && r.hourBucket[i] >= 0
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func floorTo(t, step int64) int64 { return floorDiv(t, step) * step }
func ceilTo(t, step int64) int64  { return -floorDiv(-t, step) * step }

// read sums the samples of the matching series into r.rows.
func (r *reader) read(ctx context.Context, ms ...*labels.Matcher) error {
	lo, hi := r.bounds[0], r.bounds[len(r.bounds)-1]
	nameRe := func(name func(string) string) string {
		names := make([]string, 0, NumMetrics)
		for _, n := range seriesOf {
			names = append(names, regexp.QuoteMeta(name(n)))
		}
		return strings.Join(names, "|")
	}
	// Daily points for the UTC days read whole from the daily series, one range per run of days.
	var dayRuns [][2]int64
	for i, bk := range r.dayBucket {
		if bk < 0 {
			continue
		}
		dy := r.d0 + int64(i)*dayMs
		if n := len(dayRuns); n > 0 && dayRuns[n-1][1] == dy {
			dayRuns[n-1][1] = dy + dayMs
		} else {
			dayRuns = append(dayRuns, [2]int64{dy, dy + dayMs})
		}
	}
	for _, run := range dayRuns {
		if err := r.readDays(ctx, run, nameRe(DailyName), ms); err != nil {
			return err
		}
	}
	// Hourly points for the other whole derived hours, one range per run of such hours.
	var hourRuns [][2]int64
	for h := floorTo(lo, hourMs); h < hi; h += hourMs {
		if !r.hourly(h) {
			continue
		}
		if n := len(hourRuns); n > 0 && hourRuns[n-1][1] == h {
			hourRuns[n-1][1] = h + hourMs
		} else {
			hourRuns = append(hourRuns, [2]int64{h, h + hourMs})
		}
	}
	for _, run := range hourRuns {
		if err := r.readHours(ctx, run, nameRe(HourlyName), ms); err != nil {
			return err
		}
	}
	// 1-minute samples for the other hours, one range per run of such hours.
	var runs [][2]int64
	for h := floorTo(lo, hourMs); h < hi; h += hourMs {
		if r.hourly(h) || r.inDay(h) {
			continue
		}
		a, b := max(h, lo), min(h+hourMs, hi)
		if n := len(runs); n > 0 && runs[n-1][1] == a {
			runs[n-1][1] = b
		} else {
			runs = append(runs, [2]int64{a, b})
		}
	}
	for _, run := range runs {
		if err := r.readMinutes(ctx, run, nameRe(func(n string) string { return n }), ms); err != nil {
			return err
		}
	}
	return nil
}

// row returns the accumulator of key, creating it.
func (r *reader) row(key Key) *rowAcc {
	acc := r.rows[key]
	if acc == nil {
		n := (len(r.bounds) - 1) * r.nsheets
		acc = &rowAcc{cells: make([]Amounts, n), has: make([]bool, n)}
		r.rows[key] = acc
	}
	return acc
}

// The tiers selectInto reads.
const (
	tierMinute = iota
	tierHour
	tierDay
)

// selectInto reads the series of tier whose name matches names over samples stamped in
// [mint, maxt]. Daily points are assigned to the UTC day ending at ceil(t, 1d) and hourly points
// to the hour ending at ceil(t, 1h), if that day (hour) is read from its tier; minute samples to
// the minute ending at ceil(t, 1m), and only if that minute starts inside run and its hour is
// read from no tier.
func (r *reader) selectInto(ctx context.Context, mint, maxt int64, tier int, run *[2]int64, names string, ms []*labels.Matcher) error {
	q, err := r.e.db.Querier(mint, maxt)
	if err != nil {
		return fmt.Errorf("open TSDB querier: %w", err)
	}
	defer q.Close()
	matchers := append([]*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, names)}, ms...)
	ss := q.Select(ctx, false, nil, matchers...)
	var it chunkenc.Iterator
	for ss.Next() {
		s := ss.At()
		lbls := s.Labels()
		m, ok := metricByName[lbls.Get(labels.MetricName)]
		if !ok {
			continue
		}
		key := r.keyOf(lbls)
		var acc *rowAcc
		it = s.Iterator(it)
		// Accumulate one (hour, bucket) cell at a time; samples come in time order.
		var (
			cur      int64 = minTime
			curB           = -1
			sum      Int128
			hasValue bool
		)
		flush := func() error {
			if !hasValue {
				return nil
			}
			if acc == nil {
				acc = r.row(key)
			}
			if err := r.addCell(acc, curB, cur, m, sum); err != nil {
				return err
			}
			sum, hasValue = Int128{}, false
			return nil
		}
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			if vt != chunkenc.ValFloat {
				continue
			}
			t, v := it.At()
			var start, hour int64
			b := -1
			switch tier {
			case tierDay:
				start = ceilTo(t, dayMs) - dayMs
				di := r.dayIndex(start)
				if di < 0 {
					continue
				}
				hour, b = start, int(r.dayBucket[di])
			case tierHour:
				hour = ceilTo(t, hourMs) - hourMs
				if !r.hourly(hour) {
					continue
				}
				start = hour
				b = int(r.hourBucket[r.hourIndex(hour)])
			default:
				start = ceilTo(t, minuteMs) - minuteMs
				if start < run[0] || start >= run[1] {
					continue
				}
				hour = floorTo(start, hourMs)
				if i := r.hourIndex(hour); i >= 0 && r.hourBucket[i] >= 0 {
					b = int(r.hourBucket[i])
				} else {
					b = r.bucketOf(start)
				}
			}
			if b < 0 {
				continue
			}
			if hour != cur || b != curB {
				if err := flush(); err != nil {
					return err
				}
				cur, curB = hour, b
			}
			q, err := Quantize(m, v)
			if err != nil {
				return fmt.Errorf("read series %s at %d: %w", lbls, t, err)
			}
			var overflow bool
			if sum, overflow = sum.Add64(q); overflow {
				return fmt.Errorf("%s: %w", seriesOf[m], ErrOverflow)
			}
			hasValue = true
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("read series %s: %w", lbls, err)
		}
		if err := flush(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if err := ss.Err(); err != nil {
		return fmt.Errorf("select usage series: %w", err)
	}
	return nil
}

func (r *reader) keyOf(l labels.Labels) Key {
	return r.keyFor(l.Get(series.LabelProject), l.Get(series.LabelDeployment))
}

// keyFor is the row key of a project's deployment under the reader's grouping.
func (r *reader) keyFor(project, deployment string) Key {
	switch r.group {
	case ByProject:
		return Key{Project: project}
	case ByDeployment:
		return Key{Project: project, Deployment: deployment}
	}
	return Key{}
}

// addCell adds sum of metric m to acc's cell of bucket b and the sheet that prices the hour (or
// UTC day) starting at h: the range's own sheet of that hour where h is inside the range.
func (r *reader) addCell(acc *rowAcc, b int, h int64, m Metric, sum Int128) error {
	return acc.add(r.cellIndex(b, h), m, sum)
}

// cellIndex is the index in a row's cells of bucket b for the sheet that prices the hour (or UTC
// day) starting at h.
func (r *reader) cellIndex(b int, h int64) int {
	var sheet int
	if i := r.hourIndex(h); i >= 0 {
		sheet = int(r.hourSheet[i])
	} else {
		sheet = r.prices.sheet(h)
	}
	return b*r.nsheets + sheet
}

// add adds sum of metric m to cell c.
func (acc *rowAcc) add(c int, m Metric, sum Int128) error {
	s, overflow := acc.cells[c][m].Add(sum)
	if overflow {
		return fmt.Errorf("%s: %w", seriesOf[m], ErrOverflow)
	}
	acc.cells[c][m] = s
	acc.has[c] = true
	return nil
}

// AverageTasks is the mean number of running tasks over [start, end) clipped to the minutes
// that have ended by now: task-minutes / minutes, to four decimals.
func AverageTasks(a *Amounts, start, end, now time.Time) decimal.Decimal {
	mins := TaskSpanMinutes(start, end, now)
	if mins <= 0 || a[TaskMinutes].IsZero() {
		return decimal.Zero
	}
	return a.Quo(TaskMinutes, mins, 4)
}

// TaskSpanMinutes is the number of minutes AverageTasks averages over: start to end, or to the
// current minute when end is still to come.
func TaskSpanMinutes(start, end, now time.Time) int64 {
	if now.Before(end) {
		end = now.Truncate(time.Minute)
	}
	return int64(end.Sub(start) / time.Minute)
}
