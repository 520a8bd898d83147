package query

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/cygni/usage/series"
)

// Generations is implemented by a storage that can tell when what it holds over a time range
// cannot change: the embedded TSDB, whose persisted blocks are immutable.
type Generations interface {
	// Generation returns a value that identifies everything stored in [mint, maxt], and true
	// when no write can change what a querier returns for that range without also changing
	// the value (the range lies in persisted blocks only: nothing of it in the head or the
	// out-of-order head).
	Generation(mint, maxt int64) (string, bool)
}

// TierGenerations is a Generations that also tells the generation of one derived tier's samples
// alone, named by its suffix (HourlySuffix, DailySuffix): a commit of other series into the
// range's days (1-minute samples, gauges) leaves it unchanged, so the hour cache keeps the
// current day's derived hours while the collector and the Deriver write beside them.
type TierGenerations interface {
	TierGeneration(mint, maxt int64, suffix string) (string, bool)
}

// tierGeneration is the generation of tier's samples over [mint, maxt].
func tierGeneration(g Generations, mint, maxt int64, tier int) (string, bool) {
	tg, ok := g.(TierGenerations)
	if !ok {
		return g.Generation(mint, maxt)
	}
	switch tier {
	case tierHour:
		return tg.TierGeneration(mint, maxt, HourlySuffix)
	case tierDay:
		return tg.TierGeneration(mint, maxt, DailySuffix)
	case tierMinute:
		return tg.TierGeneration(mint, maxt, "") // the usage series' own, unsuffixed names
	}
	return g.Generation(mint, maxt)
}

// DefaultMinuteCacheEntries bounds the minute cache: project-hours of 1-minute sums, one per
// deployment and series (about 0.7 KB each with 2 deployments × 7 series, so ~7 MB): the hours
// not derived yet — the current one and the one before — of 5,000 projects.
const DefaultMinuteCacheEntries = 10_000

// DefaultHourCacheEntries bounds the hour cache: project-days of hourly-tier sums, one per
// deployment, series and hour (about 14 KB each with 2 deployments × 7 series,
// BenchmarkHourCacheMemory, so ~70 MB; a day of 5,000 projects).
const DefaultHourCacheEntries = 5_000

// DefaultDayCacheEntries bounds the day cache: project-days of daily-tier sums (about 0.94 KB
// each with 2 deployments × 7 series and their sums over the deployments,
// BenchmarkDayCacheMemory, so ~94 MB; 1,000 projects × 100 days).
const DefaultDayCacheEntries = 100_000

// dayCache holds, per project and UTC day, the sums of the project's daily-tier points: the
// same integers a read of the daily series gives, kept only while the storage reports the day's
// generation unchanged. A day in the head, or written to since (a correction, a backfill, a
// rebuild: they all go to the head or to new blocks), has another generation or none, and is
// read from the TSDB again. So the cache can be stale only in what it does not answer; a restart
// starts it empty and it fills as queries read days.
type dayCache struct {
	mu    sync.Mutex
	max   int
	cells map[int64]map[string]*dayCell // by day (or hour) start, then project: a query looks
	// up the projects of one day at a time, in a map of a thousand rather than of all entries
	n            int          // entries
	hits, misses atomic.Int64 // project-days answered from the cache, and read
	unknown      atomic.Int64 // days read because the storage knew no generation for them
}

// DayCacheStats are the day cache's counters since the engine started.
type DayCacheStats struct {
	Entries               int   // project-days held
	Hits, Misses          int64 // project-days answered from the cache, and read from the storage
	DaysWithoutGeneration int64 // days read directly: in a head, or a storage without generations
}

func (c *dayCache) stats() DayCacheStats {
	if c == nil {
		return DayCacheStats{}
	}
	return DayCacheStats{Entries: c.len(), Hits: c.hits.Load(), Misses: c.misses.Load(), DaysWithoutGeneration: c.unknown.Load()}
}

// DayCacheStats returns the day cache's counters (zero without a cache).
func (e *Engine) DayCacheStats() DayCacheStats { return e.days.stats() }

