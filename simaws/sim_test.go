package simaws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/encoding/cbor"
)

// testNow is mid-minute, so the minute it falls in has not ended yet.
var testNow = time.Date(2026, 3, 10, 12, 34, 30, 0, time.UTC)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

type fixture struct {
	sim   *Sim
	clock *clock
	url   string
	cw    *cloudwatch.Client
	ecs   *ecs.Client
}

// noBackoff keeps the standard retryer's decisions but not its sleeps, to keep tests fast.
type noBackoff struct{}

func (noBackoff) BackoffDelay(int, error) (time.Duration, error) { return 0, nil }

func fastRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) { o.Backoff = noBackoff{} })
}

func noRetry() aws.Retryer { return aws.NopRetryer{} }

func newFixture(t testing.TB, opts Options) *fixture {
	t.Helper()
	c := &clock{t: testNow}
	opts.Now = c.Now
	s := New(opts)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	f := &fixture{sim: s, clock: c, url: srv.URL}
	f.cw = f.cloudWatch("AKIDSIMULATED", "simulated-secret", fastRetryer())
	f.ecs = f.ecsClient("AKIDSIMULATED", "simulated-secret", fastRetryer())
	return f
}

func (f *fixture) config(akid, secret string, r aws.Retryer) aws.Config {
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(akid, secret, ""),
	}
	if r != nil {
		cfg.Retryer = func() aws.Retryer { return r }
	}
	return cfg
}

func (f *fixture) cloudWatch(akid, secret string, r aws.Retryer) *cloudwatch.Client {
	return cloudwatch.NewFromConfig(f.config(akid, secret, r), func(o *cloudwatch.Options) { o.BaseEndpoint = aws.String(f.url) })
}

func (f *fixture) ecsClient(akid, secret string, r aws.Retryer) *ecs.Client {
	return ecs.NewFromConfig(f.config(akid, secret, r), func(o *ecs.Options) { o.BaseEndpoint = aws.String(f.url) })
}

// metricQuery builds a MetricDataQuery for one metric of svc.
func metricQuery(id string, svc Service, metric, stat string, period int32) cwtypes.MetricDataQuery {
	ns := nsContainerInsights
	dims := []cwtypes.Dimension{
		{Name: aws.String("ClusterName"), Value: aws.String(svc.Cluster)},
		{Name: aws.String("ServiceName"), Value: aws.String(svc.Name)},
	}
	if metric == "RequestCount" {
		ns = nsALB
		_, tg, _ := strings.Cut(svc.TargetGroupARN, ":targetgroup/")
		dims = []cwtypes.Dimension{
			{Name: aws.String("LoadBalancer"), Value: aws.String(svc.LoadBalancer)},
			{Name: aws.String("TargetGroup"), Value: aws.String("targetgroup/" + tg)},
		}
	}
	return cwtypes.MetricDataQuery{
		Id: aws.String(id),
		MetricStat: &cwtypes.MetricStat{
			Metric: &cwtypes.Metric{Namespace: aws.String(ns), MetricName: aws.String(metric), Dimensions: dims},
			Period: aws.Int32(period),
			Stat:   aws.String(stat),
		},
	}
}

type point struct {
	t time.Time
	v float64
}

// fetchAll runs GetMetricData through the SDK paginator and collects the points per Id,
// checking that no (Id, timestamp) appears twice.
func fetchAll(t testing.TB, c *cloudwatch.Client, in *cloudwatch.GetMetricDataInput) (map[string][]point, int) {
	t.Helper()
	out := map[string][]point{}
	seen := map[string]map[int64]bool{}
	pages := 0
	p := cloudwatch.NewGetMetricDataPaginator(c, in)
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("GetMetricData page %d: %v", pages, err)
		}
		pages++
		for _, r := range page.MetricDataResults {
			id := aws.ToString(r.Id)
			if len(r.Timestamps) != len(r.Values) {
				t.Fatalf("%s: %d timestamps, %d values", id, len(r.Timestamps), len(r.Values))
			}
			if seen[id] == nil {
				seen[id] = map[int64]bool{}
			}
			for i, ts := range r.Timestamps {
				if seen[id][ts.Unix()] {
					t.Fatalf("%s: timestamp %s returned twice", id, ts)
				}
				seen[id][ts.Unix()] = true
				out[id] = append(out[id], point{ts, r.Values[i]})
			}
		}
	}
	return out, pages
}

func sumPoints(ps []point) float64 {
	var s float64
	for _, p := range ps {
		s += p.v
	}
	return s
}

