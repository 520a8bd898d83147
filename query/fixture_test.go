package query_test

// The query package's tests that need the shared fixture are in this external test package:
// internal/fixture builds it with the collector and derives it with package rollup, which
// imports query.

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/cygni/usage/internal/fixture"
	"github.com/cygni/usage/query"
	"github.com/cygni/usage/simaws"
	"github.com/cygni/usage/tsdb"
)

// simNow is the simulator's fixed clock for the assertions: every minute the fixture holds has
// ended.
var simNow = time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)

// fixtureRanges are the spans of 1-minute data the shared fixture holds: a year boundary, the
// seed's January, the leap day, the March DST change in New York, and the November one.
var fixtureRanges = [][2]time.Time{
	{time.Date(2023, 12, 30, 0, 0, 0, 0, time.UTC), time.Date(2024, 3, 13, 0, 0, 0, 0, time.UTC)},
	{time.Date(2024, 11, 2, 0, 0, 0, 0, time.UTC), time.Date(2024, 11, 5, 0, 0, 0, 0, time.UTC)},
}

// fixtureShape is the fleet of the shared fixture: 2 projects × 2 services and one untagged
// service, read by the collector one day at a time over fixtureRanges, each day's last hour
// first while CloudWatch still shows it partial and then again (corrections), derived by the
// rollup Deriver. The TSDB's out-of-order window covers the fixture, so the derived hours
// behind the head stay in the out-of-order head; nothing is compacted at the end: the tests
// read what the collector and the Deriver left, and the directory is removed afterwards.
func fixtureShape() fixture.Shape {
	s := fixture.Shape{
		Projects: 2, Deployments: 2, Untagged: 1, Seed: 7,
		Corrections:      true,
		OutOfOrderWindow: 400 * 24 * time.Hour,
		Chunk:            25 * time.Hour,
		KeepHeads:        true,
	}
	for _, r := range fixtureRanges {
		s.Ranges = append(s.Ranges, fixture.Range{From: r[0], To: r[1]})
	}
	return s
}

// sharedFixture is a TSDB filled by the collector from a simulated fleet and derived by the
// Deriver, and that fleet with its clock at simNow.
type sharedFixture struct {
	sim *simaws.Sim
	db  *tsdb.DB
}

var shared *sharedFixture

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "query-fixture-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := os.RemoveAll(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	s := fixtureShape()
	f, err := fixture.Build(context.Background(), dir, s, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "fixture built (collected in %.1f s, derived in %.1f s): %d samples, %d of them corrections\n", f.Stats.IngestSeconds, f.Stats.DeriveSeconds, f.Stats.Samples, f.Stats.Corrections)
	// Not closed: closing writes the heads into blocks, minutes of work for a directory that
	// is removed anyway.
	shared = &sharedFixture{sim: fixture.NewSim(s, func() time.Time { return simNow }), db: f.DB}
	return m.Run()
}

// projects returns the tagged projects of the fleet.
func (f *sharedFixture) projects() []string {
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

func newEngine(tb testing.TB, db *tsdb.DB, prices query.Prices, hourly func() (time.Time, time.Time)) *query.Engine {
	tb.Helper()
	e, err := query.New(nil, nil, query.Options{Storage: db, Prices: prices, Now: func() time.Time { return simNow }, HourlyRange: hourly})
	if err != nil {
		tb.Fatal(err)
	}
	return e
}