// MinuteCacheStats returns the minute cache's counters (project-hours of 1-minute sums; zero
// without a cache).
func (e *Engine) MinuteCacheStats() DayCacheStats { return e.minutes.stats() }

// HourCacheStats returns the hour cache's counters (project-days of hourly sums; zero without a
// cache).
func (e *Engine) HourCacheStats() DayCacheStats { return e.hours.stats() }

type dayKey struct {
	project string
	day     int64 // the day's start, unix ms (UTC)
}

// dayCell is one project's daily points of one day: one sum per (deployment, metric) of the
// series read, zero sums included (a series with a zero point counts as present, as a read does).
type dayCell struct {
	gen  string
	sums []daySum
	// last is, in a minute cell (the minute cache), the start of the hour's latest minute with a
	// sample (minTime: none): the cell holds the sums of every minute of the hour before any
	// end after it.
	last int64
	// byMetric are, in a day cell, the sums over the deployments, one per series present: what a
	// read by project or of the total adds (a month of 1,000 projects is 30,000 cells).
	byMetric []daySum
}

type daySum struct {
	deployment string
	sum        Int128
	metric     uint8 // a Metric
	hour       uint8 // the hour of the day (0–23) of an hourly cell's sum; 0 in a daily cell
}

func newDayCache(max int) *dayCache {
	if max <= 0 {
		return nil
	}
	return &dayCache{max: max, cells: map[int64]map[string]*dayCell{}}
}

// getAll looks up the cells of projects on day at generation gen under one lock: cells[i] is
// projects[i]'s, nil where it is not cached.
func (c *dayCache) getAll(projects []string, day int64, gen string, cells []*dayCell) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var hits int64
	m := c.cells[day]
	for i, p := range projects {
		cells[i] = nil
		if cell := m[p]; cell != nil && cell.gen == gen {
			cells[i] = cell
			hits++
		}
	}
	c.hits.Add(hits)
	c.misses.Add(int64(len(projects)) - hits)
}

// put stores cells, dropping about a tenth of the entries (in map order) when full.
func (c *dayCache) put(cells map[dayKey]*dayCell) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n+len(cells) > c.max {
		drop := c.n + len(cells) - c.max + c.max/10
		for day, m := range c.cells {
			for p := range m {
				if drop <= 0 {
					break
				}
				delete(m, p)
				c.n--
				drop--
			}
			if len(m) == 0 {
				delete(c.cells, day)
			}
			if drop <= 0 {
				break
			}
		}
	}
	for k, cell := range cells {
		if c.n >= c.max {
			return
		}
		m := c.cells[k.day]
		if m == nil {
			m = map[string]*dayCell{}
			c.cells[k.day] = m
		}
		if _, ok := m[k.project]; !ok {
			c.n++
		}
		m[k.project] = cell
	}
}