func near(a, b float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestFleet(t *testing.T) {
	s := New(Options{})
	svcs := s.Services()
	if len(svcs) != 9 {
		t.Fatalf("default fleet has %d services, want 4×2+1", len(svcs))
	}
	if svcs[0].Project != "proj_001" || svcs[0].Deployment != "web" || svcs[1].Deployment != "worker" || svcs[0].Cluster != "cygni-prod" || svcs[2].Cluster != "cygni-staging" {
		t.Errorf("unexpected layout: %+v", svcs[:3])
	}
	if u := svcs[8]; u.Project != "" || u.Deployment != "" {
		t.Errorf("last service should be untagged: %+v", u)
	}
	for _, sv := range svcs {
		okMem := false
		for _, m := range fargateMemory(sv.TaskCPU) {
			okMem = okMem || m == sv.TaskMemoryMiB
		}
		if !okMem {
			t.Errorf("%s: %d CPU / %d MiB is not a Fargate size", sv.Name, sv.TaskCPU, sv.TaskMemoryMiB)
		}
		if (sv.TargetGroupARN == "") != (sv.LoadBalancer == "") {
			t.Errorf("%s: target group and load balancer must come together", sv.Name)
		}
	}
	if svcs[1].TargetGroupARN != "" {
		t.Errorf("workers have no target group")
	}
	// Deterministic from the seed, different across seeds.
	if New(Options{}).Services()[3] != svcs[3] {
		t.Errorf("fleet is not deterministic")
	}
	if New(Options{Seed: 2}).Truth(svcs[0], SeriesCPUSeconds, testNow.Add(-time.Hour), testNow) ==
		New(Options{Seed: 1, Now: func() time.Time { return testNow }}).Truth(svcs[0], SeriesCPUSeconds, testNow.Add(-time.Hour), testNow) {
		t.Errorf("seed does not change the data")
	}
}

func TestTruthIsSumOfMinutes(t *testing.T) {
	s := New(Options{Now: func() time.Time { return testNow }})
	from := testNow.Add(-24 * time.Hour).Truncate(time.Minute)
	to := testNow.Truncate(time.Minute)
	zeroMinutes, stretch := 0, 0
	for i, svc := range s.Services() {
		var cpu, mem, tasks, tx, req float64
		run := 0
		for m := from.Unix() / 60; m < to.Unix()/60; m++ {
			d := s.minute(i, m)
			cpu += float64(d.tasks*int64(svc.TaskCPU)) * 60 / 1024
			mem += float64(d.tasks*int64(svc.TaskMemoryMiB)) / 1024 / 60
			tasks += float64(d.tasks)
			tx += float64(d.txRate) * 60
			req += float64(d.requests)
			if d.tasks == 0 {
				zeroMinutes++
				run++
				stretch = max(stretch, run)
			} else {
				run = 0
			}
			if d.tasks > 6 || d.cpuUsed > d.tasks*int64(svc.TaskCPU) || d.memUsed >= d.tasks*int64(svc.TaskMemoryMiB) && d.tasks > 0 {
				t.Fatalf("%s minute %d out of range: %+v", svc.Name, m, d)
			}
		}
		for series, want := range map[string]float64{SeriesCPUSeconds: cpu, SeriesMemoryGBHours: mem, SeriesRunningTasks: tasks, SeriesEgressBytes: tx, SeriesRequests: req} {
			if got := s.Truth(svc, series, from, to); !near(got, want) {
				t.Errorf("%s %s: Truth %v, sum of minutes %v", svc.Name, series, got, want)
			}
		}
	}
	if zeroMinutes == 0 || stretch < 60 {
		t.Errorf("want zero-task minutes and a long zero stretch; got %d minutes, longest run %d", zeroMinutes, stretch)
	}
	// Minutes that have not ended do not count; from/to truncate to the minute.
	svc := s.Services()[0]
	if a, b := s.Truth(svc, SeriesRunningTasks, to, to.Add(time.Hour)), s.Truth(svc, SeriesRunningTasks, to, to); a != 0 || b != 0 {
		t.Errorf("future minutes count: %v %v", a, b)
	}
	if a, b := s.Truth(svc, SeriesRunningTasks, from.Add(10*time.Second), to.Add(-50*time.Second)), s.Truth(svc, SeriesRunningTasks, from, to.Add(-time.Minute)); a != b {
		t.Errorf("truncation: %v != %v", a, b)
	}
	var proj float64
	for _, sv := range s.Services() {
		if sv.Project == "proj_002" {
			proj += s.Truth(sv, SeriesCPUSeconds, from, to)
		}
	}
	if got := s.ProjectTruth("proj_002", SeriesCPUSeconds, from, to); got != proj || got == 0 {
		t.Errorf("ProjectTruth %v, want %v", got, proj)
	}
}

// seriesMetrics maps each series to the metric and stat a collector reads and the conversion of
// a 1-minute value to the series' unit.
var seriesMetrics = []struct {
	series, metric, stat string
	conv                 func(float64) float64
}{
	{SeriesCPUSeconds, "CpuReserved", "Sum", func(v float64) float64 { return v * 60 / 1024 }},
	{SeriesCPUUsedSeconds, "CpuUtilized", "Sum", func(v float64) float64 { return v * 60 / 1024 }},
	{SeriesMemoryGBHours, "MemoryReserved", "Sum", func(v float64) float64 { return v / 1024 / 60 }},
	{SeriesMemoryUsedGBHours, "MemoryUtilized", "Sum", func(v float64) float64 { return v / 1024 / 60 }},
	{SeriesRunningTasks, "RunningTaskCount", "Average", func(v float64) float64 { return v }},
	{SeriesEgressBytes, "NetworkTxBytes", "Sum", func(v float64) float64 { return v * 60 }},
	{SeriesRequests, "RequestCount", "Sum", func(v float64) float64 { return v }},
}

func TestGetMetricDataDayEqualsTruth(t *testing.T) {
	f := newFixture(t, Options{})
	from := testNow.Add(-24 * time.Hour).Truncate(time.Hour)
	to := testNow.Truncate(time.Hour)
	for _, svc := range f.sim.Services()[:2] { // a web service with an ALB and the worker with zero stretches
		var qs []cwtypes.MetricDataQuery
		for i, sm := range seriesMetrics {
			qs = append(qs, metricQuery(string(rune('a'+i)), svc, sm.metric, sm.stat, 60))
		}
		for _, scan := range []cwtypes.ScanBy{"", cwtypes.ScanByTimestampAscending, cwtypes.ScanByTimestampDescending} {
			got, _ := fetchAll(t, f.cw, &cloudwatch.GetMetricDataInput{
				StartTime: aws.Time(from), EndTime: aws.Time(to), MetricDataQueries: qs, ScanBy: scan,
			})
			for i, sm := range seriesMetrics {
				pts := got[string(rune('a'+i))]
				var sum float64
				for j, p := range pts {
					sum += sm.conv(p.v)
					if p.t.Before(from) || !p.t.Before(to) || p.t.Unix()%60 != 0 {
						t.Fatalf("%s %s: timestamp %s outside [%s, %s)", svc.Name, sm.metric, p.t, from, to)
					}
					if j > 0 {
						asc := p.t.After(pts[j-1].t)
						if asc != (scan == cwtypes.ScanByTimestampAscending) {
							t.Fatalf("%s %s scan %q: wrong order at %d", svc.Name, sm.metric, scan, j)
						}
					}
				}
				want := f.sim.Truth(svc, sm.series, from, to)
				if !near(sum, want) {
					t.Errorf("%s %s scan %q: sum %v, Truth %v", svc.Name, sm.series, scan, sum, want)
				}
				if sm.metric == "RunningTaskCount" && len(pts) != 1440 {
					t.Errorf("%s: RunningTaskCount has %d points, want one per minute", svc.Name, len(pts))
				}
				if sm.metric == "CpuReserved" && svc.Deployment == "worker" && len(pts) >= 1440 {
					t.Errorf("%s: CpuReserved should be missing for minutes without tasks", svc.Name)
				}
			}
		}
	}
}

func TestGetMetricDataPagination(t *testing.T) {
	f := newFixture(t, Options{Projects: 100, ServicesPerProject: 3})
	svcs := f.sim.Services()
	if len(svcs) != 301 {
		t.Fatalf("%d services", len(svcs))
	}
	from := testNow.Add(-24 * time.Hour).Truncate(time.Minute)
	to := testNow.Truncate(time.Minute)
	var qs []cwtypes.MetricDataQuery
	for i := range 80 { // 80 × 1440 = 115,200 running-task points > 100,800
		qs = append(qs, metricQuery(idFor(i), svcs[i], "RunningTaskCount", "Average", 60))
	}
	got, pages := fetchAll(t, f.cw, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(from), EndTime: aws.Time(to), MetricDataQueries: qs})
	if pages != 2 {
		t.Errorf("%d pages, want 2", pages)
	}
	for i := range 80 {
		pts := got[idFor(i)]
		if len(pts) != 1440 {
			t.Fatalf("query %d: %d points, want 1440", i, len(pts))
		}
		if s, want := sumPoints(pts), f.sim.Truth(svcs[i], SeriesRunningTasks, from, to); !near(s, want) {
			t.Errorf("query %d: %v, want %v", i, s, want)
		}
	}

	// PartialData on the page that stops inside a query, Complete when it ends; MaxDatapoints.
	out, err := f.cw.GetMetricData(context.Background(), &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(from), EndTime: aws.Time(to), MetricDataQueries: qs[:2], MaxDatapoints: aws.Int32(1000),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.MetricDataResults) != 1 || out.MetricDataResults[0].StatusCode != cwtypes.StatusCodePartialData ||
		len(out.MetricDataResults[0].Values) != 1000 || out.NextToken == nil {
		t.Fatalf("first page: %d results, status %v, %d values", len(out.MetricDataResults), out.MetricDataResults[0].StatusCode, len(out.MetricDataResults[0].Values))
	}
	got, pages = fetchAll(t, f.cw, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(from), EndTime: aws.Time(to), MetricDataQueries: qs[:2], MaxDatapoints: aws.Int32(1000), ScanBy: cwtypes.ScanByTimestampAscending})
	if pages != 3 || len(got[idFor(0)]) != 1440 || len(got[idFor(1)]) != 1440 {
		t.Errorf("MaxDatapoints 1000: %d pages, %d+%d points", pages, len(got[idFor(0)]), len(got[idFor(1)]))
	}

	// 501 queries are refused, naming the limit.
	var many []cwtypes.MetricDataQuery
	for i := range 501 {
		many = append(many, metricQuery(idFor(i), svcs[i%len(svcs)], "CpuReserved", "Sum", 60))
	}
	_, err = f.cw.GetMetricData(context.Background(), &cloudwatch.GetMetricDataInput{StartTime: aws.Time(from), EndTime: aws.Time(to), MetricDataQueries: many})
	if apiCode(err) != "ValidationError" || !strings.Contains(err.Error(), "500") {
		t.Errorf("501 queries: %v", err)
	}
	// 500 queries work.
	_, pages = fetchAll(t, f.cw, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(to.Add(-time.Hour)), EndTime: aws.Time(to), MetricDataQueries: many[:500]})
	if pages != 1 {
		t.Errorf("500 queries × 60 minutes: %d pages", pages)
	}
}

