package collector

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/cygni/usage/simaws"
	"github.com/cygni/usage/store"
)

// A day of usage for every project and series equals the simulator's ground truth.
func TestDayExact(t *testing.T) {
	e := newEnv(t, simaws.Options{})
	var last Progress
	c := e.collector(t, func(o *Options) { o.OnProgress = func(p Progress) { last = p } })
	if err := c.Ready(); !errors.Is(err, ErrNotReady) {
		t.Fatalf("Ready before the first run = %v, want ErrNotReady", err)
	}
	if err := c.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Ready(); err != nil {
		t.Fatalf("Ready after the first run = %v", err)
	}
	// The last progress report covers the whole window and counts every sample appended.
	if n := counter(e.set, "cygni_collector_samples_appended_total"); last.Done != 24*time.Hour || last.Samples != n || n == 0 {
		t.Errorf("last progress = %+v, want the whole day and %d samples", last, n)
	}
	from, to := testNow.Add(-24*time.Hour), testNow
	e.assertProjectsExact(t, from, to)

	// Labels: cluster and region on every series; the untagged service has no project.
	for _, s := range e.sim.Services() {
		got := stored(t, e.db, simaws.SeriesCPUSeconds, from, to, eq("cluster", s.Cluster), eq("region", "us-east-1"), eq("deployment", deploymentOf(s)), eq("project", s.Project))
		assertClose(t, s.Name+" by full label set", got, e.sim.Truth(s, simaws.SeriesCPUSeconds, from, to))
	}
	if got := e.set.GetOrCreateGauge("cygni_collector_untagged_services", nil).Get(); got != 1 {
		t.Errorf("untagged services gauge = %v, want 1", got)
	}
	wf, err := readWatermark(filepath.Join(e.dataDir, WatermarkFile))
	if err != nil || !wf.Watermark.Equal(testNow) || !wf.RightSizing.Equal(testNow) {
		t.Errorf("watermarks = %+v %v, want %v for both", wf, err, testNow)
	}
	var buf bytes.Buffer
	e.set.WritePrometheus(&buf)
	for _, want := range []string{
		"cygni_collector_samples_appended_total ",
		`cygni_collector_aws_calls_total{service="cloudwatch",operation="GetMetricData"}`,
		`cygni_collector_aws_calls_total{service="ecs",operation="DescribeServices"}`,
		"cygni_collector_lag_seconds 0",
		"cygni_collector_last_success_timestamp_seconds ",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, buf.String())
		}
	}

	// Re-reading the same day appends nothing.
	before := counter(e.set, "cygni_collector_samples_appended_total")
	if err := c.Collect(context.Background(), from, to); err != nil {
		t.Fatal(err)
	}
	if n := counter(e.set, "cygni_collector_samples_appended_total") - before; n != 0 {
		t.Errorf("re-reading a stored day appended %d samples, want 0", n)
	}
	e.assertProjectsExact(t, from, to)
}

func deploymentOf(s simaws.Service) string {
	if s.Project == "" {
		return s.Name
	}
	return s.Deployment
}

// More than 500 queries (several batches) and multi-page answers, with a restart in the middle:
// no gap, no double count.
func TestPaginationAndRestart(t *testing.T) {
	e := newEnv(t, simaws.Options{Projects: 100, ServicesPerProject: 3})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	chunks := 0
	c := e.collector(t, func(o *Options) {
		o.Backfill = 12 * time.Hour
		o.Chunk = 4 * time.Hour // 240 periods × 500 queries = 120,000 datapoints > one page
		o.OnProgress = func(Progress) {
			if chunks++; chunks == 2 {
				cancel() // "killed" after two committed chunks
			}
		}
	})
	if err := c.RunOnce(ctx); err == nil {
		t.Fatal("RunOnce survived its cancellation")
	}
	// History goes into blocks written while the next chunk is read: after two chunks the
	// watermark is at the end of the first, whose blocks are loaded; the second's were still
	// being written when its chunk ended.
	wm, ok := c.Watermark()
	if want := testNow.Add(-8 * time.Hour); !ok || !wm.Equal(want) {
		t.Fatalf("watermark after two chunks = %v, want %v", wm, want)
	}
	calls := e.sim.Calls()
	if calls["GetMetricData"] <= 2*5 {
		t.Errorf("GetMetricData calls = %d; want more than one page per batch", calls["GetMetricData"])
	}

	c2 := e.collector(t, nil) // the restart: a new collector over the same data dir
	if err := c2.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.assertProjectsExact(t, testNow.Add(-12*time.Hour), testNow)
}

