package query

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/cygni/usage/series"
	"github.com/cygni/usage/tsdb"
)

// countingDB counts the queriers opened on a TSDB and keeps its Generations.
type countingDB struct {
	*tsdb.DB
	queriers atomic.Int64
}

func (c *countingDB) Querier(mint, maxt int64) (storage.Querier, error) {
	c.queriers.Add(1)
	return c.DB.Querier(mint, maxt)
}

// openCacheDB opens a TSDB whose out-of-order window takes the tests' corrections, closed (and
// its close checked) when the test ends.
func openCacheDB(t *testing.T) *tsdb.DB {
	t.Helper()
	db, err := tsdb.Open(nil, nil, tsdb.Options{Dir: t.TempDir(), OutOfOrderWindow: 60 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return db
}

// The day cache answers exactly what a read of the daily series answers: cold, warm, after a
// correction written into a cached day (out-of-order, into the head: the day is read again), and
// after that correction is persisted into new blocks; for every grouping and for a share of the
// projects. A warm read of days in persisted blocks opens no querier.
func TestDayCacheExactThroughCorrections(t *testing.T) {
	db := openCacheDB(t)
	d0 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	const days, nproj = 12, 80
	metrics := []Metric{CPUSeconds, MemoryGBHours, EgressBytes, Requests}
	rng := rand.New(rand.NewPCG(11, 12))
	projects := make([]string, nproj)
	app := db.Appender(context.Background())
	for i := range projects {
		projects[i] = fmt.Sprintf("proj_%03d", i)
		for _, dep := range []string{"web", "worker"} {
			for _, m := range metrics {
				l := labels.FromStrings(labels.MetricName, DailyName(seriesOf[m]), series.LabelProject, projects[i], series.LabelDeployment, dep)
				for d := range days {
					if (i+d)%7 == 3 {
						continue // no point that day: the day has no usage for this series
					}
					end := d0.Add(time.Duration(d+1) * 24 * time.Hour)
					if _, err := app.Append(0, l, end.UnixMilli(), Dequantize(m, rng.Int64N(1<<40))); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	span := func() (time.Time, time.Time) { return d0, d0.Add(days * 24 * time.Hour) }
	counted := &countingDB{DB: db}
	cached, err := New(nil, nil, Options{Storage: counted, HourlyRange: span, DailyRange: span, Now: func() time.Time { return simNow }})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := New(nil, nil, Options{Storage: db, HourlyRange: span, DailyRange: span, DayCacheEntries: -1, Now: func() time.Time { return simNow }})
	if err != nil {
		t.Fatal(err)
	}
	if plain.days != nil || cached.days == nil {
		t.Fatalf("cache: plain %v, cached %v", plain.days != nil, cached.days != nil)
	}
	bounds, err := Buckets(d0, d0.Add(days*24*time.Hour), Day, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	week, err := Buckets(d0, d0.Add(days*24*time.Hour), Week, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	compare := func(what string) {
		t.Helper()
		for _, b := range [][]time.Time{bounds, week} {
			for _, g := range []Grouping{ByProject, ByDeployment, ByTotal} {
				for _, ps := range [][]string{projects, projects[:5], projects[40:41], {"proj_003", "proj_003", "proj_001"}} {
					got, err := cached.Rollup(context.Background(), ps, b, g)
					if err != nil {
						t.Fatal(err)
					}
					want, err := plain.Rollup(context.Background(), ps, b, g)
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(got.Rows, want.Rows) {
						t.Fatalf("%s: %d buckets, grouping %v, %d projects: the cached rollup differs from a read", what, len(b)-1, g, len(ps))
					}
				}
			}
		}
	}
	compare("cold")
	if n := cached.days.len(); n != nproj*days {
		t.Fatalf("%d project-days cached, want %d", n, nproj*days)
	}
	before := counted.queriers.Load()
	if _, err := cached.Rollup(context.Background(), projects, bounds, ByProject); err != nil {
		t.Fatal(err)
	}
	if n := counted.queriers.Load() - before; n != 0 {
		t.Errorf("a warm read of persisted days opened %d queriers, want 0", n)
	}
	compare("warm")

	// A correction of day 3 for proj_007 (the Deriver appends the difference 1 ms before the
	// day's end): out of order, into the head; the day is read again, with it.
	first, err := cached.Rollup(context.Background(), projects[7:8], bounds, ByProject)
	if err != nil {
		t.Fatal(err)
	}
	end := d0.Add(4 * 24 * time.Hour)
	app = db.Appender(context.Background())
	l := labels.FromStrings(labels.MetricName, DailyName(seriesOf[Requests]), series.LabelProject, "proj_007", series.LabelDeployment, "web")
	if _, err := app.Append(0, l, end.UnixMilli()-1, 1234); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	after, err := cached.Rollup(context.Background(), projects[7:8], bounds, ByProject)
	if err != nil {
		t.Fatal(err)
	}
	got := after.Rows[Key{Project: "proj_007"}][3].Usage[Requests]
	want, overflow := first.Rows[Key{Project: "proj_007"}][3].Usage[Requests].Add(Int128Of(1234))
	if overflow {
		t.Fatal("the expected sum overflows")
	}
	if got != want {
		t.Fatalf("day 3 requests after the correction: %v, want %v", got, want)
	}
	compare("correction in the head")
	// The day is in the out-of-order head now; while nothing more is written to it, it is
	// answered from the cache without a querier. A second correction is seen at once.
	before = counted.queriers.Load()
	if _, err := cached.Rollup(context.Background(), projects, bounds, ByProject); err != nil {
		t.Fatal(err)
	}
	if n := counted.queriers.Load() - before; n != 0 {
		t.Errorf("a warm read of days in the head with no write since opened %d queriers, want 0", n)
	}
	app = db.Appender(context.Background())
	if _, err := app.Append(0, l, end.UnixMilli()-2, 766); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if want, overflow = want.Add(Int128Of(766)); overflow {
		t.Fatal("the expected sum overflows")
	}
	again, err := cached.Rollup(context.Background(), projects[7:8], bounds, ByProject)
	if err != nil {
		t.Fatal(err)
	}
	if got := again.Rows[Key{Project: "proj_007"}][3].Usage[Requests]; got != want {
		t.Fatalf("day 3 requests after a second correction in the head: %v, want %v", got, want)
	}
	compare("second correction in the head")
	if err := db.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	compare("correction persisted")
	after2, err := cached.Rollup(context.Background(), projects[7:8], bounds, ByProject)
	if err != nil {
		t.Fatal(err)
	}
	if got := after2.Rows[Key{Project: "proj_007"}][3].Usage[Requests]; got != want {
		t.Fatalf("after the flush: %v, want %v", got, want)
	}
}

// The cache stays within its bound.
func TestDayCacheBounded(t *testing.T) {
	c := newDayCache(100)
	for i := range 10 {
		cells := map[dayKey]*dayCell{}
		for j := range 30 {
			cells[dayKey{fmt.Sprint(i), int64(j)}] = &dayCell{}
		}
		c.put(cells)
		if n := c.len(); n > 100 {
			t.Fatalf("%d entries, bound 100", n)
		}
	}
}

// BenchmarkDayCacheMemory reports the heap one cached project-day takes with 2 deployments × 7
// series (the figure docs/architecture.md states).
func BenchmarkDayCacheMemory(b *testing.B) {
	cacheMemory(b, 31, func(p, d int) []daySum {
		var sums []daySum
		for _, dep := range []string{"web", "worker"} {
			for m := range Metric(7) {
				sums = append(sums, daySum{deployment: dep, metric: uint8(m), sum: Int128Of(int64(p * d))})
			}
		}
		return sums
	})
}

// cacheMemory reports the heap per project-day of a cache of 1,000 projects × days whose cells
// hold sums(project, day), cloned as captureDays leaves them.
func cacheMemory(b *testing.B, days int, sums func(p, d int) []daySum) {
	const projects = 1000
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		c := newDayCache(projects * days)
		for d := range days {
			cells := map[dayKey]*dayCell{}
			gen := fmt.Sprintf("w17 01M8YA6BEC9CYYHWMBW4CH%04d.0 ", d)
			for p := range projects {
				cs := slices.Clone(sums(p, d))
				bm, err := byMetricOf(cs)
				if err != nil {
					b.Fatal(err)
				}
				cells[dayKey{fmt.Sprintf("proj_%04d", p), int64(d) * dayMs}] = &dayCell{gen: gen, sums: cs, byMetric: bm}
			}
			c.put(cells)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(c.len()), "B/project-day")
		runtime.KeepAlive(c)
	}
}

// The hour cache answers exactly what a read of the hourly series answers, for hourly buckets,
// zones whose days are not UTC days (New York's days read hours) and partial days: cold, warm
// (no querier for settled hours), after a correction into a cached hour (head, then persisted)
// and after a new hour is derived into a cached day.
func TestHourCacheExactThroughCorrections(t *testing.T) {
	db := openCacheDB(t)
	d0 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	const days, nproj = 4, 30
	metrics := []Metric{CPUSeconds, MemoryGBHours, TaskMinutes, Requests}
	rng := rand.New(rand.NewPCG(13, 14))
	projects := make([]string, nproj)
	app := db.Appender(context.Background())
	label := func(m Metric, p, dep string) labels.Labels {
		return labels.FromStrings(labels.MetricName, HourlyName(seriesOf[m]), series.LabelProject, p, series.LabelDeployment, dep)
	}
	for i := range projects {
		projects[i] = fmt.Sprintf("proj_%03d", i)
		for _, dep := range []string{"web", "worker"} {
			for _, m := range metrics {
				for h := range days*24 - 5 { // the last 5 hours not derived yet
					if (i+h)%11 == 4 {
						continue
					}
					end := d0.Add(time.Duration(h+1) * time.Hour)
					if _, err := app.Append(0, label(m, projects[i], dep), end.UnixMilli(), Dequantize(m, rng.Int64N(1<<30))); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// No background compaction: a new block is a new generation, rightly read again, and the
	// warm reads below count their queriers.
	db.DisableCompactions()
	derived := d0.Add(days*24*time.Hour - 5*time.Hour)
	span := func() (time.Time, time.Time) { return d0, derived }
	counted := &countingDB{DB: db}
	cached, err := New(nil, nil, Options{Storage: counted, HourlyRange: span, DayCacheEntries: -1, Now: func() time.Time { return simNow }})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := New(nil, nil, Options{Storage: db, HourlyRange: span, DayCacheEntries: -1, HourCacheEntries: -1, Now: func() time.Time { return simNow }})
	if err != nil {
		t.Fatal(err)
	}
	if plain.hours != nil || cached.hours == nil {
		t.Fatalf("hour cache: plain %v, cached %v", plain.hours != nil, cached.hours != nil)
	}
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	var shapes [][]time.Time
	for _, s := range []struct {
		from, to time.Time
		g        GroupBy
		loc      *time.Location
	}{
		{d0, d0.Add(days * 24 * time.Hour), Hour, time.UTC},
		{d0.Add(7 * time.Hour), d0.Add(31 * time.Hour), Hour, time.UTC},
		{d0, d0.Add(days * 24 * time.Hour), Day, ny},
		{d0.Add(90 * time.Minute), d0.Add(50 * time.Hour), Day, time.UTC},
		{d0, d0.Add(days * 24 * time.Hour), Day, kolkata}, // half-hour boundaries: several runs of hours a UTC day
	} {
		b, err := Buckets(s.from, s.to, s.g, s.loc)
		if err != nil {
			t.Fatal(err)
		}
		shapes = append(shapes, b)
	}
	compare := func(what string) {
		t.Helper()
		compareRollups(t, cached, plain, shapes, projects, what)
	}
	compare("cold")
	if cached.hours.len() == 0 {
		t.Fatal("nothing cached")
	}
	before := counted.queriers.Load()
	if _, err := cached.Rollup(context.Background(), projects, shapes[1], ByProject); err != nil { // derived hours only
		t.Fatal(err)
	}
	if n := counted.queriers.Load() - before; n != 0 {
		t.Errorf("a warm read of settled hours opened %d queriers, want 0", n)
	}
	compare("warm")
	// A correction of hour 30 of proj_002/web (the Deriver appends the difference inside the hour).
	app = db.Appender(context.Background())
	if _, err := app.Append(0, label(Requests, "proj_002", "web"), d0.Add(31*time.Hour).UnixMilli()-1, 1234); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	compare("correction in the head")
	// A new hour derived into the last day (cached without it).
	app = db.Appender(context.Background())
	if _, err := app.Append(0, label(CPUSeconds, "proj_001", "worker"), derived.Add(time.Hour).UnixMilli(), 256*3600); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	derived = derived.Add(time.Hour)
	compare("an hour derived")
	// The collector's 1-minute samples and the Deriver's gauges committed into the last day (in
	// the head): its derived hours are still served from the cache (the hourly tier's
	// generation, TierGenerations), and exact.
	lastHours, err := Buckets(derived.Add(-4*time.Hour), derived, Hour, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cached.Rollup(context.Background(), projects, lastHours, ByProject); err != nil {
		t.Fatal(err)
	}
	app = db.Appender(context.Background())
	for _, l := range []labels.Labels{
		labels.FromStrings(labels.MetricName, seriesOf[CPUSeconds], series.LabelProject, "proj_001", series.LabelDeployment, "web"),
		labels.FromStrings(labels.MetricName, "cygni_project_budget_usd", series.LabelProject, "proj_001"),
	} {
		if _, err := app.Append(0, l, derived.Add(90*time.Second).UnixMilli(), 60); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	before = counted.queriers.Load()
	got, err := cached.Rollup(context.Background(), projects, lastHours, ByProject)
	if err != nil {
		t.Fatal(err)
	}
	if n := counted.queriers.Load() - before; n != 0 {
		t.Errorf("derived hours of a day the collector and the Deriver's gauges wrote into since: %d queriers opened, want 0", n)
	}
	want, err := plain.Rollup(context.Background(), projects, lastHours, ByProject)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Rows, want.Rows) {
		t.Fatal("derived hours after commits of other series: the cached rollup differs from a read")
	}
	compare("other series committed")
	if err := db.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	compare("persisted")
}

// BenchmarkHourCacheMemory reports the heap one cached project-day of hourly sums takes with 2
// deployments × 7 series × 24 hours (the figure docs/architecture.md states).
func BenchmarkHourCacheMemory(b *testing.B) {
	cacheMemory(b, 5, func(p, d int) []daySum {
		var sums []daySum
		for _, dep := range []string{"web", "worker"} {
			for m := range Metric(7) {
				for h := range 24 {
					sums = append(sums, daySum{deployment: dep, metric: uint8(m), hour: uint8(h), sum: Int128Of(int64(p * d * h))})
				}
			}
		}
		return sums
	})
}

// The minute cache (the hours not derived yet, read from 1-minute samples) answers exactly what
// a read does while the collector keeps committing minutes and corrections into the current
// hour and the Deriver its gauges: a commit of other series leaves it cached, a commit of
// 1-minute samples is read again, a run ending before a cached hour's last minute is read.
func TestMinuteCacheExactLive(t *testing.T) {
	db := openCacheDB(t)
	d0 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	const nproj = 20
	metrics := []Metric{CPUSeconds, MemoryGBHours, TaskMinutes, EgressBytes}
	rng := rand.New(rand.NewPCG(21, 22))
	projects := make([]string, nproj)
	label := func(m Metric, p, dep string) labels.Labels {
		return labels.FromStrings(labels.MetricName, seriesOf[m], series.LabelProject, p, series.LabelDeployment, dep)
	}
	appendMinutes := func(from, to time.Time) {
		t.Helper()
		app := db.Appender(context.Background())
		for i, p := range projects {
			for _, dep := range []string{"web", "worker"} {
				for _, m := range metrics {
					for mn := from; mn.Before(to); mn = mn.Add(time.Minute) {
						if (i+mn.Minute())%7 == 3 {
							continue
						}
						if _, err := app.Append(0, label(m, p, dep), mn.Add(time.Minute).UnixMilli(), Dequantize(m, rng.Int64N(1<<20))); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range projects {
		projects[i] = fmt.Sprintf("proj_%03d", i)
	}
	// Nothing derived: 3 hours and 20 minutes of 1-minute samples, the clock at 03:20.
	now := d0.Add(3*time.Hour + 20*time.Minute)
	appendMinutes(d0, now)
	db.DisableCompactions() // a new block is a new generation, rightly read again: not here
	defer db.EnableCompactions()
	counted := &countingDB{DB: db}
	clock := func() time.Time { return now }
	cached, err := New(nil, nil, Options{Storage: counted, DayCacheEntries: -1, HourCacheEntries: -1, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := New(nil, nil, Options{Storage: db, DayCacheEntries: -1, HourCacheEntries: -1, MinuteCacheEntries: -1, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	shapes := func() [][]time.Time {
		var out [][]time.Time
		for _, s := range []struct {
			from, to time.Time
			g        GroupBy
			loc      *time.Location
		}{
			{d0, now, Day, time.UTC},                                  // a summary: today to now
			{d0, d0.Add(4 * time.Hour), Hour, time.UTC},               // by hour, the current hour partial
			{d0.Add(90 * time.Minute), now, Hour, time.UTC},           // starting mid-hour
			{d0, now, Hour, kolkata},                                  // half-hour boundaries: read directly
			{d0, d0.Add(3*time.Hour + 10*time.Minute), Day, time.UTC}, // ends before the latest minute
		} {
			b, err := Buckets(s.from, s.to, s.g, s.loc)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
		return out
	}
	compare := func(what string) {
		t.Helper()
		compareRollups(t, cached, plain, shapes(), projects, what)
	}
	summary := func() []time.Time { return shapes()[0] }
	compare("cold")
	if cached.minutes.len() == 0 {
		t.Fatal("nothing cached")
	}
	before := counted.queriers.Load()
	if _, err := cached.Rollup(context.Background(), projects, summary(), ByProject); err != nil {
		t.Fatal(err)
	}
	if n := counted.queriers.Load() - before; n != 0 {
		t.Errorf("a warm summary opened %d queriers, want 0", n)
	}
	// The Deriver's gauges: still cached.
	app := db.Appender(context.Background())
	if _, err := app.Append(0, labels.FromStrings(labels.MetricName, "cygni_project_budget_usd", series.LabelProject, "proj_001"), now.UnixMilli(), 100); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	before = counted.queriers.Load()
	if _, err := cached.Rollup(context.Background(), projects, summary(), ByProject); err != nil {
		t.Fatal(err)
	}
	if n := counted.queriers.Load() - before; n != 0 {
		t.Errorf("a summary after a gauge commit opened %d queriers, want 0", n)
	}
	compare("a gauge committed")
	// The collector's next cycle: five more minutes, the clock moves on.
	appendMinutes(now, now.Add(5*time.Minute))
	now = now.Add(5 * time.Minute)
	compare("a cycle committed")
	// A correction into an earlier minute of the current hour (the difference, inside the minute).
	app = db.Appender(context.Background())
	if _, err := app.Append(0, label(CPUSeconds, "proj_002", "web"), d0.Add(3*time.Hour+2*time.Minute).UnixMilli()-1, 1234); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	compare("a correction committed")
	// A new hour begins.
	appendMinutes(now, d0.Add(4*time.Hour+3*time.Minute))
	now = d0.Add(4*time.Hour + 3*time.Minute)
	compare("the next hour")
	st := cached.MinuteCacheStats()
	t.Logf("minute cache: %+v", st)
	if st.Hits == 0 {
		t.Error("the minute cache answered nothing")
	}
}

// compareRollups fails t unless the cached engine's rollups equal the plain one's for every
// shape, grouping and set of projects (all of them, three, and one named twice).
func compareRollups(t *testing.T, cached, plain *Engine, shapes [][]time.Time, projects []string, what string) {
	t.Helper()
	for si, b := range shapes {
		for _, g := range []Grouping{ByProject, ByDeployment, ByTotal} {
			for _, ps := range [][]string{projects, projects[:3], {"proj_004", "proj_004"}} {
				got, err := cached.Rollup(context.Background(), ps, b, g)
				if err != nil {
					t.Fatal(err)
				}
				want, err := plain.Rollup(context.Background(), ps, b, g)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got.Rows, want.Rows) {
					t.Fatalf("%s: shape %d, grouping %v, %d projects: the cached rollup differs from a read", what, si, g, len(ps))
				}
			}
		}
	}
}