func idFor(i int) string { return "q" + strconv.Itoa(i) }

func TestCoarsePeriodsAndRetention(t *testing.T) {
	f := newFixture(t, Options{})
	svc := f.sim.Services()[0]
	day := testNow.Truncate(24 * time.Hour).Add(-24 * time.Hour)
	query := func(from, to time.Time, metric, stat string, period int32) []point {
		got, _ := fetchAll(t, f.cw, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(from), EndTime: aws.Time(to),
			MetricDataQueries: []cwtypes.MetricDataQuery{metricQuery("m", svc, metric, stat, period)}})
		return got["m"]
	}
	fine := query(day, day.Add(24*time.Hour), "CpuReserved", "Sum", 60)
	for _, period := range []int32{300, 3600, 86400} {
		coarse := query(day, day.Add(24*time.Hour), "CpuReserved", "Sum", period)
		if len(coarse) != 86400/int(period) || !near(sumPoints(coarse), sumPoints(fine)) {
			t.Errorf("period %d: %d points, sum %v, want %v", period, len(coarse), sumPoints(coarse), sumPoints(fine))
		}
	}
	// Average of RunningTaskCount over an hour is the mean of the minute counts.
	minutes := query(day, day.Add(time.Hour), "RunningTaskCount", "Average", 60)
	hour := query(day, day.Add(time.Hour), "RunningTaskCount", "Average", 3600)
	if len(hour) != 1 || !near(hour[0].v, sumPoints(minutes)/60) || !hour[0].t.Equal(day) {
		t.Errorf("hourly average %v, want %v", hour, sumPoints(minutes)/60)
	}
	maxP := query(day, day.Add(time.Hour), "RunningTaskCount", "Maximum", 3600)
	cnt := query(day, day.Add(time.Hour), "RunningTaskCount", "SampleCount", 3600)
	if len(maxP) != 1 || maxP[0].v < hour[0].v || len(cnt) != 1 || cnt[0].v != 60 {
		t.Errorf("Maximum %v SampleCount %v", maxP, cnt)
	}

	// Retention: 1-minute data 15 days, 5-minute 63 days, 1-hour 455 days.
	for _, c := range []struct {
		name   string
		age    time.Duration
		period int32
		want   bool
	}{
		{"1m at 14d", 14 * 24 * time.Hour, 60, true},
		{"1m at 20d", 20 * 24 * time.Hour, 60, false},
		{"5m at 20d", 20 * 24 * time.Hour, 300, true},
		{"5m at 70d", 70 * 24 * time.Hour, 300, false},
		{"1h at 70d", 70 * 24 * time.Hour, 3600, true},
		{"1h at 500d", 500 * 24 * time.Hour, 3600, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			from := testNow.Add(-c.age).Truncate(24 * time.Hour)
			pts := query(from, from.Add(6*time.Hour), "RunningTaskCount", "Sum", c.period)
			if (len(pts) > 0) != c.want {
				t.Errorf("%d points", len(pts))
			}
		})
	}
	// A range across the 15-day edge at 1-minute period returns only the young part.
	edge := testNow.Add(-15 * 24 * time.Hour)
	pts := query(edge.Add(-time.Hour), edge.Add(time.Hour), "RunningTaskCount", "Sum", 60)
	if len(pts) < 59 || len(pts) > 61 {
		t.Errorf("across the retention edge: %d points, want about 60", len(pts))
	}

	// Unknown metric or dimensions: no datapoints, Complete. Bad period: error.
	out, err := f.cw.GetMetricData(context.Background(), &cloudwatch.GetMetricDataInput{StartTime: aws.Time(day), EndTime: aws.Time(day.Add(time.Hour)),
		MetricDataQueries: []cwtypes.MetricDataQuery{metricQuery("x", Service{Cluster: "nope", Name: "nope"}, "CpuReserved", "Sum", 60)}})
	if err != nil || len(out.MetricDataResults) != 1 || len(out.MetricDataResults[0].Values) != 0 || out.MetricDataResults[0].StatusCode != cwtypes.StatusCodeComplete {
		t.Errorf("unknown metric: %v %+v", err, out)
	}
	_, err = f.cw.GetMetricData(context.Background(), &cloudwatch.GetMetricDataInput{StartTime: aws.Time(day), EndTime: aws.Time(day.Add(time.Hour)),
		MetricDataQueries: []cwtypes.MetricDataQuery{metricQuery("x", svc, "CpuReserved", "Sum", 90)}})
	if apiCode(err) != "InvalidParameterValue" {
		t.Errorf("period 90: %v", err)
	}
}