// Throttling and 500s from CloudWatch and ECS are retried; the result is still exact.
func TestFaultsStillExact(t *testing.T) {
	e := newEnv(t, simaws.Options{})
	e.sim.SetFaults(simaws.Faults{ThrottleCloudWatch: 5, FailCloudWatch: 4, ThrottleECS: 3, FailECS: 2})
	c := e.collector(t, func(o *Options) { o.Backfill = 6 * time.Hour })
	if err := c.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.assertProjectsExact(t, testNow.Add(-6*time.Hour), testNow)
}

// Late data: the first read sees half of the recent minutes; later cycles re-read the look-back
// and append corrections, never doubling.
func TestLateDataCorrected(t *testing.T) {
	e := newEnv(t, simaws.Options{})
	e.sim.SetFaults(simaws.Faults{Partial: 10 * time.Minute})
	c := e.collector(t, func(o *Options) { o.Backfill = 2 * time.Hour })
	if err := c.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	start := testNow.Add(-2 * time.Hour)
	truth := e.sim.ProjectTruth("proj_001", simaws.SeriesCPUSeconds, start, testNow)
	if got := stored(t, e.db, simaws.SeriesCPUSeconds, start, testNow, eq("project", "proj_001")); got >= truth {
		t.Fatalf("first read stored %v, truth %v: the partial minutes were not partial", got, truth)
	}
	// An hour of cycles: the billed metrics are re-read every cycle, the right-sizing ones at
	// the hour (Options.RightSizingInterval), each from its own watermark minus the look-back.
	for range 12 {
		e.clock.Add(5 * time.Minute)
		if err := c.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// The minutes up to now-10m are final; every one of them is exact.
	end := e.clock.Now().Add(-10 * time.Minute)
	e.assertProjectsExact(t, start, end)
	if counter(e.set, "cygni_collector_corrections_appended_total") == 0 {
		t.Error("no correction samples were appended")
	}
}

// Old windows are read at coarser periods (5 min beyond 15 days, 1 h beyond 63 days) and still
// sum exactly.
func TestCoarsePeriods(t *testing.T) {
	for _, tc := range []struct {
		name string
		from time.Time
	}{
		{"5m", testNow.Add(-20 * 24 * time.Hour).Truncate(time.Hour)},
		{"1h", testNow.Add(-70 * 24 * time.Hour).Truncate(time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, simaws.Options{})
			c := e.collector(t, nil)
			to := tc.from.Add(6 * time.Hour)
			if err := c.Collect(context.Background(), tc.from, to); err != nil {
				t.Fatal(err)
			}
			e.assertProjectsExact(t, tc.from, to)
		})
	}
	// History behind the head, further than the out-of-order window (15 days), goes into blocks
	// of its own (tsdb.Backfill): stored, exact, and read again without a second count.
	t.Run("older than the out-of-order window", func(t *testing.T) {
		e := newEnv(t, simaws.Options{})
		c := e.collector(t, func(o *Options) { o.Backfill = time.Hour })
		if err := c.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		from := testNow.Add(-70 * 24 * time.Hour).Truncate(time.Hour)
		for range 2 {
			if err := c.Collect(context.Background(), from, from.Add(3*time.Hour)); err != nil {
				t.Fatal(err)
			}
			e.assertProjectsExact(t, from, from.Add(3*time.Hour))
		}
		if n := counter(e.set, "cygni_collector_samples_rejected_total"); n != 0 {
			t.Errorf("%d samples rejected", n)
		}
	})
}

