package api

// Benchmarks "Month of 1,000 projects", through HTTP (a loopback listener and net/http's
// client), on the shared production-shaped fixture (internal/fixture.Month): 1-minute samples
// of all 7 usage series for 1,000 projects × 2 deployments × 31 days (2026-11-01 to 2026-12-02,
// ~625 M samples) read from the simulated fleet by the product's collector, derived by the
// product's own rollup code (hourly and daily tiers), in persisted blocks. The fixture is built
// once into CYGNI_BENCH_FIXTURE_DIR (default under os.TempDir) and reused; CYGNI_BENCH_PROJECTS
// and CYGNI_BENCH_DAYS shrink it for a quick look. Prometheus' own promql.Engine over the same
// TSDB answers the same questions in the same run (BenchmarkMonthPeerPromQL), for ratios.
//
//	make bench-month    (go test -run '^$' -bench BenchmarkMonth -benchtime 20x -timeout 3h ./api/)

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/cygni/usage/internal/fixture"
	"github.com/cygni/usage/query"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/store"
)

type monthBench struct {
	f        *fixture.Fixture
	url      string
	plainURL string // the same API over an engine without the day cache
	engine   *query.Engine
	from, to time.Time
	projects []string
}

var (
	monthOnce sync.Once
	month     *monthBench
	monthErr  error
)

// monthFixture opens (building it the first time) the fixture and serves it on loopback: the
// usage API over a query engine whose hourly and daily tiers cover the fixture (the Deriver
// derived them when the fixture was built), and the Prometheus API over the same TSDB.
func monthFixture(b *testing.B) *monthBench {
	b.Helper()
	monthOnce.Do(func() {
		s := fixture.BenchShape()
		f, err := fixture.Cached(context.Background(), s, func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) })
		if err != nil {
			monthErr = err
			return
		}
		m := &monthBench{f: f, from: s.From(), to: s.From().AddDate(0, 0, s.Days), projects: f.Projects()}
		tiers := func() (time.Time, time.Time) { return m.from, m.to }
		// "Now" is the last day of the month, noon: the summary's month to date is 30 days.
		now := m.to.Add(-36 * time.Hour)
		if s.Days < 2 {
			now = m.to
		}
		ps := make([]store.Project, len(m.projects))
		for i, p := range m.projects {
			ps[i] = store.Project{ID: p, TeamID: "team_bulk", Name: "Project " + p}
		}
		for _, entries := range []int{0, -1} { // the default day cache, none
			engine, err := query.New(nil, nil, query.Options{Storage: f.DB, Now: func() time.Time { return now }, HourlyRange: tiers, DailyRange: tiers, DayCacheEntries: entries, HourCacheEntries: entries})
			if err != nil {
				monthErr = err
				return
			}
			srv := New(Options{
				AuthDeps:  AuthDeps{Tokens: fixedTokens{}},
				UsageDeps: UsageDeps{Usage: engine, UsageProjects: bulkStore{ps}},
				PromDeps:  PromDeps{PromStorage: f.DB, PromProjects: bulkStore{ps}},
				Limits:    Limits{RESTTimeout: 10 * time.Minute, QueryTimeout: 10 * time.Minute},
			})
			ts := httptest.NewServer(srv)
			if entries == 0 {
				m.url, m.engine = ts.URL, engine
			} else {
				m.plainURL = ts.URL
			}
		}
		month = m
	})
	if monthErr != nil {
		b.Fatal(monthErr)
	}
	return month
}

func (m *monthBench) get(b *testing.B, path string) int {
	b.Helper()
	sink := &heapWatcher{}
	m.getInto(b, path, sink)
	return sink.rows
}

// getInto GETs path and copies the body into sink.
func (m *monthBench) getInto(b *testing.B, path string, sink *heapWatcher) {
	b.Helper()
	req, err := http.NewRequest(http.MethodGet, m.url+path, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer x")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(sink, resp.Body); err != nil {
		b.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("%s: status %d", path, resp.StatusCode)
	}
}

func (m *monthBench) timed(b *testing.B, path string) {
	b.ReportAllocs()
	d := latencies(b, func() { m.get(b, path) })
	reportP50(b, d)
	b.ReportMetric(float64(percentile(d, 0.99).Microseconds())/1000, "p99-ms")
}