func TestLateAndPartialData(t *testing.T) {
	f := newFixture(t, Options{})
	svc := f.sim.Services()[0]
	from := testNow.Add(-time.Hour).Truncate(time.Minute)
	get := func() map[int64]float64 {
		got, _ := fetchAll(t, f.cw, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(from), EndTime: aws.Time(testNow.Add(time.Hour)),
			MetricDataQueries: []cwtypes.MetricDataQuery{metricQuery("r", svc, "RunningTaskCount", "Sum", 60)}})
		m := map[int64]float64{}
		for _, p := range got["r"] {
			m[p.t.Unix()] = p.v
		}
		return m
	}
	full := get()
	last := testNow.Truncate(time.Minute).Add(-time.Minute).Unix() // the newest ended minute
	if len(full) != 60 {
		t.Fatalf("%d minutes, want the 60 ended ones", len(full))
	}
	if _, ok := full[last]; !ok {
		t.Fatalf("newest ended minute missing")
	}

	f.sim.SetFaults(Faults{LateBy: 5 * time.Minute})
	late := get()
	if len(late) != 55 {
		t.Errorf("LateBy 5m: %d minutes, want 55", len(late))
	}

	f.sim.SetFaults(Faults{Partial: 10 * time.Minute})
	part := get()
	for ts, v := range full {
		age := testNow.Sub(time.Unix(ts+60, 0))
		want := v
		if age < 10*time.Minute {
			want = v / 2
		}
		if part[ts] != want {
			t.Errorf("Partial: minute %s (age %s) = %v, want %v", time.Unix(ts, 0).UTC(), age, part[ts], want)
		}
	}
	// Later, the same minutes read in full; Truth never changed.
	f.clock.Set(testNow.Add(15 * time.Minute))
	again := get()
	for ts, v := range full {
		if again[ts] != v {
			t.Errorf("after Partial window: minute %d = %v, want %v", ts, again[ts], v)
		}
	}
	f.sim.SetFaults(Faults{})
	if got, want := f.sim.Truth(svc, SeriesRunningTasks, from, testNow), sumPoints(toPoints(full)); got != want {
		t.Errorf("Truth %v, want %v", got, want)
	}
}

