package api

// Benchmarks of the usage endpoints over 1,000 projects × 30 days of hourly points:
//
//	go test -run '^$' -bench 'Usage' -benchtime 5x ./api/
//
// The plain benchmarks read a TSDB whose head was just filled with the 30 days (and is being
// compacted while they run); the ...Blocks variants read the same points from one persisted
// block, the state a month of data is in on a running server.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	promtsdb "github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/shopspring/decimal"

	"github.com/cygni/usage/query"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/store"
	"github.com/cygni/usage/tsdb"
)

// bulkStore is a tiny in-memory UsageStore for the bulk tests: the store is not their subject.
type bulkStore struct{ projects []store.Project }

func (b bulkStore) GetProject(_ context.Context, teamID, id string) (store.Project, error) {
	for _, p := range b.projects {
		if p.ID == id && p.TeamID == teamID {
			return p, nil
		}
	}
	return store.Project{}, store.ErrNotFound
}
func (b bulkStore) ListProjects(_ context.Context, teamID string) ([]store.Project, error) {
	return append([]store.Project(nil), b.projects...), nil
}
func (b bulkStore) GetTeam(_ context.Context, id string) (store.Team, error) {
	return store.Team{ID: id, BillingAnchorDay: 1}, nil
}
func (b bulkStore) SetBudgetLimit(context.Context, string, string, decimal.Decimal) error { return nil }

// fixedTokens accepts any token as an admin of team_bulk.
type fixedTokens struct{}

func (fixedTokens) VerifyToken(context.Context, string) (Principal, error) {
	return Principal{TeamID: "team_bulk", Role: RoleAdmin}, nil
}

// bulkProjects is the size of the bulk export test.
var bulkProjects = 1000

var bulkStart = time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC)

// newBulkServer serves projects × 30 days of hourly points (the Deriver's form) of the first
// metrics usage series, one deployment each, with deterministic values, appended to the head of
// a new TSDB.
func newBulkServer(tb testing.TB, projects, metrics int) *Server {
	return newBulkServerIn(tb, projects, metrics, false)
}

// newBulkServerBlocks serves the same points from one persisted block (CreateBlock keeps a
// head window of twice the range so that series can be written one after the other).
func newBulkServerBlocks(tb testing.TB, projects, metrics int) *Server {
	return newBulkServerIn(tb, projects, metrics, true)
}

// bulkSample is one float sample of the block fixture.
type bulkSample struct {
	t int64
	f float64
}

func (s bulkSample) T() int64                      { return s.t }
func (s bulkSample) ST() int64                     { return 0 }
func (s bulkSample) F() float64                    { return s.f }
func (s bulkSample) H() *histogram.Histogram       { return nil }
func (s bulkSample) FH() *histogram.FloatHistogram { return nil }
func (s bulkSample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s bulkSample) Copy() chunks.Sample           { return s }

func newBulkServerIn(tb testing.TB, projects, metrics int, block bool) *Server {
	tb.Helper()
	dir := tb.TempDir()
	end := bulkStart.Add(30 * 24 * time.Hour)
	names := []string{series.CPUSeconds, series.MemoryGBHours, series.RunningTasks, series.EgressBytes, series.Requests}[:metrics]
	ls := make([][]labels.Labels, projects)
	ps := make([]store.Project, projects)
	for p := range projects {
		id := fmt.Sprintf("proj_%04d", p)
		ps[p] = store.Project{ID: id, TeamID: "team_bulk", Name: "Project " + id}
		for _, n := range names {
			ls[p] = append(ls[p], labels.FromStrings(labels.MetricName, query.HourlyName(n), series.LabelProject, id, series.LabelDeployment, "web", series.LabelCluster, "c1", series.LabelRegion, "us-east-1"))
		}
	}
	value := func(p, i int) float64 {
		k := float64(p%7 + 1)
		return []float64{k * 1800, k * 0.25, k * 60, k * 123456789, k * 1000}[i]
	}
	if block {
		var ss []storage.Series
		for p := range projects {
			for i, l := range ls[p] {
				var smp []chunks.Sample
				for h := bulkStart; h.Before(end); h = h.Add(time.Hour) {
					smp = append(smp, bulkSample{h.Add(time.Hour).UnixMilli(), value(p, i)})
				}
				ss = append(ss, storage.NewListSeries(l, smp))
			}
		}
		if _, err := promtsdb.CreateBlock(ss, dir, (62 * 24 * time.Hour).Milliseconds(), slog.New(slog.DiscardHandler)); err != nil {
			tb.Fatal(err)
		}
	}
	db, err := tsdb.Open(nil, nil, tsdb.Options{Dir: dir, OutOfOrderWindow: 400 * 24 * time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	for day := bulkStart; !block && day.Before(end); day = day.Add(24 * time.Hour) {
		app := db.Appender(context.Background())
		for h := day; h.Before(day.Add(24 * time.Hour)); h = h.Add(time.Hour) {
			for p := range projects {
				for i, l := range ls[p] {
					if _, err := app.Append(0, l, h.Add(time.Hour).UnixMilli(), value(p, i)); err != nil {
						tb.Fatal(err)
					}
				}
			}
		}
		if err := app.Commit(); err != nil {
			tb.Fatal(err)
		}
	}
	engine, err := query.New(nil, nil, query.Options{Storage: db, Now: func() time.Time { return end },
		HourlyRange: func() (time.Time, time.Time) { return bulkStart, end }})
	if err != nil {
		tb.Fatal(err)
	}
	return New(Options{AuthDeps: AuthDeps{Tokens: fixedTokens{}}, UsageDeps: UsageDeps{Usage: engine, UsageProjects: bulkStore{ps}}})
}

// heapWatcher is the response body's sink: it discards bytes and, when gc is set, measures the
// live heap (after a collection) every 8 MiB, keeping the peak.
type heapWatcher struct {
	n, next int
	peak    uint64
	rows    int
	gc      bool
}

func (h *heapWatcher) Write(p []byte) (int, error) {
	h.n += len(p)
	for _, c := range p {
		if c == '\n' {
			h.rows++
		}
	}
	if h.gc && h.n >= h.next {
		h.next = h.n + 8<<20
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		h.peak = max(h.peak, ms.HeapAlloc)
	}
	return len(p), nil
}

// streamRecorder is an http.ResponseWriter that hands the body straight to a writer.
type streamRecorder struct {
	h    http.Header
	code int
	w    io.Writer
}

func (s *streamRecorder) Header() http.Header         { return s.h }
func (s *streamRecorder) WriteHeader(code int)        { s.code = code }
func (s *streamRecorder) Write(p []byte) (int, error) { return s.w.Write(p) }
func (s *streamRecorder) Flush()                      {}

func TestUsageExportStreamsWithFlatMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 3.6 million samples")
	}
	// The points sit in a persisted block, as a month does on a running server: a head still
	// being compacted in the background would put the compaction's memory into the measurement.
	s := newBulkServerBlocks(t, bulkProjects, 1)
	export := func(sink *heapWatcher) {
		rec := &streamRecorder{h: http.Header{}, w: sink}
		req := httptest.NewRequest("GET", "/api/usage/export?format=csv&startDate=2024-04-01T00:00:00Z&endDate=2024-05-01T00:00:00Z", nil)
		req.Header.Set("Authorization", "Bearer x")
		s.ServeHTTP(rec, req)
		if rec.code != http.StatusOK {
			t.Fatalf("status %d", rec.code)
		}
	}
	// A first run warms the block's caches, whose memory is not the export's.
	export(&heapWatcher{})
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	sink := &heapWatcher{gc: true}
	export(sink)
	if want := 1 + bulkProjects*720; sink.rows != want {
		t.Fatalf("%d lines, want %d (header + one row per project-hour)", sink.rows, want)
	}
	growth := int64(sink.peak) - int64(before)
	t.Logf("exported %d MiB in %d rows; peak heap growth %d KiB", sink.n>>20, sink.rows, growth>>10)
	// The file is ~100 MiB; streaming keeps the live heap to one project's week plus buffers.
	if limit := int64(16 << 20); growth > limit {
		t.Errorf("peak heap grew by %d MiB while exporting %d MiB; want < %d MiB (not streaming?)", growth>>20, sink.n>>20, limit>>20)
	}
}

