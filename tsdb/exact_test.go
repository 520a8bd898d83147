package tsdb_test

import (
	"context"
	"fmt"
	"math"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/cygni/usage/collector"
	"github.com/cygni/usage/internal/clock/clocktest"
	"github.com/cygni/usage/internal/storetest"
	"github.com/cygni/usage/query"
	"github.com/cygni/usage/rollup"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/simaws"
	"github.com/cygni/usage/tsdb"
)

// modes are the series stores every exactness test here runs against, with the same expected
// numbers: the embedded TSDB, VictoriaMetrics and Prometheus.
var modes = []string{tsdb.ModeEmbedded, storetest.VictoriaMetrics, storetest.Prometheus}

func openMode(t *testing.T, mode string) tsdb.Storage {
	t.Helper()
	opts := tsdb.StorageOptions{Mode: tsdb.ModeEmbedded, Embedded: tsdb.Options{Dir: t.TempDir()}}
	if mode != tsdb.ModeEmbedded {
		s := storetest.Start(t, mode)
		opts = tsdb.StorageOptions{Mode: tsdb.ModeRemote, Remote: tsdb.RemoteOptions{
			Kind: s.Kind, WriteURL: s.WriteURL, ReadURL: s.ReadURL, QueueDir: t.TempDir(),
			MinBackoff: 10 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		}}
	}
	db, err := tsdb.OpenStorage(nil, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

type noBackoff struct{}

func (noBackoff) BackoffDelay(int, error) (time.Duration, error) { return 0, nil }

func awsClients(url string) (*cloudwatch.Client, *ecs.Client) {
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDSIMULATED", "simulated-secret", ""),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.Backoff = noBackoff{} })
		},
	}
	return cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) { o.BaseEndpoint = aws.String(url) }),
		ecs.NewFromConfig(cfg, func(o *ecs.Options) { o.BaseEndpoint = aws.String(url) })
}

// countSamples counts the samples of the series whose name matches re.
func countSamples(t *testing.T, db storage.Queryable, re string) int {
	t.Helper()
	q, err := db.Querier(0, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, re))
	n := 0
	var it chunkenc.Iterator
	for ss.Next() {
		it = ss.At().Iterator(it)
		for it.Next() == chunkenc.ValFloat {
			n++
		}
	}
	if err := ss.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestExactInEveryMode collects six hours of a simulated fleet, with late data corrected by
// later cycles, derives the hourly tier and the hourly cost series, and reads the analytics
// rollup back through the hourly tier: in every mode each project's usage equals the
// simulator's truth, a second Deriver run writes nothing (it reads its own writes back), and
// the rollups of all modes are identical to the last digit.
func TestExactInEveryMode(t *testing.T) {
	ctx := context.Background()
	start := clocktest.Now(t).Truncate(time.Hour).Add(-6 * time.Hour)
	end := start.Add(5 * time.Hour)
	results := map[string]string{}
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			db := openMode(t, mode)
			now := start.Add(-30 * time.Minute)
			clk := func() time.Time { return now }
			sim := simaws.New(simaws.Options{Now: clk})
			sim.SetFaults(simaws.Faults{Partial: 10 * time.Minute}) // late data, corrected later
			srv := httptest.NewServer(sim.Handler())
			defer srv.Close()
			cw, ec := awsClients(srv.URL)
			col, err := collector.New(nil, nil, collector.Options{
				CloudWatch: cw, ECS: ec, Storage: db, Region: "us-east-1", DataDir: t.TempDir(),
				Backfill: time.Hour, Now: clk, RetryInitial: time.Millisecond, RetryMaxElapsed: 5 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			// Cycles every 15 minutes until 30 minutes past the end: every minute is final.
			for ; !now.After(end.Add(30 * time.Minute)); now = now.Add(15 * time.Minute) {
				if err := col.RunOnce(ctx); err != nil {
					t.Fatal(err)
				}
			}
			d, err := rollup.NewDeriver(nil, nil, rollup.DeriverOptions{Storage: db, Now: clk})
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Step(ctx); err != nil {
				t.Fatal(err)
			}
			if from, through := d.Range(); from.After(start) || through.Before(end) {
				t.Fatalf("derived %s..%s, want to cover %s..%s", from, through, start, end)
			}
			derived := countSamples(t, db, ".*:sum1h|"+series.ProjectCostUSD)
			if err := d.Step(ctx); err != nil {
				t.Fatal(err)
			}
			if again := countSamples(t, db, ".*:sum1h|"+series.ProjectCostUSD); again != derived || derived == 0 {
				t.Errorf("hourly and cost samples: %d after the first run, %d after the second (want equal, > 0)", derived, again)
			}
			projects := map[string]bool{}
			var names []string
			for _, s := range sim.Services() {
				if s.Project != "" && !projects[s.Project] {
					projects[s.Project] = true
					names = append(names, s.Project)
				}
			}
			hourly, err := query.New(nil, nil, query.Options{Storage: db, Now: clk, HourlyRange: d.Range})
			if err != nil {
				t.Fatal(err)
			}
			r, err := hourly.Rollup(ctx, names, []time.Time{start, end}, query.ByProject)
			if err != nil {
				t.Fatal(err)
			}
			var out string
			for _, k := range r.Keys() {
				b := r.Rows[k][0]
				for m, name := range map[query.Metric]string{
					query.CPUSeconds: simaws.SeriesCPUSeconds, query.MemoryGBHours: simaws.SeriesMemoryGBHours,
					query.EgressBytes: simaws.SeriesEgressBytes, query.Requests: simaws.SeriesRequests,
					query.CPUUsedSeconds: simaws.SeriesCPUUsedSeconds,
				} {
					got, _ := b.Usage.Decimal(m).Float64()
					want := sim.ProjectTruth(k.Project, name, start, end)
					if math.Abs(got-want) > 1e-6*math.Max(1, math.Abs(want)) {
						t.Errorf("%s %s: %v, truth %v", k.Project, name, got, want)
					}
				}
				out += fmt.Sprintf("%s %v %s\n", k.Project, b.Usage, b.Cost.Total())
			}
			if len(r.Keys()) != len(names) || len(names) == 0 {
				t.Errorf("rollup rows %d, projects %d", len(r.Keys()), len(names))
			}
			results[mode] = out
		})
	}
	for _, mode := range modes[1:] {
		if a, b := results[modes[0]], results[mode]; a != "" && b != "" && a != b {
			t.Errorf("%s and %s differ:\n%s\n%s", modes[0], mode, a, b)
		}
	}
}