func toPoints(m map[int64]float64) []point {
	var ps []point
	for ts, v := range m {
		ps = append(ps, point{time.Unix(ts, 0), v})
	}
	return ps
}

func TestListMetrics(t *testing.T) {
	f := newFixture(t, Options{Projects: 100, ServicesPerProject: 3})
	svc := f.sim.Services()[0]
	_, tg, _ := strings.Cut(svc.TargetGroupARN, ":targetgroup/")
	out, err := f.cw.ListMetrics(context.Background(), &cloudwatch.ListMetricsInput{
		Namespace:  aws.String(nsALB),
		MetricName: aws.String("RequestCount"),
		Dimensions: []cwtypes.DimensionFilter{{Name: aws.String("TargetGroup"), Value: aws.String("targetgroup/" + tg)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Metrics) != 1 {
		t.Fatalf("%d metrics", len(out.Metrics))
	}
	var lb string
	for _, d := range out.Metrics[0].Dimensions {
		if aws.ToString(d.Name) == "LoadBalancer" {
			lb = aws.ToString(d.Value)
		}
	}
	if lb != svc.LoadBalancer {
		t.Errorf("LoadBalancer %q, want %q", lb, svc.LoadBalancer)
	}

	// Paginated at 500: every Container Insights metric exactly once.
	seen := map[string]bool{}
	pages := 0
	p := cloudwatch.NewListMetricsPaginator(f.cw, &cloudwatch.ListMetricsInput{
		Namespace:  aws.String(nsContainerInsights),
		Dimensions: []cwtypes.DimensionFilter{{Name: aws.String("ServiceName")}},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(page.Metrics) > 500 {
			t.Fatalf("page of %d", len(page.Metrics))
		}
		for _, m := range page.Metrics {
			k := aws.ToString(m.MetricName) + aws.ToString(m.Dimensions[1].Value)
			if seen[k] {
				t.Fatalf("%s listed twice", k)
			}
			seen[k] = true
		}
	}
	if len(seen) != 301*6 || pages != 4 {
		t.Errorf("%d metrics in %d pages, want %d in 4", len(seen), pages, 301*6)
	}
}

func TestECS(t *testing.T) {
	f := newFixture(t, Options{Projects: 30, ServicesPerProject: 3})
	ctx := context.Background()
	cl, err := f.ecs.ListClusters(ctx, &ecs.ListClustersInput{})
	if err != nil || len(cl.ClusterArns) != 2 || cl.ClusterArns[0] != "arn:aws:ecs:us-east-1:123456789012:cluster/cygni-prod" {
		t.Fatalf("ListClusters: %v %v", err, cl)
	}
	var arns []string
	pages := 0
	p := ecs.NewListServicesPaginator(f.ecs, &ecs.ListServicesInput{Cluster: aws.String("cygni-prod"), MaxResults: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		arns = append(arns, page.ServiceArns...)
	}
	want := 0
	for _, s := range f.sim.Services() {
		if s.Cluster == "cygni-prod" {
			if want < len(arns) && arns[want] != s.ARN {
				t.Errorf("service %d: %s, want %s", want, arns[want], s.ARN)
			}
			want++
		}
	}
	if len(arns) != want || pages != (want+1)/2 {
		t.Errorf("%d services in %d pages, want %d", len(arns), pages, want)
	}

	_, err = f.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("cygni-prod"), Services: arns[:11]})
	if apiCode(err) != "InvalidParameterException" {
		t.Errorf("11 services: %v", err)
	}
	_, err = f.ecs.ListServices(ctx, &ecs.ListServicesInput{Cluster: aws.String("nope")})
	if apiCode(err) != "ClusterNotFoundException" {
		t.Errorf("unknown cluster: %v", err)
	}

	d, err := f.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("arn:aws:ecs:us-east-1:123456789012:cluster/cygni-prod"), Services: append(arns[:2:2], "ghost")})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Services) != 2 || len(d.Failures) != 1 || aws.ToString(d.Failures[0].Reason) != "MISSING" {
		t.Fatalf("describe: %+v", d)
	}
	web := d.Services[0]
	if len(web.Tags) != 0 || aws.ToString(web.Status) != "ACTIVE" || web.LaunchType != "FARGATE" ||
		len(web.LoadBalancers) != 1 || aws.ToString(web.LoadBalancers[0].TargetGroupArn) != f.sim.Services()[0].TargetGroupARN {
		t.Errorf("web service: %+v", web)
	}
	d, err = f.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("cygni-prod"), Services: arns[:1], Include: []ecstypes.ServiceField{ecstypes.ServiceFieldTags}})
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string]string{}
	for _, tg := range d.Services[0].Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if tags["cygni:project"] != "proj_001" || tags["cygni:deployment"] != "web" {
		t.Errorf("tags %v", tags)
	}

	td, err := f.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: web.TaskDefinition})
	if err != nil || aws.ToString(td.TaskDefinition.Cpu) != strconv.Itoa(f.sim.Services()[0].TaskCPU) {
		t.Errorf("DescribeTaskDefinition: %v %+v", err, td)
	}
}