// A backfill in short chunks (a large fleet's: MaxChunkPoints) goes through the head in order,
// one whose chunks are longer than an hour into blocks; both exact, nothing refused, and read
// again without a second count.
func TestBackfillHeadOrBlocks(t *testing.T) {
	for _, tc := range []struct {
		name  string
		chunk time.Duration
	}{{"short chunks, head", 30 * time.Minute}, {"long chunks, blocks", 6 * time.Hour}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, simaws.Options{Projects: 20, ServicesPerProject: 2})
			c := e.collector(t, func(o *Options) { o.Chunk = tc.chunk })
			from, to := testNow.Add(-30*time.Hour), testNow.Add(-6*time.Hour)
			for range 2 {
				if err := c.Collect(context.Background(), from, to); err != nil {
					t.Fatal(err)
				}
				e.assertProjectsExact(t, from, to)
			}
			if n := counter(e.set, "cygni_collector_samples_rejected_total"); n != 0 {
				t.Errorf("%d samples rejected", n)
			}
		})
	}
}

func TestPlan(t *testing.T) {
	e := newEnv(t, simaws.Options{})
	c := e.collector(t, func(o *Options) { o.Chunk = 6 * time.Hour; o.MaxChunkPoints = 1_000_000 })
	h := time.Hour
	for _, tc := range []struct {
		name     string
		from, to time.Time
		queries  int
		want     []chunk
	}{
		{"6h from the start", testNow.Add(-7 * h), testNow, 10, []chunk{
			{testNow.Add(-7 * h), testNow.Add(-1 * h), 60},
			{testNow.Add(-1 * h), testNow, 60},
		}},
		// A cycle's 20-minute window across a 6-hour boundary is one chunk: every metric is
		// requested once (GetMetricData bills per metric requested).
		{"a cycle is one chunk", testNow.Add(-15 * time.Minute), testNow.Add(5 * time.Minute), 10, []chunk{
			{testNow.Add(-15 * time.Minute), testNow.Add(5 * time.Minute), 60},
		}},
		{"bounded by points", testNow.Add(-25 * time.Minute), testNow, 100_000, []chunk{
			{testNow.Add(-25 * time.Minute), testNow.Add(-15 * time.Minute), 60},
			{testNow.Add(-15 * time.Minute), testNow.Add(-5 * time.Minute), 60},
			{testNow.Add(-5 * time.Minute), testNow, 60},
		}},
		{"resolutions", testNow.Add(-15*24*h - 2*h), testNow.Add(-15*24*h + 2*h), 10, []chunk{
			{testNow.Add(-15*24*h - 2*h), testNow.Add(-15*24*h + h), 300},
			{testNow.Add(-15*24*h + h), testNow.Add(-15*24*h + 2*h), 60},
		}},
		{"empty", testNow, testNow, 10, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := c.plan(tc.from, tc.to, tc.queries)
			if len(got) != len(tc.want) {
				t.Fatalf("plan = %v, want %v", got, tc.want)
			}
			for i := range got {
				if !got[i].from.Equal(tc.want[i].from) || !got[i].to.Equal(tc.want[i].to) || got[i].period != tc.want[i].period {
					t.Errorf("chunk %d = %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// An unreachable endpoint and bad credentials give clear errors, are retried, and Run keeps going.
func TestUnreachableAndBadCredentials(t *testing.T) {
	e := newEnv(t, simaws.Options{})
	ln := closedPort(t)
	for _, tc := range []struct {
		name, url, akid string
		want            []string
		retried         bool
	}{
		{"unreachable", "http://" + ln, "AKIDSIMULATED", []string{ln, "connection refused"}, true},
		{"bad credentials", e.url, "AKIDWRONG", []string{"UnrecognizedClientException"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cw, ec := clients(tc.url, tc.akid, "simulated-secret")
			c := e.collector(t, func(o *Options) {
				o.CloudWatch, o.ECS = cw, ec
				o.DataDir = t.TempDir()
				o.Interval = 20 * time.Millisecond
				o.RetryMaxElapsed = 200 * time.Millisecond
				o.Metrics = metrics.NewSet()
			})
			err := c.RunOnce(context.Background())
			if retries := counter(c.opts.Metrics, "cygni_collector_retries_total"); (retries > 0) != tc.retried {
				t.Errorf("collector retries = %d, want retried=%v", retries, tc.retried)
			}
			if err == nil {
				t.Fatal("RunOnce succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			if err := c.Run(ctx); err != nil {
				t.Errorf("Run = %v, want nil after its context ended", err)
			}
			if c.Ready() == nil {
				t.Error("ready without a successful run")
			}
		})
	}
}

// closedPort returns a loopback address nobody listens on.
func closedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestWatermarkFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", WatermarkFile)
	if w, err := readWatermark(path); !w.Watermark.IsZero() || !w.RightSizing.IsZero() || err != nil {
		t.Fatalf("missing file: %+v err=%v", w, err)
	}
	want := watermarkFile{Watermark: testNow, RightSizing: testNow.Add(-time.Hour)}
	if err := writeWatermark(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := readWatermark(path)
	if err != nil || got != want {
		t.Fatalf("read back %+v %v, want %+v", got, err, want)
	}
	// A file from before the right-sizing cadence has only the watermark.
	if err := os.WriteFile(path, []byte(`{"watermark":"2026-03-10T12:00:00Z"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := readWatermark(path); err != nil || !got.Watermark.Equal(testNow) || !got.RightSizing.IsZero() {
		t.Fatalf("old file: %+v %v", got, err)
	}
	if got, ok, err := ReadWatermark(filepath.Dir(path)); err != nil || !ok || !got.Equal(testNow) {
		t.Fatalf("ReadWatermark of the data dir: %v %v %v", got, ok, err)
	}
	if err := os.WriteFile(path, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readWatermark(path); err == nil || !strings.Contains(err.Error(), "parse watermark") {
		t.Errorf("corrupt file: err = %v", err)
	}
}

// CloudWatch publishing later than the look-back (17 minutes against 15): the watermark waits for
// the newest published minute, so every minute is read once it appears, nothing is lost, and the
// lag metrics show how far behind CloudWatch is.
func TestDataLaterThanTheLookback(t *testing.T) {
	e := newEnv(t, simaws.Options{})
	e.sim.SetFaults(simaws.Faults{LateBy: 17 * time.Minute})
	c := e.collector(t, func(o *Options) { o.Backfill = 2 * time.Hour; o.RightSizingInterval = 5 * time.Minute })
	start := testNow.Add(-2 * time.Hour)
	for i := range 25 { // two hours of 5-minute cycles
		if i > 0 {
			e.clock.Add(5 * time.Minute)
		}
		if err := c.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	now := e.clock.Now()
	published := now.Add(-17 * time.Minute).Truncate(time.Minute)
	e.assertProjectsExact(t, start, published)
	wm, _ := c.Watermark()
	if !wm.Equal(published) {
		t.Errorf("watermark %v, want the newest published minute %v", wm, published)
	}
	if got := e.set.GetOrCreateGauge("cygni_collector_lag_seconds", nil).Get(); got != 17*60 {
		t.Errorf("cygni_collector_lag_seconds = %v, want %v", got, 17*60)
	}
	if got := e.set.GetOrCreateGauge("cygni_collector_cloudwatch_behind_seconds", nil).Get(); got != 17*60 {
		t.Errorf("cygni_collector_cloudwatch_behind_seconds = %v, want %v", got, 17*60)
	}
	if n := counter(e.set, "cygni_collector_abandoned_minutes_total"); n != 0 {
		t.Errorf("%d minutes abandoned, want 0", n)
	}
}

// Minutes CloudWatch never publishes (Container Insights off, an incident longer than the hold)
// stop holding the watermark after collector.late_data_hold, and are counted.
func TestLateDataHoldEnds(t *testing.T) {
	e := newEnv(t, simaws.Options{})
	e.sim.SetFaults(simaws.Faults{LateBy: 3 * time.Hour})
	c := e.collector(t, func(o *Options) { o.Backfill = 30 * time.Minute; o.LateDataHold = time.Hour })
	if err := c.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	for range 12 {
		e.clock.Add(5 * time.Minute)
		if err := c.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	now := e.clock.Now()
	wm, ok := c.Watermark()
	if want := now.Add(-time.Hour); !ok || !wm.Equal(want) {
		t.Errorf("watermark %v, want now − late_data_hold = %v", wm, want)
	}
	// The backfill started 30 minutes before testNow and nothing was ever published: the
	// watermark passed the 30 minutes before testNow without data.
	if n := counter(e.set, "cygni_collector_abandoned_minutes_total"); n != 30 {
		t.Errorf("%d minutes abandoned, want 30", n)
	}
}

// Two collectors, shards 0 and 1 of 2, over one fleet and one storage: each collects a part of
// the services, together every project is exact, and each keeps its own watermark in the
// shared store (not in a file).
func TestShardsTogetherExact(t *testing.T) {
	e := newEnv(t, simaws.Options{})
	st, err := store.Open(context.Background(), nil, store.Options{Driver: store.DriverSQLite, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	seen := map[int]int{}
	for shard := range 2 {
		set := metrics.NewSet()
		c := e.collector(t, func(o *Options) {
			o.Shard, o.Shards, o.Watermarks, o.Backfill, o.Metrics = shard, 2, st, 6*time.Hour, set
			o.DataDir = ""
		})
		if err := c.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		seen[shard] = int(set.GetOrCreateGauge("cygni_collector_services", nil).Get())
		wm, ok, err := st.CollectorWatermark(context.Background(), WatermarkKey("us-east-1", shard, 2))
		if err != nil || !ok || !wm.Equal(testNow) {
			t.Errorf("shard %d watermark in the store = %v %v %v, want %v", shard, wm, ok, err, testNow)
		}
	}
	if n := len(e.sim.Services()); seen[0] == 0 || seen[1] == 0 || seen[0]+seen[1] != n {
		t.Errorf("shards collected %d and %d services, want a split of %d", seen[0], seen[1], n)
	}
	e.assertProjectsExact(t, testNow.Add(-6*time.Hour), testNow)
	if _, err := os.Stat(filepath.Join(e.dataDir, WatermarkFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a watermark file was written beside the shared store: %v", err)
	}
	if u, ok, err := st.CollectedUntil(context.Background()); err != nil || !ok || !u.Equal(testNow) {
		t.Errorf("CollectedUntil = %v %v %v", u, ok, err)
	}
}

// A cycle after an outage spans several chunks while CloudWatch is hours late: no chunk's start
// may move the watermark past minutes an earlier chunk found unpublished (within the hold), so
// once CloudWatch catches up every minute is read.
func TestLateDataAcrossChunksOfOneCycle(t *testing.T) {
	e := newEnv(t, simaws.Options{})
	c := e.collector(t, func(o *Options) {
		o.Backfill = 30 * time.Minute
		o.Chunk = time.Hour
		o.RightSizingInterval = 5 * time.Minute
	})
	start := testNow.Add(-30 * time.Minute)
	if err := c.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Four hours down; back with CloudWatch three hours late: a window of four hours and a
	// quarter in chunks of 25 minutes (look-back + two intervals).
	e.clock.Add(4 * time.Hour)
	e.sim.SetFaults(simaws.Faults{LateBy: 3 * time.Hour})
	if err := c.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if wm, _ := c.Watermark(); wm.After(testNow.Add(time.Hour)) {
		t.Errorf("watermark %v after the cycle, past the newest published minute %v", wm, testNow.Add(time.Hour))
	}
	// CloudWatch catches up.
	e.sim.SetFaults(simaws.Faults{})
	for range 3 {
		e.clock.Add(5 * time.Minute)
		if err := c.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	e.assertProjectsExact(t, start, e.clock.Now().Truncate(time.Minute))
	if n := counter(e.set, "cygni_collector_abandoned_minutes_total"); n != 0 {
		t.Errorf("%d minutes abandoned, want 0", n)
	}
}