// timedBoth runs timed on the API with the day cache and on the one without, as sub-benchmarks.
func (m *monthBench) timedBoth(b *testing.B, path string) {
	b.Run("day-cache", func(b *testing.B) {
		before, hb := m.engine.DayCacheStats(), m.engine.HourCacheStats()
		m.timed(b, path)
		st, hs := m.engine.DayCacheStats(), m.engine.HourCacheStats()
		b.ReportMetric(float64(st.Hits-before.Hits)/float64(b.N), "cached-project-days/op")
		b.ReportMetric(float64(st.Misses-before.Misses)/float64(b.N), "read-project-days/op")
		b.ReportMetric(float64(st.DaysWithoutGeneration-before.DaysWithoutGeneration)/float64(b.N), "days-in-head/op")
		b.ReportMetric(float64(hs.Hits-hb.Hits)/float64(b.N), "cached-project-hour-days/op")
	})
	b.Run("no-cache", func(b *testing.B) {
		cached := m.url
		m.url = m.plainURL
		defer func() { m.url = cached }()
		m.timed(b, path)
	})
}

func day(t time.Time) string { return t.Format(time.DateOnly) }

// BenchmarkMonthAnalyticsDay: groupBy=day over the 31 days for all 1,000 projects, every
// series and cost (target p50 < 100 ms).
//
// Sub-benchmarks: day-cache (the product's default, warm after the first call) and no-cache
// (every day read from the daily tier's blocks), so both figures come from the same run.
func BenchmarkMonthAnalyticsDay(b *testing.B) {
	m := monthFixture(b)
	m.timedBoth(b, "/api/usage/analytics?startDate="+day(m.from)+"&endDate="+day(m.to)+"&groupBy=day")
}

// BenchmarkMonthAnalyticsDayNewYork is the same in America/New_York, whose days are not UTC
// days: the hourly tier serves them.
func BenchmarkMonthAnalyticsDayNewYork(b *testing.B) {
	m := monthFixture(b)
	m.timed(b, "/api/usage/analytics?startDate="+day(m.from.AddDate(0, 0, 1))+"&endDate="+day(m.to)+"&groupBy=day&tz=America/New_York")
}

// BenchmarkMonthAnalyticsHour: groupBy=hour over one day for all projects (target < 20 ms).
func BenchmarkMonthAnalyticsHour(b *testing.B) {
	m := monthFixture(b)
	d := m.to.AddDate(0, 0, -2)
	m.timedBoth(b, "/api/usage/analytics?startDate="+day(d)+"&endDate="+day(d.AddDate(0, 0, 1))+"&groupBy=hour")
}

// BenchmarkMonthAnalyticsOneProject: one project over the 31 days by day (target < 1 ms).
func BenchmarkMonthAnalyticsOneProject(b *testing.B) {
	m := monthFixture(b)
	m.timedBoth(b, "/api/usage/analytics?projectId="+m.projects[len(m.projects)/2]+"&startDate="+day(m.from)+"&endDate="+day(m.to)+"&groupBy=day")
}

// BenchmarkMonthSummary: the team's summary on the month's last day (target < 20 ms).
func BenchmarkMonthSummary(b *testing.B) {
	m := monthFixture(b)
	m.timedBoth(b, "/api/usage/summary")
}