func TestFaults(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	svc := f.sim.Services()[0]
	in := &cloudwatch.GetMetricDataInput{StartTime: aws.Time(testNow.Add(-time.Hour)), EndTime: aws.Time(testNow),
		MetricDataQueries: []cwtypes.MetricDataQuery{metricQuery("a", svc, "CpuReserved", "Sum", 60)}}
	cwOnce := f.cloudWatch("AKIDSIMULATED", "simulated-secret", noRetry())
	ecsOnce := f.ecsClient("AKIDSIMULATED", "simulated-secret", noRetry())
	cases := []struct {
		name   string
		faults Faults
		call   func() error
		code   string
	}{
		{"cloudwatch throttle", Faults{ThrottleCloudWatch: 1}, func() error { _, err := cwOnce.GetMetricData(ctx, in); return err }, "Throttling"},
		{"cloudwatch 500", Faults{FailCloudWatch: 1}, func() error { _, err := cwOnce.GetMetricData(ctx, in); return err }, "InternalFailure"},
		{"ecs throttle", Faults{ThrottleECS: 1}, func() error { _, err := ecsOnce.ListClusters(ctx, &ecs.ListClustersInput{}); return err }, "ThrottlingException"},
		{"ecs 500", Faults{FailECS: 1}, func() error { _, err := ecsOnce.ListClusters(ctx, &ecs.ListClustersInput{}); return err }, "ServerException"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.sim.SetFaults(c.faults)
			if err := c.call(); apiCode(err) != c.code {
				t.Errorf("got %v, want code %s", err, c.code)
			}
			if err := c.call(); err != nil {
				t.Errorf("second call: %v", err)
			}
		})
	}

	// The standard retryer rides over throttling and 500s.
	before := f.sim.Calls()["GetMetricData"]
	f.sim.SetFaults(Faults{ThrottleCloudWatch: 1, FailCloudWatch: 1, ThrottleECS: 2})
	if _, err := f.cw.GetMetricData(ctx, in); err != nil {
		t.Errorf("GetMetricData with retries: %v", err)
	}
	if _, err := f.ecs.ListClusters(ctx, &ecs.ListClustersInput{}); err != nil {
		t.Errorf("ListClusters with retries: %v", err)
	}
	if got := f.sim.Calls()["GetMetricData"] - before; got != 3 {
		t.Errorf("%d GetMetricData calls, want 3 (2 failed + 1)", got)
	}
}

func TestFaultsDefaultRetryer(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	c := f.cloudWatch("AKIDSIMULATED", "simulated-secret", nil) // the SDK's own default retryer and backoff
	f.sim.SetFaults(Faults{ThrottleCloudWatch: 1})
	_, err := c.ListMetrics(context.Background(), &cloudwatch.ListMetricsInput{Namespace: aws.String(nsALB)})
	if err != nil {
		t.Fatal(err)
	}
	if n := f.sim.Calls()["ListMetrics"]; n != 2 {
		t.Errorf("%d calls, want 2", n)
	}
}

func TestAuth(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	in := &cloudwatch.ListMetricsInput{Namespace: aws.String(nsALB)}
	if _, err := f.cloudWatch("AKIDWRONG", "simulated-secret", noRetry()).ListMetrics(ctx, in); apiCode(err) != "InvalidClientTokenId" {
		t.Errorf("bad key: %v", err)
	}
	if _, err := f.cloudWatch("AKIDSIMULATED", "wrong", noRetry()).ListMetrics(ctx, in); apiCode(err) != "SignatureDoesNotMatch" {
		t.Errorf("bad secret: %v", err)
	}
	if _, err := f.ecsClient("AKIDWRONG", "simulated-secret", noRetry()).ListClusters(ctx, &ecs.ListClustersInput{}); apiCode(err) != "UnrecognizedClientException" {
		t.Errorf("ECS bad key: %v", err)
	}
	if _, err := f.ecsClient("AKIDSIMULATED", "wrong", noRetry()).ListClusters(ctx, &ecs.ListClustersInput{}); apiCode(err) != "InvalidSignatureException" {
		t.Errorf("ECS bad secret: %v", err)
	}
	resp, err := http.Post(f.url+cloudWatchPathPrefix+"ListMetrics", "application/cbor", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Amzn-Query-Error") != "MissingAuthenticationToken;Sender" {
		t.Errorf("unsigned: %d %v", resp.StatusCode, resp.Header)
	}
	// Custom credentials.
	g := newFixture(t, Options{AccessKeyID: "AKIDCUSTOM", SecretAccessKey: "s3cret"})
	if _, err := g.cloudWatch("AKIDCUSTOM", "s3cret", noRetry()).ListMetrics(ctx, in); err != nil {
		t.Errorf("custom credentials: %v", err)
	}
}