func benchGet(b *testing.B, s *Server, path string) *heapWatcher {
	b.Helper()
	sink := &heapWatcher{}
	rec := &streamRecorder{h: http.Header{}, w: sink}
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("Authorization", "Bearer x")
	s.ServeHTTP(rec, req)
	if rec.code != http.StatusOK {
		b.Fatalf("%s: status %d", path, rec.code)
	}
	return sink
}

func percentile(d []time.Duration, p float64) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[int(float64(len(d)-1)*p)]
}

func BenchmarkUsageAnalyticsOneProject30DaysByDay(b *testing.B) {
	benchAnalytics(b, newBulkServer(b, 1000, 5))
}

func BenchmarkUsageAnalyticsOneProject30DaysByDayBlocks(b *testing.B) {
	benchAnalytics(b, newBulkServerBlocks(b, 1000, 5))
}

func BenchmarkUsageSummary1000Projects(b *testing.B) { benchSummary(b, newBulkServer(b, 1000, 5)) }

func BenchmarkUsageSummary1000ProjectsBlocks(b *testing.B) {
	benchSummary(b, newBulkServerBlocks(b, 1000, 5))
}

func BenchmarkUsageExport1000Projects30DaysHourly(b *testing.B) {
	benchExport(b, newBulkServer(b, 1000, 5))
}

func BenchmarkUsageExport1000Projects30DaysHourlyBlocks(b *testing.B) {
	benchExport(b, newBulkServerBlocks(b, 1000, 5))
}

// latencies runs op once per benchmark iteration and returns how long each run took. The
// monotonic clock is read only as this stopwatch: the product's clock in the benchmarks is
// pinned (the engines' Now), so no figure depends on the hour the benchmark runs at.
func latencies(b *testing.B, op func()) []time.Duration {
	var d []time.Duration
	for b.Loop() {
		t0 := time.Now()
		op()
		d = append(d, time.Since(t0))
	}
	return d
}

func reportP50(b *testing.B, d []time.Duration) {
	b.ReportMetric(float64(percentile(d, 0.5).Microseconds())/1000, "p50-ms")
}

func benchAnalytics(b *testing.B, s *Server) {
	b.ReportAllocs()
	reportP50(b, latencies(b, func() {
		benchGet(b, s, "/api/usage/analytics?projectId=proj_0042&startDate=2024-04-01&endDate=2024-05-01&groupBy=day")
	}))
}

func benchSummary(b *testing.B, s *Server) {
	b.ReportAllocs()
	reportP50(b, latencies(b, func() { benchGet(b, s, "/api/usage/summary") }))
}

func benchExport(b *testing.B, s *Server) {
	b.ReportAllocs()
	rows := 0
	for b.Loop() {
		rows += benchGet(b, s, "/api/usage/export?format=csv&startDate=2024-04-01T00:00:00Z&endDate=2024-05-01T00:00:00Z").rows - 1
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}