// BenchmarkMonthSummaryLive is BenchmarkMonthSummary as a live server answers it: the clock at
// 13:00:30 of the month's last day, the hour 12:00–13:00 not derived yet (read from its 60
// minutes of 1-minute samples, through the minute cache; the summary stops at the current
// minute, which has no sample yet on a live server, and at 13:00 here, where the fixture does
// hold later samples), and commits as the collector and the Deriver make them:
// before every call a budget gauge (the Deriver writes them every minute), before every tenth
// a 1-minute sample into the current hour (the collector's cycle, every 5 minutes: ten summaries
// a cycle). They belong to a project outside the team ("bench_live", kept in the cached
// fixture), so the figures stay the fixture's; what they move is the day's generation and the
// current hour's, which the hour and minute caches must follow and nothing more
// (TierGenerations). p50 is a call between cycles, p99 the call after one.
func BenchmarkMonthSummaryLive(b *testing.B) {
	m := monthFixture(b)
	now := m.to.Add(-36*time.Hour + time.Hour + 30*time.Second)
	derived := func() (time.Time, time.Time) { return m.from, now.Truncate(time.Hour).Add(-time.Hour) }
	engine, err := query.New(nil, nil, query.Options{Storage: m.f.DB, Now: func() time.Time { return now }, HourlyRange: derived, DailyRange: derived})
	if err != nil {
		b.Fatal(err)
	}
	ps := make([]store.Project, len(m.projects))
	for i, p := range m.projects {
		ps[i] = store.Project{ID: p, TeamID: "team_bulk", Name: "Project " + p}
	}
	ts := httptest.NewServer(New(Options{
		AuthDeps:  AuthDeps{Tokens: fixedTokens{}},
		UsageDeps: UsageDeps{Usage: engine, UsageProjects: bulkStore{ps}},
		Limits:    Limits{RESTTimeout: 10 * time.Minute, QueryTimeout: 10 * time.Minute},
	}))
	defer ts.Close()
	live := *m
	live.url = ts.URL
	raw := labels.FromStrings(labels.MetricName, series.CPUSeconds, series.LabelProject, "bench_live", series.LabelDeployment, "web")
	gauge := labels.FromStrings(labels.MetricName, "cygni_project_budget_usd", series.LabelProject, "bench_live")
	// Stamped after every sample an earlier run left, one millisecond apart.
	t0 := now.Truncate(time.Hour).Add(-59 * time.Minute).UnixMilli()
	if q, err := m.f.DB.Querier(t0, now.UnixMilli()); err == nil {
		ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, series.LabelProject, "bench_live"))
		for ss.Next() {
			it := ss.At().Iterator(nil)
			for it.Next() != chunkenc.ValNone {
				t0 = max(t0, it.AtT()+1)
			}
		}
		if err := q.Close(); err != nil {
			b.Fatal(err)
		}
	}
	i := int64(0)
	commit := func() {
		app := m.f.DB.Appender(context.Background())
		ls := []labels.Labels{gauge}
		if i%10 == 0 {
			ls = append(ls, raw)
		}
		for _, l := range ls {
			if _, err := app.Append(0, l, t0+i, 60); err != nil {
				b.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			b.Fatal(err)
		}
		i++
	}
	commit()
	live.get(b, "/api/usage/summary") // the days and hours cached once
	b.ReportAllocs()
	hb, mb := engine.HourCacheStats(), engine.MinuteCacheStats()
	d := latencies(b, func() {
		commit()
		live.get(b, "/api/usage/summary")
	})
	reportP50(b, d)
	b.ReportMetric(float64(percentile(d, 0.99).Microseconds())/1000, "p99-ms")
	hs := engine.HourCacheStats()
	b.ReportMetric(float64(hs.Hits-hb.Hits)/float64(b.N), "cached-project-hour-days/op")
	b.ReportMetric(float64(hs.Misses-hb.Misses)/float64(b.N), "read-project-hour-days/op")
	ms := engine.MinuteCacheStats()
	b.ReportMetric(float64(ms.Hits-mb.Hits)/float64(b.N), "cached-project-hours/op")
	b.ReportMetric(float64(ms.Misses-mb.Misses)/float64(b.N), "read-project-hours/op")
}

// BenchmarkMonthBudget: one project's budget (target < 1 ms).
func BenchmarkMonthBudget(b *testing.B) {
	m := monthFixture(b)
	m.timedBoth(b, "/api/projects/"+m.projects[7]+"/budget")
}

