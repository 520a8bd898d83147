package collector

import (
	"context"
	"log/slog"
	"math"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/cygni/usage/simaws"
	"github.com/cygni/usage/tsdb"
)

// testNow is the simulated "now" of the tests: a whole minute.
var testNow = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a simulated AWS endpoint on loopback, real SDK clients pointed at it, and a real TSDB.
type env struct {
	sim     *simaws.Sim
	clock   *clock
	url     string
	db      *tsdb.DB
	dataDir string
	cw      *cloudwatch.Client
	ecs     *ecs.Client
	set     *metrics.Set
}

// noBackoff keeps the SDK's standard retry decisions but not its sleeps, to keep tests fast.
type noBackoff struct{}

func (noBackoff) BackoffDelay(int, error) (time.Duration, error) { return 0, nil }

func newEnv(t testing.TB, so simaws.Options) *env {
	t.Helper()
	e := &env{clock: &clock{t: testNow}, dataDir: t.TempDir(), set: metrics.NewSet()}
	so.Now = e.clock.Now
	e.sim = simaws.New(so)
	srv := httptest.NewServer(e.sim.Handler())
	t.Cleanup(srv.Close)
	e.url = srv.URL
	e.cw, e.ecs = clients(e.url, "AKIDSIMULATED", "simulated-secret")
	e.openDB(t)
	return e
}

func clients(url, akid, secret string) (*cloudwatch.Client, *ecs.Client) {
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(akid, secret, ""),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.Backoff = noBackoff{} })
		},
	}
	return cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) { o.BaseEndpoint = aws.String(url) }),
		ecs.NewFromConfig(cfg, func(o *ecs.Options) { o.BaseEndpoint = aws.String(url) })
}

func (e *env) openDB(t testing.TB) {
	t.Helper()
	db, err := tsdb.Open(nil, nil, tsdb.Options{Dir: e.dataDir + "/tsdb"})
	if err != nil {
		t.Fatal(err)
	}
	e.db = db
	t.Cleanup(func() { _ = db.Close() })
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// collector builds a Collector over the env; mod adjusts the options.
func (e *env) collector(t testing.TB, mod func(*Options)) *Collector {
	t.Helper()
	o := Options{
		CloudWatch: e.cw, ECS: e.ecs, Storage: e.db, Region: "us-east-1", DataDir: e.dataDir,
		Metrics: e.set, Backfill: 24 * time.Hour, Now: e.clock.Now,
		RetryInitial: time.Millisecond, RetryMaxElapsed: 5 * time.Second,
	}
	if mod != nil {
		mod(&o)
	}
	c, err := New(testLogger(t), nil, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// stored sums the samples of one series whose timestamps lie in (from, to] and whose labels
// match, i.e. the usage of the periods that start in [from, to).
func stored(t testing.TB, db *tsdb.DB, name string, from, to time.Time, match ...*labels.Matcher) float64 {
	t.Helper()
	q, err := db.Querier(from.UnixMilli()+1, to.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ms := append([]*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, name)}, match...)
	ss := q.Select(context.Background(), false, nil, ms...)
	var sum float64
	var it chunkenc.Iterator
	for ss.Next() {
		it = ss.At().Iterator(it)
		for it.Next() == chunkenc.ValFloat {
			_, v := it.At()
			sum += v
		}
	}
	if err := ss.Err(); err != nil {
		t.Fatal(err)
	}
	return sum
}

func eq(name, value string) *labels.Matcher {
	return labels.MustNewMatcher(labels.MatchEqual, name, value)
}

// assertClose fails unless got equals want within a relative error of 1e-9.
func assertClose(t testing.TB, what string, got, want float64) {
	t.Helper()
	if got == want {
		return
	}
	if d := math.Abs(got-want) / math.Max(math.Abs(want), 1e-300); d > 1e-9 {
		t.Errorf("%s: stored %v, truth %v (relative error %.3g)", what, got, want, d)
	}
}

// assertProjectsExact compares every project's and the untagged services' sums with the truth.
func (e *env) assertProjectsExact(t testing.TB, from, to time.Time) {
	t.Helper()
	projects := map[string]bool{}
	for _, s := range e.sim.Services() {
		if s.Project != "" {
			projects[s.Project] = true
		}
	}
	for _, name := range allSeries {
		for p := range projects {
			want := e.sim.ProjectTruth(p, name, from, to)
			got := stored(t, e.db, name, from, to, eq("project", p))
			assertClose(t, p+" "+name, got, want)
		}
		for _, s := range e.sim.Services() {
			if s.Project != "" {
				continue
			}
			want := e.sim.Truth(s, name, from, to)
			got := stored(t, e.db, name, from, to, eq("project", ""), eq("deployment", s.Name))
			assertClose(t, "untagged "+s.Name+" "+name, got, want)
		}
	}
}

var allSeries = []string{
	simaws.SeriesCPUSeconds, simaws.SeriesCPUUsedSeconds, simaws.SeriesMemoryGBHours,
	simaws.SeriesMemoryUsedGBHours, simaws.SeriesRunningTasks, simaws.SeriesEgressBytes,
	simaws.SeriesRequests,
}

func counter(set *metrics.Set, name string) uint64 { return set.GetOrCreateCounter(name).Get() }