func TestControlRoutes(t *testing.T) {
	f := newFixture(t, Options{})
	getJSON := func(path string, v any) int {
		t.Helper()
		resp, err := http.Get(f.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if v != nil {
			if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
				t.Fatalf("decode %s: %v", path, err)
			}
		}
		return resp.StatusCode
	}
	var svcs []Service
	if getJSON("/_sim/services", &svcs); len(svcs) != 9 || svcs[0] != f.sim.Services()[0] {
		t.Errorf("services: %+v", svcs)
	}

	from := testNow.Add(-24 * time.Hour).Truncate(time.Hour)
	to := testNow.Truncate(time.Hour)
	q := url.Values{"project": {"proj_001"}, "series": {SeriesCPUSeconds}, "from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}
	var tv struct{ Value float64 }
	if code := getJSON("/_sim/truth?"+q.Encode(), &tv); code != 200 || tv.Value != f.sim.ProjectTruth("proj_001", SeriesCPUSeconds, from, to) || tv.Value == 0 {
		t.Errorf("project truth: %d %v", code, tv.Value)
	}
	q.Set("deployment", "worker")
	if code := getJSON("/_sim/truth?"+q.Encode(), &tv); code != 200 || tv.Value != f.sim.Truth(f.sim.Services()[1], SeriesCPUSeconds, from, to) {
		t.Errorf("deployment truth: %d %v", code, tv.Value)
	}
	for name, bad := range map[string]url.Values{
		"no project":   {"series": {SeriesCPUSeconds}, "from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}},
		"bad series":   {"project": {"proj_001"}, "series": {"cpu"}, "from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}},
		"bad from":     {"project": {"proj_001"}, "series": {SeriesCPUSeconds}, "from": {"yesterday"}, "to": {to.Format(time.RFC3339)}},
		"unknown proj": {"project": {"proj_999"}, "series": {SeriesCPUSeconds}, "from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}},
	} {
		var e struct {
			Error struct{ Code, Message string }
		}
		if code := getJSON("/_sim/truth?"+bad.Encode(), &e); code < 400 || e.Error.Code == "" {
			t.Errorf("%s: %d %+v", name, code, e)
		}
	}

	resp, err := http.Post(f.url+"/_sim/faults", "application/json", strings.NewReader(`{"ThrottleECS": 1, "LateBy": "5m", "Partial": "90s"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := f.sim.currentFaults(); resp.StatusCode != 200 || got != (Faults{ThrottleECS: 1, LateBy: 5 * time.Minute, Partial: 90 * time.Second}) {
		t.Errorf("faults: %d %+v", resp.StatusCode, got)
	}
	resp, err = http.Post(f.url+"/_sim/faults", "application/json", strings.NewReader(`{"LateBy": "soon"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad duration: %d", resp.StatusCode)
	}
	if _, err := f.ecs.ListClusters(context.Background(), &ecs.ListClustersInput{}); err != nil {
		t.Fatal(err)
	}
	var calls map[string]int
	if getJSON("/_sim/calls", &calls); calls["ListClusters"] != 2 {
		t.Errorf("calls %v, want 2 ListClusters (one throttled)", calls)
	}
}

// BenchmarkGetMetricData measures one GetMetricData call of 500 queries × 60 minutes through
// the handler (CBOR decode, data model, CBOR encode), without the network:
//
//	go test -run '^$' -bench GetMetricData -benchmem ./simaws
func BenchmarkGetMetricData(b *testing.B) {
	s := New(Options{Projects: 100, ServicesPerProject: 3, Now: func() time.Time { return testNow }})
	svcs := s.Services()
	metrics := []string{"CpuReserved", "CpuUtilized", "MemoryReserved", "MemoryUtilized", "NetworkTxBytes", "RunningTaskCount"}
	queries := make(cbor.List, 500)
	for i := range queries {
		svc := svcs[i%len(svcs)]
		queries[i] = cbor.Map{
			"Id": cbor.String(idFor(i)),
			"MetricStat": cbor.Map{
				"Metric": cbor.Map{
					"Namespace":  cbor.String(nsContainerInsights),
					"MetricName": cbor.String(metrics[i%len(metrics)]),
					"Dimensions": cbor.List{
						cbor.Map{"Name": cbor.String("ClusterName"), "Value": cbor.String(svc.Cluster)},
						cbor.Map{"Name": cbor.String("ServiceName"), "Value": cbor.String(svc.Name)},
					},
				},
				"Period": cbor.Uint(60),
				"Stat":   cbor.String("Sum"),
			},
		}
	}
	end := testNow.Truncate(time.Hour)
	body := cbor.Encode(cbor.Map{
		"MetricDataQueries": queries,
		"StartTime":         &cbor.Tag{ID: 1, Value: cbor.Float64(end.Add(-time.Hour).Unix())},
		"EndTime":           &cbor.Tag{ID: 1, Value: cbor.Float64(end.Unix())},
	})
	b.ReportAllocs()
	for b.Loop() {
		if _, apiErr := s.getMetricData(body); apiErr != nil {
			b.Fatal(apiErr)
		}
	}
	b.ReportMetric(float64(500*60*b.N)/b.Elapsed().Seconds(), "datapoints/s")
}

// TestEnvironmentEndpoint points unmodified clients at the simulator the standard way, as a
// user of `cygni-usage sim-aws` does.
func TestEnvironmentEndpoint(t *testing.T) {
	f := newFixture(t, Options{})
	t.Setenv("AWS_ENDPOINT_URL", f.url)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDSIMULATED")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "simulated-secret")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_PROFILE", "")
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ecs.NewFromConfig(cfg).ListClusters(context.Background(), &ecs.ListClustersInput{}); err != nil {
		t.Errorf("ECS: %v", err)
	}
	if _, err := cloudwatch.NewFromConfig(cfg).ListMetrics(context.Background(), &cloudwatch.ListMetricsInput{}); err != nil {
		t.Errorf("CloudWatch: %v", err)
	}
}

// An oversized service reserves 2 vCPU and 8 GiB per task and uses at most 12 % of the CPU and
// 20 % of the memory in every hour; the others are untouched.
func TestOversized(t *testing.T) {
	now := func() time.Time { return testNow }
	plain := New(Options{Now: now})
	s := New(Options{Now: now, Oversized: []string{"proj_001-web"}})
	svcs := s.Services()
	if svcs[0].TaskCPU != 2048 || svcs[0].TaskMemoryMiB != 8192 {
		t.Fatalf("oversized service is %d CPU / %d MiB, want 2048 / 8192", svcs[0].TaskCPU, svcs[0].TaskMemoryMiB)
	}
	if svcs[1] != plain.Services()[1] {
		t.Errorf("a service not named changed: %+v", svcs[1])
	}
	for h := time.Duration(1); h <= 24; h++ {
		from, to := testNow.Add(-h*time.Hour), testNow.Add(-(h-1)*time.Hour)
		cpu, used := s.Truth(svcs[0], SeriesCPUSeconds, from, to), s.Truth(svcs[0], SeriesCPUUsedSeconds, from, to)
		mem, memUsed := s.Truth(svcs[0], SeriesMemoryGBHours, from, to), s.Truth(svcs[0], SeriesMemoryUsedGBHours, from, to)
		if cpu == 0 {
			continue
		}
		if used > 0.12*cpu || memUsed > 0.2*mem {
			t.Errorf("hour %s: CPU %.1f%%, memory %.1f%% used", from.Format(time.RFC3339), used/cpu*100, memUsed/mem*100)
		}
	}
}

// A spike multiplies the project's tasks in its window: Truth and the CloudWatch answers both
// see it, other projects and minutes do not change. /_sim/spikes adds, lists and clears spikes;
// bad ones are 4xx naming the problem.
func TestSpikes(t *testing.T) {
	f := newFixture(t, Options{})
	from := testNow.Add(-3 * time.Hour).Truncate(time.Hour)
	spikeFrom, spikeTo := from.Add(time.Hour), from.Add(2*time.Hour)
	before := map[string]float64{}
	for _, p := range []string{"proj_001", "proj_002"} {
		for _, w := range [][2]time.Time{{from, spikeFrom}, {spikeFrom, spikeTo}, {spikeTo, testNow}} {
			before[fmt.Sprint(p, w[0])] = f.sim.ProjectTruth(p, SeriesCPUSeconds, w[0], w[1])
		}
	}
	body := fmt.Sprintf(`{"project":"proj_002","factor":5,"from":%q,"to":%q}`, spikeFrom.Format(time.RFC3339), spikeTo.Format(time.RFC3339))
	resp, err := http.Post(f.url+"/_sim/spikes", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(f.sim.Spikes()) != 1 {
		t.Fatalf("POST /_sim/spikes = %d, spikes %+v", resp.StatusCode, f.sim.Spikes())
	}
	for _, p := range []string{"proj_001", "proj_002"} {
		for _, w := range [][2]time.Time{{from, spikeFrom}, {spikeFrom, spikeTo}, {spikeTo, testNow}} {
			want := before[fmt.Sprint(p, w[0])]
			if p == "proj_002" && w[0].Equal(spikeFrom) {
				want *= 5
			}
			if got := f.sim.ProjectTruth(p, SeriesCPUSeconds, w[0], w[1]); got != want || want == 0 {
				t.Errorf("%s %s..%s: truth %v, want %v", p, w[0].Format("15:04"), w[1].Format("15:04"), got, want)
			}
		}
	}
	// The CloudWatch answer for the spiked hour equals the spiked truth.
	var cw float64
	for _, svc := range f.sim.Services() {
		if svc.Project != "proj_002" {
			continue
		}
		out, err := f.cw.GetMetricData(context.Background(), &cloudwatch.GetMetricDataInput{
			StartTime: aws.Time(spikeFrom), EndTime: aws.Time(spikeTo),
			MetricDataQueries: []cwtypes.MetricDataQuery{{Id: aws.String("q"), MetricStat: &cwtypes.MetricStat{
				Metric: &cwtypes.Metric{Namespace: aws.String(nsContainerInsights), MetricName: aws.String("CpuReserved"),
					Dimensions: []cwtypes.Dimension{{Name: aws.String("ClusterName"), Value: aws.String(svc.Cluster)}, {Name: aws.String("ServiceName"), Value: aws.String(svc.Name)}}},
				Period: aws.Int32(3600), Stat: aws.String("Sum")}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range out.MetricDataResults[0].Values {
			cw += v * 60 / 1024
		}
	}
	if want := before[fmt.Sprint("proj_002", spikeFrom)] * 5; cw != want {
		t.Fatalf("CloudWatch CpuReserved in the spike = %v vCPU-s, truth %v", cw, want)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"project":"proj_002","factor":1}`, "factor 1; want 2..100"},
		{`{"project":"proj_nope","factor":3}`, "no service of project"},
		{`{"project":"proj_002","factor":3,"from":"soon"}`, "neither an RFC 3339 time nor a duration"},
		{`{"project":"proj_002","factor":3,"colour":"red"}`, "unknown field"},
	} {
		resp, err := http.Post(f.url+"/_sim/spikes", "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 400 || resp.StatusCode > 499 || !strings.Contains(string(b), tc.want) {
			t.Errorf("POST %s = %d %s; want a 4xx with %q", tc.body, resp.StatusCode, b, tc.want)
		}
	}
	req, _ := http.NewRequest(http.MethodDelete, f.url+"/_sim/spikes", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 || len(f.sim.Spikes()) != 0 {
		t.Fatalf("DELETE /_sim/spikes: %v, spikes %+v", err, f.sim.Spikes())
	}
}

func TestParseSpike(t *testing.T) {
	now := time.Date(2026, 11, 18, 9, 30, 45, 0, time.UTC)
	sp, err := ParseSpike("project=proj_001,factor=8,from=-1h,for=3h", now)
	if err != nil || sp.Project != "proj_001" || sp.Factor != 8 || !sp.From.Equal(now.Truncate(time.Minute).Add(-time.Hour)) || sp.To.Sub(sp.From) != 3*time.Hour {
		t.Fatalf("ParseSpike = %+v, %v", sp, err)
	}
	for _, bad := range []string{"project=proj_001", "project=proj_001,factor=x", "project=proj_001,factor=4,size=2", "factor=4"} {
		if _, err := ParseSpike(bad, now); err == nil {
			t.Errorf("ParseSpike(%q) accepted", bad)
		}
	}
}