// len is the number of cached project-days.
func (c *dayCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// readDays reads the daily points of the UTC days [run[0], run[1]): days whose generation the
// storage knows come from the day cache where it holds them for every project of the reader,
// the others are read from the TSDB (and cached when their generation held during the read).
func (r *reader) readDays(ctx context.Context, run [2]int64, names string, ms []*labels.Matcher) error {
	direct := func(lo, hi int64) error {
		sub := [2]int64{lo, hi}
		return r.selectInto(ctx, lo+1, hi, tierDay, &sub, names, ms)
	}
	if r.e.days == nil || isScan(ctx) {
		return direct(run[0], run[1])
	}
	return r.readThrough(ctx, r.e.days, tierDay, run[0], run[1], names, r.applyDay, direct)
}

// readThrough reads the points of tier over the UTC days [d0, d1) for the reader's projects
// through cache c: a day whose generation the storage knows is applied from c for every project c
// holds it for, and captured whole for the others (one Select for all of them), applied, and
// cached if its generation held through the read; the days of unknown generation are read by
// direct, one call per run of such days.
func (r *reader) readThrough(ctx context.Context, c *dayCache, tier int, d0, d1 int64, names string,
	apply func(project string, dy int64, cell *dayCell) error, direct func(lo, hi int64) error) error {
	gens, ok := r.e.db.(Generations)
	if !ok || r.projects == nil {
		return direct(d0, d1)
	}
	// Each project once, as the project matcher of a read counts it.
	projects := slices.Clone(r.projects)
	slices.Sort(projects)
	projects = slices.Compact(projects)
	var unknown [][2]int64
	missing := map[int64][]string{} // day → projects not cached
	gen := map[int64]string{}
	found := make([]*dayCell, len(projects))
	for dy := d0; dy < d1; dy += dayMs {
		g, ok := tierGeneration(gens, dy+1, dy+dayMs, tier)
		if !ok {
			c.unknown.Add(1)
			if n := len(unknown); n > 0 && unknown[n-1][1] == dy {
				unknown[n-1][1] = dy + dayMs
			} else {
				unknown = append(unknown, [2]int64{dy, dy + dayMs})
			}
			continue
		}
		gen[dy] = g
		c.getAll(projects, dy, g, found)
		for i, p := range projects {
			if cell := found[i]; cell != nil {
				if err := apply(p, dy, cell); err != nil {
					return err
				}
				continue
			}
			missing[dy] = append(missing[dy], p)
		}
	}
	for _, u := range unknown {
		if err := direct(u[0], u[1]); err != nil {
			return err
		}
	}
	if len(missing) == 0 {
		return nil
	}
	cells, err := r.captureDays(ctx, missing, names, tier)
	if err != nil {
		return err
	}
	keep := make(map[dayKey]*dayCell, len(cells))
	for k, cell := range cells {
		if err := apply(k.project, k.day, cell); err != nil {
			return err
		}
		// Cached only if the day's generation held through the read.
		if g, ok := tierGeneration(gens, k.day+1, k.day+dayMs, tier); ok && g == gen[k.day] {
			cell.gen = g
			keep[k] = cell
		}
	}
	c.put(keep)
	return nil
}

type scanKey struct{}

// Scan marks ctx as a one-pass scan (an export): its reads bypass the day and hour caches,
// which it would only fill with what no later query asks again, pushing out what they hold.
func Scan(ctx context.Context) context.Context { return context.WithValue(ctx, scanKey{}, true) }

func isScan(ctx context.Context) bool { v, _ := ctx.Value(scanKey{}).(bool); return v }

// readHours reads the hourly points of the hours [run[0], run[1]) as readDays reads days, through
// the hour cache: per project and UTC day, a day not cached read whole (all 24 hours, cached for
// later runs), each applied for the run's hours only.
func (r *reader) readHours(ctx context.Context, run [2]int64, names string, ms []*labels.Matcher) error {
	direct := func(lo, hi int64) error {
		sub := [2]int64{max(lo, run[0]), min(hi, run[1])}
		return r.selectInto(ctx, sub[0]+1, sub[1], tierHour, &sub, names, ms)
	}
	d0, d1 := floorTo(run[0], dayMs), ceilTo(run[1], dayMs)
	// A run of more project-days than half the cache holds is read directly: caching it would
	// only push out what the cache holds (a month by day in New York reads a month of hours).
	if r.e.hours == nil || isScan(ctx) || int64(len(r.projects))*(d1-d0)/dayMs > int64(r.e.hours.max/2) {
		return direct(run[0], run[1])
	}
	return r.readThrough(ctx, r.e.hours, tierHour, d0, d1, names, func(p string, dy int64, cell *dayCell) error {
		return r.applyHours(p, dy, cell, max(run[0], dy), min(run[1], dy+dayMs))
	}, direct)
}

// applyHours adds a project's hourly sums of day dy for the hours in [lo, hi) that the reader
// reads from the hourly series to its rows, as selectInto adds them.
func (r *reader) applyHours(project string, dy int64, cell *dayCell, lo, hi int64) error {
	var (
		acc    *rowAcc
		lastDp string
	)
	for _, s := range cell.sums {
		h := dy + int64(s.hour)*hourMs
		if h < lo || h >= hi || !r.hourly(h) {
			continue
		}
		if acc == nil || (r.group == ByDeployment && s.deployment != lastDp) {
			acc, lastDp = r.row(r.keyFor(project, s.deployment)), s.deployment
		}
		if err := r.addCell(acc, int(r.hourBucket[r.hourIndex(h)]), h, Metric(s.metric), s.sum); err != nil {
			return err
		}
	}
	return nil
}

// visitSamples calls fn with every float sample stamped in [mint, maxt] of the series named by
// names of projects (deduplicated, sorted here), as its metric, project, deployment, timestamp
// and integer quanta (Quantize): the one Select of the caches' captures.
func (r *reader) visitSamples(ctx context.Context, mint, maxt int64, names string, projects []string, fn func(m Metric, project, deployment string, t int64, quanta int64) error) error {
	slices.Sort(projects)
	projects = slices.Compact(projects)
	q, err := r.e.db.Querier(mint, maxt)
	if err != nil {
		return fmt.Errorf("open TSDB querier: %w", err)
	}
	defer q.Close()
	ss := q.Select(ctx, false, nil, labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, names), projectMatcher(projects))
	var it chunkenc.Iterator
	for ss.Next() {
		s := ss.At()
		lbls := s.Labels()
		m, ok := metricByName[lbls.Get(labels.MetricName)]
		if !ok {
			continue
		}
		p, dep := lbls.Get(series.LabelProject), lbls.Get(series.LabelDeployment)
		it = s.Iterator(it)
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			if vt != chunkenc.ValFloat {
				continue
			}
			t, v := it.At()
			qv, err := Quantize(m, v)
			if err != nil {
				return fmt.Errorf("read series %s at %d: %w", lbls, t, err)
			}
			if err := fn(m, p, dep, t, qv); err != nil {
				return err
			}
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("read series %s: %w", lbls, err)
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

// add adds quanta of metric m to the sum.
func (d *daySum) add(m Metric, quanta int64) error {
	sum, overflow := d.sum.Add64(quanta)
	if overflow {
		return fmt.Errorf("%s: %w", seriesOf[m], ErrOverflow)
	}
	d.sum = sum
	return nil
}

// captureDays reads the daily points (tierDay) or the hourly points (tierHour) of the given days
// and projects in one Select and returns a cell for every (project, day) asked for, empty where
// the project has no point that day: one sum per deployment and series, per hour for tierHour.
func (r *reader) captureDays(ctx context.Context, missing map[int64][]string, names string, tier int) (map[dayKey]*dayCell, error) {
	cells := map[dayKey]*dayCell{}
	var projects []string
	lo, hi := int64(math.MaxInt64), int64(minTime)
	for dy, ps := range missing {
		lo, hi = min(lo, dy), max(hi, dy+dayMs)
		for _, p := range ps {
			cells[dayKey{p, dy}] = &dayCell{}
			projects = append(projects, p)
		}
	}
	err := r.visitSamples(ctx, lo+1, hi, names, projects, func(m Metric, p, dep string, t int64, qv int64) error {
		dy := ceilTo(t, dayMs) - dayMs
		cell := cells[dayKey{p, dy}]
		if cell == nil {
			return nil // a day not asked for (or outside the range)
		}
		var i int
		if tier == tierHour {
			// A series' points come in time order: its sums of an hour are the last entry.
			hour := uint8((ceilTo(t, hourMs) - hourMs - dy) / hourMs)
			if i = len(cell.sums) - 1; i < 0 || cell.sums[i].metric != uint8(m) || cell.sums[i].deployment != dep || cell.sums[i].hour != hour {
				cell.sums = append(cell.sums, daySum{deployment: dep, metric: uint8(m), hour: hour})
				i = len(cell.sums) - 1
			}
		} else if i = slices.IndexFunc(cell.sums, func(d daySum) bool { return d.metric == uint8(m) && d.deployment == dep }); i < 0 {
			cell.sums = append(cell.sums, daySum{deployment: dep, metric: uint8(m)})
			i = len(cell.sums) - 1
		}
		return cell.sums[i].add(m, qv)
	})
	if err != nil {
		return nil, err
	}
	for _, cell := range cells {
		cell.sums = slices.Clone(cell.sums) // no spare capacity held in the cache
		if tier == tierDay {
			if cell.byMetric, err = byMetricOf(cell.sums); err != nil {
				return nil, err
			}
		}
	}
	return cells, nil
}

// byMetricOf sums a day cell's sums over the deployments: one per series present.
func byMetricOf(sums []daySum) ([]daySum, error) {
	var out []daySum
	for _, d := range sums {
		i := slices.IndexFunc(out, func(b daySum) bool { return b.metric == d.metric })
		if i < 0 {
			out = append(out, daySum{metric: d.metric})
			i = len(out) - 1
		}
		sum, overflow := out[i].sum.Add(d.sum)
		if overflow {
			return nil, fmt.Errorf("%s: %w", seriesOf[d.metric], ErrOverflow)
		}
		out[i].sum = sum
	}
	return slices.Clip(out), nil
}

// applyDay adds a project's daily sums of day dy to the reader's rows, into the bucket and sheet
// selectInto gives the day's points: one bucket and sheet for the whole cell, so the sums are
// added to their accumulator's cell directly.
func (r *reader) applyDay(project string, dy int64, cell *dayCell) error {
	di := r.dayIndex(dy)
	if di < 0 || r.dayBucket[di] < 0 || len(cell.sums) == 0 {
		return nil
	}
	c := r.cellIndex(int(r.dayBucket[di]), dy)
	var (
		acc    *rowAcc
		lastDp string
	)
	sums := cell.sums
	if r.group != ByDeployment && cell.byMetric != nil {
		sums = cell.byMetric
	}
	for i := range sums {
		s := &sums[i]
		if acc == nil || (r.group == ByDeployment && s.deployment != lastDp) {
			acc, lastDp = r.row(r.keyFor(project, s.deployment)), s.deployment
		}
		if err := acc.add(c, Metric(s.metric), s.sum); err != nil {
			return err
		}
	}
	return nil
}

// minuteHour is an hour whose 1-minute samples are read through the minute cache: the minutes
// [h, end) of the run, all in bucket b.
type minuteHour struct {
	h, end int64
	b      int
}

// readMinutes reads the 1-minute samples of run (hours not derived yet, or not whole in a bucket
// of the hourly tier) into the rows. Each hour of the run that starts at its hour and lies in
// one bucket is read through the minute cache: per project and UTC hour, the sums of the hour's
// minutes, kept while the storage reports the hour's 1-minute samples unchanged (the collector
// writes them once a cycle) and applied while the run's end lies after the hour's latest
// minute. The other parts of the run are read directly.
func (r *reader) readMinutes(ctx context.Context, run [2]int64, names string, ms []*labels.Matcher) error {
	direct := func(lo, hi int64) error {
		sub := [2]int64{lo, hi}
		return r.selectInto(ctx, lo+1, hi, tierMinute, &sub, names, ms)
	}
	c := r.e.minutes
	gens, ok := r.e.db.(Generations)
	if c == nil || isScan(ctx) || !ok || r.projects == nil {
		return direct(run[0], run[1])
	}
	var hours []minuteHour
	var rest [][2]int64
	for h := floorTo(run[0], hourMs); h < run[1]; h += hourMs {
		a, b := max(h, run[0]), min(h+hourMs, run[1])
		if bk := r.bucketOf(a); a == h && bk >= 0 && r.bucketOf(b-1) == bk {
			hours = append(hours, minuteHour{h: h, end: b, b: bk})
			continue
		}
		if n := len(rest); n > 0 && rest[n-1][1] == a {
			rest[n-1][1] = b
		} else {
			rest = append(rest, [2]int64{a, b})
		}
	}
	projects := slices.Clone(r.projects)
	slices.Sort(projects)
	projects = slices.Compact(projects)
	if len(hours)*len(projects) > c.max/2 { // caching it would only push out what the cache holds
		return direct(run[0], run[1])
	}
	for _, d := range rest {
		if err := direct(d[0], d[1]); err != nil {
			return err
		}
	}
	apply := func(p string, mh minuteHour, cell *dayCell) error {
		var (
			acc     *rowAcc
			lastKey Key
		)
		for i, s := range cell.sums {
			if k := r.keyFor(p, s.deployment); acc == nil || k != lastKey || i == 0 {
				acc, lastKey = r.row(k), k
			}
			if err := r.addCell(acc, mh.b, mh.h, Metric(s.metric), s.sum); err != nil {
				return err
			}
		}
		return nil
	}
	missing := map[int64][]string{}
	gen := map[int64]string{}
	byHour := map[int64]minuteHour{}
	found := make([]*dayCell, len(projects))
	for _, mh := range hours {
		byHour[mh.h] = mh
		g, ok := tierGeneration(gens, mh.h+1, mh.h+hourMs, tierMinute)
		if !ok {
			c.unknown.Add(1)
			if err := direct(mh.h, mh.end); err != nil {
				return err
			}
			continue
		}
		gen[mh.h] = g
		c.getAll(projects, mh.h, g, found)
		for i, p := range projects {
			if cell := found[i]; cell != nil && cell.last < mh.end {
				if err := apply(p, mh, cell); err != nil {
					return err
				}
				continue
			}
			missing[mh.h] = append(missing[mh.h], p)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	cells, full, err := r.captureMinutes(ctx, missing, byHour, names)
	if err != nil {
		return err
	}
	keep := make(map[dayKey]*dayCell, len(cells))
	for k, cell := range cells {
		if err := apply(k.project, byHour[k.day], cell); err != nil {
			return err
		}
		// Cached only with every minute of the hour in it, and if the hour's generation held
		// through the read.
		if g, ok := tierGeneration(gens, k.day+1, k.day+hourMs, tierMinute); ok && g == gen[k.day] && full[k] {
			cell.gen = g
			keep[k] = cell
		}
	}
	c.put(keep)
	return nil
}

// captureMinutes reads the 1-minute samples of the given hours and projects in one Select and
// returns, per (project, hour) asked for, the sums per deployment and series of the minutes
// [h, end) — as selectInto assigns samples to minutes — and whether those are all the hour's
// minutes with samples (full).
func (r *reader) captureMinutes(ctx context.Context, missing map[int64][]string, hours map[int64]minuteHour, names string) (map[dayKey]*dayCell, map[dayKey]bool, error) {
	cells := map[dayKey]*dayCell{}
	full := map[dayKey]bool{}
	var projects []string
	lo, hi := int64(math.MaxInt64), int64(minTime)
	for h, ps := range missing {
		lo, hi = min(lo, h), max(hi, h+hourMs)
		for _, p := range ps {
			cells[dayKey{p, h}] = &dayCell{last: minTime}
			full[dayKey{p, h}] = true
			projects = append(projects, p)
		}
	}
	err := r.visitSamples(ctx, lo+1, hi, names, projects, func(m Metric, p, dep string, t int64, qv int64) error {
		start := ceilTo(t, minuteMs) - minuteMs
		h := floorTo(start, hourMs)
		k := dayKey{p, h}
		cell := cells[k]
		if cell == nil {
			return nil // an hour or project not asked for
		}
		if start >= hours[h].end {
			full[k] = false // a minute after the run's end: not the whole hour
			return nil
		}
		i := len(cell.sums) - 1
		if i < 0 || cell.sums[i].metric != uint8(m) || cell.sums[i].deployment != dep {
			if i = slices.IndexFunc(cell.sums, func(d daySum) bool { return d.metric == uint8(m) && d.deployment == dep }); i < 0 {
				cell.sums = append(cell.sums, daySum{deployment: dep, metric: uint8(m)})
				i = len(cell.sums) - 1
			}
		}
		cell.last = max(cell.last, start)
		return cell.sums[i].add(m, qv)
	})
	if err != nil {
		return nil, nil, err
	}
	for _, cell := range cells {
		cell.sums = slices.Clone(cell.sums)
	}
	return cells, full, nil
}
