package rollup

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/shopspring/decimal"

	"github.com/cygni/usage/query"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/store"
	"github.com/cygni/usage/tsdb"
)

func openTestDB(tb testing.TB) *tsdb.DB {
	tb.Helper()
	db, err := tsdb.Open(nil, nil, tsdb.Options{Dir: tb.TempDir(), OutOfOrderWindow: 400 * 24 * time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

func appendSample(tb testing.TB, db *tsdb.DB, l labels.Labels, t time.Time, v float64) {
	tb.Helper()
	app := db.Appender(context.Background())
	if _, err := app.Append(0, l, t.UnixMilli(), v); err != nil {
		tb.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		tb.Fatal(err)
	}
}

// samplesIn returns the samples of the series matching l's name and labels stamped in (from, to].
// The collector's conversions (collector/discover.go), applied to CloudWatch's integer Sums.
func cpuSample(units int64) float64 { return float64(units) * 60 / 1024 }
func memSample(mib int64) float64   { return float64(mib) / 1024 / 60 }

func newEngine(tb testing.TB, db *tsdb.DB, hourly func() (time.Time, time.Time)) *query.Engine {
	tb.Helper()
	e, err := query.New(nil, nil, query.Options{Storage: db, HourlyRange: hourly})
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func samplesIn(tb testing.TB, db *tsdb.DB, l labels.Labels, from, to time.Time) []float64 {
	tb.Helper()
	q, err := db.Querier(from.UnixMilli()+1, to.UnixMilli())
	if err != nil {
		tb.Fatal(err)
	}
	defer q.Close()
	var ms []*labels.Matcher
	l.Range(func(x labels.Label) { ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, x.Name, x.Value)) })
	ss := q.Select(context.Background(), false, nil, ms...)
	var out []float64
	for ss.Next() {
		it := ss.At().Iterator(nil)
		for it.Next() == chunkenc.ValFloat {
			_, v := it.At()
			out = append(out, v)
		}
	}
	return out
}

func TestDeriverRederivesLateData(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	h0 := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	cpu := labels.FromStrings(labels.MetricName, series.CPUSeconds, series.LabelProject, "proj_a", series.LabelDeployment, "web", series.LabelCluster, "c", series.LabelRegion, "r")
	for m := range 180 {
		appendSample(t, db, cpu, h0.Add(time.Duration(m+1)*time.Minute), 30) // 0.5 vCPU
	}
	now := h0.Add(3*time.Hour + 5*time.Minute)
	_, err := query.New(nil, nil, query.Options{Storage: db, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDeriver(nil, nil, DeriverOptions{Storage: db, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Step(ctx); err != nil {
		t.Fatal(err)
	}
	from, through := d.Range()
	if !through.Equal(h0.Add(3 * time.Hour)) {
		t.Fatalf("derived through %s, want %s (from %s)", through, h0.Add(3*time.Hour), from)
	}
	hourly := labels.NewBuilder(cpu).Set(labels.MetricName, query.HourlyName(series.CPUSeconds)).Labels()
	if got := samplesIn(t, db, hourly, h0, h0.Add(time.Hour)); len(got) != 1 || got[0] != 1800 {
		t.Fatalf("hour 0 points %v, want [1800]", got)
	}
	// A late correction inside hour 1 (at a minute's end − 5 ms), then the next run.
	appendSample(t, db, cpu, h0.Add(time.Hour+30*time.Minute-5*time.Millisecond), 12.5)
	if err := d.Step(ctx); err != nil {
		t.Fatal(err)
	}
	got := samplesIn(t, db, hourly, h0.Add(time.Hour), h0.Add(2*time.Hour))
	if len(got) != 2 || got[0]+got[1] != 1812.5 {
		t.Fatalf("hour 1 points %v, want the original 1800 plus a correction of 12.5", got)
	}
	// Idempotent: a third run writes nothing new.
	if err := d.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if again := samplesIn(t, db, hourly, h0.Add(time.Hour), h0.Add(2*time.Hour)); len(again) != 2 {
		t.Fatalf("re-derive wrote again: %v", again)
	}
	// The hourly cost follows: 1812.5 vCPU-s = 0.503472… vCPU-h × $0.05.
	costL := labels.FromStrings(labels.MetricName, series.ProjectCostUSD, series.LabelProject, "proj_a", series.LabelResource, "compute")
	var cost float64
	for _, v := range samplesIn(t, db, costL, h0.Add(time.Hour), h0.Add(2*time.Hour)) {
		cost += v
	}
	if want := 1812.5 / 3600 * 0.05; math.Abs(cost-want) > 1e-12 {
		t.Errorf("hour 1 compute cost %v, want %v", cost, want)
	}
	// Hourly points and 1-minute samples give the same answer.
	bounds := []time.Time{h0, h0.Add(3 * time.Hour)}
	viaMinutes, _ := query.New(nil, nil, query.Options{Storage: db})
	viaHours, _ := query.New(nil, nil, query.Options{Storage: db, HourlyRange: d.Range})
	a, err := viaMinutes.Rollup(ctx, []string{"proj_a"}, bounds, query.ByProject)
	if err != nil {
		t.Fatal(err)
	}
	b, err := viaHours.Rollup(ctx, []string{"proj_a"}, bounds, query.ByProject)
	if err != nil {
		t.Fatal(err)
	}
	ka := a.Rows[query.Key{Project: "proj_a"}][0]
	kb := b.Rows[query.Key{Project: "proj_a"}][0]
	if ka.Usage != kb.Usage || !ka.Cost.Total().Equal(kb.Cost.Total()) {
		t.Errorf("minutes %v %s ≠ hours %v %s", ka.Usage, ka.Cost.Total(), kb.Usage, kb.Cost.Total())
	}
	if got := ka.Usage.Decimal(query.CPUSeconds).String(); got != "5412.5" {
		t.Errorf("3 hours of cpu = %s, want 5412.5", got)
	}
	// A restart continues from the persisted range.
	d2, _ := NewDeriver(nil, nil, DeriverOptions{Storage: db, Now: func() time.Time { return now }})
	if err := d2.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if f2, t2 := d2.Range(); !f2.Equal(from) || !t2.Equal(through) {
		t.Errorf("after restart range %s..%s, want %s..%s", f2, t2, from, through)
	}
}

// memProjects is a tiny ProjectSource: the store is not the subject here.
type memProjects struct {
	projects []store.Project
	teams    map[string]store.Team
}

func (m memProjects) AllProjects(context.Context) ([]store.Project, error) { return m.projects, nil }
func (m memProjects) GetTeam(_ context.Context, id string) (store.Team, error) {
	return m.teams[id], nil
}

func TestDeriverGauges(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	start := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	now := start.Add(48*time.Hour + 30*time.Minute)
	cpu := labels.FromStrings(labels.MetricName, series.CPUSeconds, series.LabelProject, "proj_a", series.LabelDeployment, "web")
	app := db.Appender(ctx)
	for m := 0; start.Add(time.Duration(m+1) * time.Minute).Before(now.Add(time.Second)); m++ {
		if _, err := app.Append(0, cpu, start.Add(time.Duration(m+1)*time.Minute).UnixMilli(), 72); err != nil { // 1.2 vCPU
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	limit := decimal.RequireFromString("250.5")
	src := memProjects{
		projects: []store.Project{{ID: "proj_a", TeamID: "team_a", BudgetLimit: &limit}},
		teams:    map[string]store.Team{"team_a": {ID: "team_a", BillingAnchorDay: 1}},
	}
	d, _ := NewDeriver(nil, nil, DeriverOptions{Storage: db, Projects: src, Now: func() time.Time { return now }})
	if err := d.Step(ctx); err != nil {
		t.Fatal(err)
	}
	at := func(name string) float64 {
		v := samplesIn(t, db, labels.FromStrings(labels.MetricName, name, series.LabelProject, "proj_a"), now.Add(-time.Millisecond), now)
		if len(v) != 1 {
			t.Fatalf("%s at now: %v", name, v)
		}
		return v[0]
	}
	// 48.5 h × 1.2 vCPU × $0.05 = $2.91 so far; the last 24 h ran at $1.44 a day, and 29.5 days
	// minus 30 minutes remain in May.
	mtd := 48.5 * 1.2 * 0.05
	if got := at(series.ProjectCostMonthToDateUSD); math.Abs(got-mtd) > 1e-9 {
		t.Errorf("month to date %v, want %v", got, mtd)
	}
	remainingMin := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC).Sub(now).Minutes()
	if got, want := at(series.ProjectCostForecastUSD), mtd+1.44*remainingMin/1440; math.Abs(got-want) > 1e-9 {
		t.Errorf("forecast %v, want %v", got, want)
	}
	if got := at(series.ProjectBudgetUSD); got != 250.5 {
		t.Errorf("budget %v, want 250.5", got)
	}
	// $2.91 of $250.50 is 1.1616… %: floored to 0.1 as the API's percentUsed shows it.
	if got := at(series.ProjectBudgetUsedPercent); got != 1.1 {
		t.Errorf("budget used %v %%, want 1.1", got)
	}
}

func TestDeriverWaitsForTheCollectorsWatermark(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	h0 := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	now := h0.Add(72*time.Hour + 5*time.Minute)
	cpu := labels.FromStrings(labels.MetricName, series.CPUSeconds, series.LabelProject, "proj_a", series.LabelDeployment, "web", series.LabelCluster, "c", series.LabelRegion, "r")
	hourly := labels.FromStrings(labels.MetricName, query.HourlyName(series.CPUSeconds), series.LabelProject, "proj_a", series.LabelDeployment, "web", series.LabelCluster, "c", series.LabelRegion, "r")
	fill := func(from, to time.Time) { // the collector's work: 60 vCPU-seconds a minute
		for m := from; m.Before(to); m = m.Add(time.Minute) {
			appendSample(t, db, cpu, m.Add(time.Minute), 60)
		}
	}
	fill(h0, h0.Add(2*time.Hour))
	_, err := query.New(nil, nil, query.Options{Storage: db, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	var until time.Time
	var known bool
	d, err := NewDeriver(nil, nil, DeriverOptions{Storage: db, Now: func() time.Time { return now },
		CollectedUntil: func() (time.Time, bool) { return until, known }})
	if err != nil {
		t.Fatal(err)
	}
	// No watermark yet (the first backfill is running): nothing is derived.
	if err := d.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if _, through := d.Range(); !through.IsZero() {
		t.Fatalf("derived through %s before the collector had a watermark", through)
	}
	// The collector has read the first two hours: the Deriver stops there.
	until, known = h0.Add(2*time.Hour+10*time.Minute), true
	if err := d.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if _, through := d.Range(); !through.Equal(h0.Add(2 * time.Hour)) {
		t.Fatalf("derived through %s, want the collector's last whole hour %s", through, h0.Add(2*time.Hour))
	}
	// The gap is backfilled, more than FullWindow (48h) behind now; every hour is derived right.
	fill(h0.Add(2*time.Hour), h0.Add(72*time.Hour))
	until = h0.Add(72 * time.Hour)
	for range 3 { // at most a day of backlog per step
		if err := d.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, through := d.Range(); !through.Equal(h0.Add(72 * time.Hour)) {
		t.Fatalf("derived through %s, want %s", through, h0.Add(72*time.Hour))
	}
	got := samplesIn(t, db, hourly, h0, h0.Add(72*time.Hour))
	if len(got) != 72 {
		t.Fatalf("%d hourly points, want 72", len(got))
	}
	for i, v := range got {
		if v != 3600 {
			t.Fatalf("hour %d: %v vCPU-seconds, want 3600", i, v)
		}
	}
}

// TestDeriverDerivesAllHistoryIntoBlocks starts a Deriver over ten days of 1-minute samples in a
// TSDB whose out-of-order window is one day: every hour is derived in its first run (the older
// ones written as blocks), queries over the hourly tier equal the 1-minute samples and the
// exact integers written, and deriving again writes nothing.
func TestDeriverDerivesAllHistoryIntoBlocks(t *testing.T) {
	db, err := tsdb.Open(nil, nil, tsdb.Options{Dir: t.TempDir(), OutOfOrderWindow: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ctx := context.Background()
	h0 := time.Date(2026, 10, 20, 0, 0, 0, 0, time.UTC)
	const days = 10
	end := h0.Add(days * 24 * time.Hour)
	now := end.Add(5 * time.Minute)
	cpu := labels.FromStrings(labels.MetricName, series.CPUSeconds, series.LabelProject, "proj_a", series.LabelDeployment, "web")
	mem := labels.FromStrings(labels.MetricName, series.MemoryGBHours, series.LabelProject, "proj_a", series.LabelDeployment, "web")
	var cpuQ, memQ int64 // the truth in quanta
	app := db.Appender(ctx)
	for m, i := h0, int64(0); m.Before(end); m, i = m.Add(time.Minute), i+1 {
		units, mib := 256+i%7*256, 512+i%5*1024
		if _, err := app.Append(0, cpu, m.Add(time.Minute).UnixMilli(), cpuSample(units)); err != nil {
			t.Fatal(err)
		}
		if _, err := app.Append(0, mem, m.Add(time.Minute).UnixMilli(), memSample(mib)); err != nil {
			t.Fatal(err)
		}
		cpuQ, memQ = cpuQ+15*units, memQ+mib
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	vm := metrics.NewSet()
	d, err := NewDeriver(nil, nil, DeriverOptions{Storage: db, Now: func() time.Time { return now }, Metrics: vm})
	if err != nil {
		t.Fatal(err)
	}
	// One run derives history for at most historyBudget (of wall time) and then asks for the
	// next; on a slow machine the history takes several runs.
	for run := 1; ; run++ {
		if err := d.Step(ctx); err != nil {
			t.Fatal(err)
		}
		if from, _ := d.Range(); !from.After(h0) || run == 20 {
			break
		}
	}
	from, through := d.Range()
	if !from.Equal(h0) || !through.Equal(end) {
		t.Fatalf("derived [%s, %s), want every hour [%s, %s)", from, through, h0, end)
	}
	if n := vm.GetOrCreateCounter(`cygni_query_deriver_blocks_written_total`).Get(); n == 0 {
		t.Error("no block written for hours older than the out-of-order window")
	}
	if n := vm.GetOrCreateCounter(`cygni_query_deriver_append_errors_total`).Get(); n != 0 {
		t.Errorf("%d derived samples skipped", n)
	}
	hourlyCPU := labels.NewBuilder(cpu).Set(labels.MetricName, query.HourlyName(series.CPUSeconds)).Labels()
	if got := samplesIn(t, db, hourlyCPU, h0, end); len(got) != days*24 {
		t.Fatalf("%d hourly points, want %d", len(got), days*24)
	}
	viaHours := newEngine(t, db, d.Range)
	viaMinutes := newEngine(t, db, nil)
	for _, g := range []query.GroupBy{query.Hour, query.Day, query.Month} {
		to := end
		if g == query.Hour {
			to = h0.Add(48 * time.Hour) // the oldest two days, all from blocks
		}
		bounds, err := query.Buckets(h0, to, g, time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		a, err := viaHours.Rollup(ctx, []string{"proj_a"}, bounds, query.ByProject)
		if err != nil {
			t.Fatal(err)
		}
		b, err := viaMinutes.Rollup(ctx, []string{"proj_a"}, bounds, query.ByProject)
		if err != nil {
			t.Fatal(err)
		}
		var sum query.Amounts
		for i, x := range a.Rows[query.Key{Project: "proj_a"}] {
			y := b.Rows[query.Key{Project: "proj_a"}][i]
			if x.Usage != y.Usage || !x.Cost.Total().Equal(y.Cost.Total()) {
				t.Fatalf("%s bucket %d: hourly tier %v, minutes %v", g, i, x.Usage, y.Usage)
			}
			if err := sum.Add(&x.Usage); err != nil {
				t.Fatal(err)
			}
		}
		if g != query.Hour && (sum[query.CPUSeconds] != query.Int128Of(cpuQ) || sum[query.MemoryGBHours] != query.Int128Of(memQ)) {
			t.Errorf("%s: cpu %s mem %s quanta, truth %d %d", g, sum[query.CPUSeconds], sum[query.MemoryGBHours], cpuQ, memQ)
		}
	}
	// Idempotent, blocks included.
	before := vm.GetOrCreateCounter(`cygni_query_deriver_samples_written_total`).Get()
	if err := d.Derive(ctx, h0, end); err != nil {
		t.Fatal(err)
	}
	if after := vm.GetOrCreateCounter(`cygni_query_deriver_samples_written_total`).Get(); after != before {
		t.Errorf("deriving again wrote %d samples", after-before)
	}
	// A fresh Deriver's Rebuild (the derive command) writes nothing new and serves the span.
	d2, err := NewDeriver(nil, nil, DeriverOptions{Storage: db, Now: func() time.Time { return now }, Metrics: vm})
	if err != nil {
		t.Fatal(err)
	}
	var last int
	if err := d2.Rebuild(ctx, h0, end, func(done, total int) { last = done }); err != nil {
		t.Fatal(err)
	}
	if last != days*24 {
		t.Errorf("progress ended at %d hours, want %d", last, days*24)
	}
	if f, th := d2.Range(); !f.Equal(h0) || !th.Equal(end) {
		t.Errorf("Rebuild's span [%s, %s), want [%s, %s)", f, th, h0, end)
	}
	if after := vm.GetOrCreateCounter(`cygni_query_deriver_samples_written_total`).Get(); after != before+3 { // the span series only
		t.Errorf("Rebuild wrote %d samples, want the 3 of the span series (from, through, days)", after-before)
	}
}

// TestDailyTierFollowsLateData: the daily point of a UTC day is the sum of its hours; a late
// correction inside an old day becomes a correction of the daily point, and deriving again writes
// nothing.
func TestDailyTierFollowsLateData(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	d0 := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	cpu := labels.FromStrings(labels.MetricName, series.CPUSeconds, series.LabelProject, "proj_a", series.LabelDeployment, "web", series.LabelCluster, "c", series.LabelRegion, "r")
	app := db.Appender(ctx)
	for m := range 2 * 24 * 60 {
		if _, err := app.Append(0, cpu, d0.Add(time.Duration(m+1)*time.Minute).UnixMilli(), 30); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	now := d0.Add(48*time.Hour + 5*time.Minute)
	d, err := NewDeriver(nil, nil, DeriverOptions{Storage: db, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if f, th := d.DailyRange(); !f.Equal(d0) || !th.Equal(d0.Add(48*time.Hour)) {
		t.Fatalf("daily span %s..%s, want the two days", f, th)
	}
	daily := labels.NewBuilder(cpu).Set(labels.MetricName, query.DailyName(series.CPUSeconds)).Labels()
	if got := samplesIn(t, db, daily, d0, d0.Add(48*time.Hour)); len(got) != 2 || got[0] != 43200 || got[1] != 43200 {
		t.Fatalf("daily points %v, want [43200 43200]", got)
	}
	// A late correction in the first day, then a rebuild of that day's hours.
	appendSample(t, db, cpu, d0.Add(13*time.Hour+30*time.Minute-3*time.Millisecond), 7.5)
	if err := d.Rebuild(ctx, d0.Add(13*time.Hour), d0.Add(14*time.Hour), nil); err != nil {
		t.Fatal(err)
	}
	got := samplesIn(t, db, daily, d0, d0.Add(24*time.Hour))
	if len(got) != 2 || got[0]+got[1] != 43207.5 {
		t.Fatalf("first day's points %v, want 43200 and a correction of 7.5", got)
	}
	if err := d.Rebuild(ctx, d0, d0.Add(48*time.Hour), nil); err != nil {
		t.Fatal(err)
	}
	if again := samplesIn(t, db, daily, d0, d0.Add(48*time.Hour)); len(again) != 3 {
		t.Fatalf("re-derive wrote again: %v", again)
	}
	// A restart reads the daily tier's state back.
	d2, _ := NewDeriver(nil, nil, DeriverOptions{Storage: db, Now: func() time.Time { return now }})
	if err := d2.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if f, th := d2.DailyRange(); !f.Equal(d0) || !th.Equal(d0.Add(48*time.Hour)) {
		t.Fatalf("after restart daily span %s..%s", f, th)
	}
}