// BenchmarkMonthExport: CSV export of the 31 days × all projects (one row per project-hour;
// target ≥ 1 M rows/s at flat memory: heap-peak-MiB is the live heap's peak growth, measured
// after a collection every 8 MiB of one more export after the timed ones). An export of more
// than 64 MiB (the month: ~100 MiB) whose live heap grew by more than 16 MiB fails: the export
// does not stream. (This replaces TestUsageExportStreamsWithFlatMemory, whose fixture was
// hourly points written straight into the TSDB.)
func BenchmarkMonthExport(b *testing.B) {
	m := monthFixture(b)
	path := "/api/usage/export?format=csv&startDate=" + m.from.Format(time.RFC3339) + "&endDate=" + m.to.Format(time.RFC3339)
	m.get(b, path) // warm the blocks' caches
	rows := 0
	for b.Loop() {
		rows += m.get(b, path) - 1
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	sink := &heapWatcher{gc: true}
	m.getInto(b, path, sink)
	growth := int64(sink.peak) - int64(before)
	b.ReportMetric(float64(growth)/(1<<20), "heap-peak-MiB")
	// What the export holds is bounded by its reads (exportChunk × exportBatch: 31 days of 12
	// projects, at most three at once), not by the range or the number of projects: 9.7 MiB for
	// 7 days of the 1,000 projects, 27 MiB for the 31 days (2026-12-04), and no more for longer.
	if limit := int64(48 << 20); sink.n > 64<<20 && growth > limit {
		b.Errorf("peak live heap grew by %d MiB while exporting %d MiB; want < %d MiB (not streaming?)", growth>>20, sink.n>>20, limit>>20)
	}
}

// BenchmarkMonthPromAPI: the Prometheus API over the hourly tier,
// sum by (project) (sum_over_time(cygni_cpu_seconds:sum1h[1d])) at 31 daily steps (target
// < 200 ms).
func BenchmarkMonthPromAPI(b *testing.B) {
	m := monthFixture(b)
	v := url.Values{"query": {`sum by (project) (sum_over_time(cygni_cpu_seconds:sum1h[1d]))`},
		"start": {m.from.AddDate(0, 0, 1).Format(time.RFC3339)}, "end": {m.to.Format(time.RFC3339)}, "step": {"86400"}}
	m.timed(b, "/api/v1/query_range?"+v.Encode())
}

// BenchmarkMonthPeerPromQL is the peer: Prometheus' promql.Engine in process over the same
// TSDB, no HTTP, no JSON: groupBy=day's question for every usage series as
// sum by (project) (sum_over_time(<series>[1d])) at 31 daily steps, over the 1-minute samples
// (what a user of plain Prometheus runs) and over the hourly tier.
func BenchmarkMonthPeerPromQL(b *testing.B) {
	m := monthFixture(b)
	ng := promql.NewEngine(promql.EngineOpts{MaxSamples: 1_000_000_000, Timeout: time.Hour, LookbackDelta: 5 * time.Minute})
	for _, tier := range []struct{ name, suffix string }{{"raw-minutes", ""}, {"hourly-tier", query.HourlySuffix}} {
		for _, all := range []bool{false, true} {
			name := tier.name + "/cpu-only"
			names := []string{series.CPUSeconds}
			if all {
				name, names = tier.name+"/7-series", series.Usage
			}
			b.Run(name, func(b *testing.B) {
				d := latencies(b, func() {
					for _, s := range names {
						q, err := ng.NewRangeQuery(context.Background(), m.f.DB, nil,
							"sum by (project) (sum_over_time("+s+tier.suffix+"[1d]))", m.from.AddDate(0, 0, 1), m.to, 24*time.Hour)
						if err != nil {
							b.Fatal(err)
						}
						if res := q.Exec(context.Background()); res.Err != nil {
							b.Fatal(res.Err)
						}
						q.Close()
					}
				})
				reportP50(b, d)
			})
		}
	}
}

// BenchmarkMonthDisk reports the fixture's build: disk per raw sample with both derived tiers,
// the collector's ingest rate while building it, and this process's RSS after the fixture is
// open and served.
func BenchmarkMonthDisk(b *testing.B) {
	m := monthFixture(b)
	for b.Loop() {
	}
	st := m.f.Stats
	b.ReportMetric(float64(st.Samples), "raw-samples")
	b.ReportMetric(st.BytesPerSample(), "disk-B/raw-sample")
	b.ReportMetric(st.SamplesPerSecond(), "ingest-samples/s")
	b.ReportMetric(float64(st.Samples)/st.IngestCPU, "ingest-samples/cpu-s")
	if rss, ok := rssBytes(); ok {
		b.ReportMetric(float64(rss)/(1<<20), "rss-MiB")
	}
}

// rssBytes reads the process's resident set from /proc (Linux).
func rssBytes() (int64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}
