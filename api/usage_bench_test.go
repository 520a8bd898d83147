package api

// Benchmarks of the usage endpoints over 1,000 projects × 30 days of hourly points:
//
//	go test -run '^$' -bench 'Usage' -benchtime 20x ./api/

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
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
// metrics usage series, one deployment each, with deterministic values.
func newBulkServer(tb testing.TB, projects, metrics int) *Server {
	tb.Helper()
	db, err := tsdb.Open(nil, nil, tsdb.Options{Dir: tb.TempDir(), OutOfOrderWindow: 400 * 24 * time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
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
	for day := bulkStart; day.Before(end); day = day.Add(24 * time.Hour) {
		app := db.Appender(context.Background())
		for h := day; h.Before(day.Add(24 * time.Hour)); h = h.Add(time.Hour) {
			for p := range projects {
				k := float64(p%7 + 1)
				vals := []float64{k * 1800, k * 0.25, k * 60, k * 123456789, k * 1000}
				for i, l := range ls[p] {
					if _, err := app.Append(0, l, h.Add(time.Hour).UnixMilli(), vals[i]); err != nil {
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
	s := newBulkServer(t, bulkProjects, 1)
	export := func(sink *heapWatcher) {
		rec := &streamRecorder{h: http.Header{}, w: sink}
		req := httptest.NewRequest("GET", "/api/usage/export?format=csv&startDate=2024-04-01T00:00:00Z&endDate=2024-05-01T00:00:00Z", nil)
		req.Header.Set("Authorization", "Bearer x")
		s.ServeHTTP(rec, req)
		if rec.code != http.StatusOK {
			t.Fatalf("status %d", rec.code)
		}
	}
	// A first run lets the TSDB finish compacting its head in the background, whose memory
	// is not the export's.
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
	s := newBulkServer(b, 1000, 5)
	b.ReportAllocs()
	var d []time.Duration
	for b.Loop() {
		t0 := time.Now()
		benchGet(b, s, "/api/usage/analytics?projectId=proj_0042&startDate=2024-04-01&endDate=2024-05-01&groupBy=day")
		d = append(d, time.Since(t0))
	}
	b.ReportMetric(float64(percentile(d, 0.5).Microseconds())/1000, "p50-ms")
}

func BenchmarkUsageSummary1000Projects(b *testing.B) {
	s := newBulkServer(b, 1000, 5)
	b.ReportAllocs()
	var d []time.Duration
	for b.Loop() {
		t0 := time.Now()
		benchGet(b, s, "/api/usage/summary")
		d = append(d, time.Since(t0))
	}
	b.ReportMetric(float64(percentile(d, 0.5).Microseconds())/1000, "p50-ms")
}

func BenchmarkUsageExport1000Projects30DaysHourly(b *testing.B) {
	s := newBulkServer(b, 1000, 5)
	b.ReportAllocs()
	rows := 0
	start := time.Now()
	for b.Loop() {
		rows += benchGet(b, s, "/api/usage/export?format=csv&startDate=2024-04-01T00:00:00Z&endDate=2024-05-01T00:00:00Z").rows - 1
	}
	b.ReportMetric(float64(rows)/time.Since(start).Seconds(), "rows/s")
}
