package query

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/cygni/usage/series"
	"github.com/cygni/usage/simaws"
	"github.com/cygni/usage/tsdb"
)

// simNow is the simulator's fixed clock: every minute the fixtures write has ended.
var simNow = time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)

// fixtureRanges are the spans of 1-minute data the shared fixture holds: a year boundary, the
// seed's January, the leap day, the March DST change in New York, and the November one.
var fixtureRanges = [][2]time.Time{
	{time.Date(2023, 12, 30, 0, 0, 0, 0, time.UTC), time.Date(2024, 3, 13, 0, 0, 0, 0, time.UTC)},
	{time.Date(2024, 11, 2, 0, 0, 0, 0, time.UTC), time.Date(2024, 11, 5, 0, 0, 0, 0, time.UTC)},
}

// fixture is a TSDB filled exactly as the collector fills it from a simulated fleet.
type fixture struct {
	sim *simaws.Sim
	db  *tsdb.DB
}

var shared *fixture

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "query-fixture-")
	if err != nil {
		panic(err)
	}
	start := time.Now()
	f, err := newFixture(dir, fixtureRanges)
	fmt.Fprintf(os.Stderr, "fixture built in %s\n", time.Since(start))
	if err != nil {
		panic(err)
	}
	shared = f
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func newSim() *simaws.Sim {
	return simaws.New(simaws.Options{Seed: 7, Projects: 2, ServicesPerProject: 2, Untagged: 1, Now: func() time.Time { return simNow }})
}

func newFixture(dir string, ranges [][2]time.Time) (*fixture, error) {
	db, err := tsdb.Open(nil, nil, tsdb.Options{Dir: dir, OutOfOrderWindow: 400 * 24 * time.Hour})
	if err != nil {
		return nil, err
	}
	// The tests read the heads as they are: no compaction competes with them for the CPU (its
	// 2-hour blocks of ten weeks took minutes), and none is waited for at the end (TestMain
	// removes the directory without closing).
	db.DisableCompactions()
	f := &fixture{sim: newSim(), db: db}
	for _, r := range ranges {
		if err := f.write(r[0], r[1]); err != nil {
			return nil, err
		}
		if err := f.writeHourly(r[0], r[1]); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// writeHourly writes the hourly tier of [from, to) as the Deriver (package rollup, which tests
// it against the 1-minute samples) writes it: one point per series and hour at the hour's end,
// the hour's exact quanta (the simulator's integer truth) as a float.
func (f *fixture) writeHourly(from, to time.Time) error {
	app := f.db.Appender(context.Background())
	for _, svc := range f.sim.Services() {
		for _, name := range series.Usage {
			m := metricByName[name]
			l := svcLabels(svc, HourlyName(name))
			for h := from; h.Before(to); h = h.Add(time.Hour) {
				q := f.sim.RawTruth(svc, name, h, h.Add(time.Hour)) * rawFactor[m]
				if _, err := app.Append(0, l, h.Add(time.Hour).UnixMilli(), Dequantize(m, q)); err != nil {
					return err
				}
			}
		}
	}
	return app.Commit()
}

func svcLabels(svc simaws.Service, name string) labels.Labels {
	b := labels.NewScratchBuilder(5)
	b.Add(labels.MetricName, name)
	if svc.Project != "" {
		b.Add(series.LabelProject, svc.Project)
	}
	dep := svc.Name
	if svc.Deployment != "" {
		dep = svc.Deployment
	}
	b.Add(series.LabelDeployment, dep)
	b.Add(series.LabelCluster, svc.Cluster)
	b.Add(series.LabelRegion, "us-east-1")
	b.Sort()
	return b.Labels()
}

// write appends, for every service, series and minute m in [from, to), the simulator's exact
// value stamped at m+1min, as the collector does; time-major, so the head appends in order.
func (f *fixture) write(from, to time.Time) error {
	ctx := context.Background()
	type ser struct {
		svc  simaws.Service
		name string
		l    labels.Labels
	}
	var all []ser
	for _, svc := range f.sim.Services() {
		for _, name := range series.Usage {
			all = append(all, ser{svc, name, svcLabels(svc, name)})
		}
	}
	for day := from; day.Before(to); day = day.Add(24 * time.Hour) {
		app := f.db.Appender(ctx)
		for m := day; m.Before(day.Add(24*time.Hour)) && m.Before(to); m = m.Add(time.Minute) {
			for _, s := range all {
				v := f.sim.Truth(s.svc, s.name, m, m.Add(time.Minute))
				if _, err := app.Append(0, s.l, m.Add(time.Minute).UnixMilli(), v); err != nil {
					return err
				}
			}
		}
		if err := app.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// projects returns the tagged projects of the fleet.
func (f *fixture) projects() []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range f.sim.Services() {
		if s.Project != "" && !seen[s.Project] {
			seen[s.Project] = true
			out = append(out, s.Project)
		}
	}
	return out
}

// spanRange is a fixed HourlyRange.
func spanRange(from, to time.Time) func() (time.Time, time.Time) {
	return func() (time.Time, time.Time) { return from, to }
}

func newEngine(tb testing.TB, db *tsdb.DB, prices Prices, hourly func() (time.Time, time.Time)) *Engine {
	tb.Helper()
	e, err := New(nil, nil, Options{Storage: db, Prices: prices, Now: func() time.Time { return simNow }, HourlyRange: hourly})
	if err != nil {
		tb.Fatal(err)
	}
	return e
}
