package e2e

import (
	"context"
	"encoding/json"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/cygni/usage/simaws"
	"github.com/cygni/usage/tsdb"
)

// A real process is SIGKILLed in the middle of its first backfill and restarted: the totals of
// every project and series over the collected window equal the simulator's ground truth.
func TestCollectorKilledDuringBackfill(t *testing.T) {
	sim := simaws.New(simaws.Options{Projects: 30, ServicesPerProject: 3, Now: Clock(t)})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	env := AWSEnv(t, srv.URL)
	cfg := "collector:\n  backfill: 2d\n  chunk: 1h\n  interval: 1h\n"
	dataDir := t.TempDir()
	wmPath := filepath.Join(dataDir, "collector-watermark.json")

	p1 := Start(t, ProcOptions{Args: []string{"serve", "--only", "collector,api"}, DataDir: dataDir, Config: cfg, Env: env})
	expired := timeout(60 * time.Second)
	for {
		if _, err := os.Stat(wmPath); err == nil {
			break // at least one chunk committed
		}
		if expired() {
			t.Fatalf("no watermark after 60s\n%s", tail(p1.Stderr(), 4000))
		}
		time.Sleep(2 * time.Millisecond)
	}
	p1.Kill()
	from, err := time.Parse(time.RFC3339, LogValue(p1.Stderr(), "no watermark; backfilling", "from"))
	if err != nil {
		t.Fatalf("backfill start not logged: %v", err)
	}
	wm1 := readWatermark(t, wmPath)
	t.Logf("killed at watermark %s (backfill %s .. %s)", wm1, from, LogValue(p1.Stderr(), "no watermark; backfilling", "to"))

	p2 := Start(t, ProcOptions{Args: []string{"serve", "--only", "collector,api"}, DataDir: dataDir, Config: cfg, Env: env})
	p2.WaitReady(90 * time.Second)
	if strings.Contains(p2.Stderr(), "no watermark") {
		t.Error("the restarted process started over instead of resuming from the watermark")
	}
	p2.Stop(20 * time.Second)
	to := readWatermark(t, wmPath)
	if !to.After(wm1) {
		t.Fatalf("watermark did not advance after the restart: %s then %s", wm1, to)
	}

	db, err := tsdb.Open(nil, nil, tsdb.Options{Dir: filepath.Join(dataDir, "tsdb")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	projects := map[string]bool{}
	for _, s := range sim.Services() {
		if s.Project != "" {
			projects[s.Project] = true
		}
	}
	for _, name := range []string{simaws.SeriesCPUSeconds, simaws.SeriesCPUUsedSeconds, simaws.SeriesMemoryGBHours,
		simaws.SeriesMemoryUsedGBHours, simaws.SeriesRunningTasks, simaws.SeriesEgressBytes, simaws.SeriesRequests} {
		for pr := range projects {
			want := sim.ProjectTruth(pr, name, from, to)
			got := sumStored(t, db, name, from, to, pr)
			if math.Abs(got-want) > 1e-9*math.Abs(want) {
				t.Errorf("%s %s: stored %v, truth %v", pr, name, got, want)
			}
		}
	}
}

// Bad --from/--to values fail with a message naming the flag.
func TestCollectBadTimes(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"garbage", []string{"--from", "yesterday", "--to", "2024-01-02"}, `--from "yesterday": want an RFC 3339 time`},
		{"reversed", []string{"--from", "2024-01-02", "--to", "2024-01-01"}, "--from 2024-01-02T00:00:00Z is not before --to 2024-01-01T00:00:00Z"},
		{"missing", []string{"--from", "2024-01-02"}, "required flag(s) '--to' not provided"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Run(t, 30*time.Second, nil, append([]string{"--data-dir", t.TempDir(), "collect"}, tc.args...)...)
			if err == nil {
				t.Fatalf("exit 0:\n%s", out)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("output does not contain %q:\n%s", tc.want, out)
			}
		})
	}
}

func readWatermark(t testing.TB, path string) time.Time {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var w struct {
		Watermark time.Time `json:"watermark"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatalf("watermark file %q: %v", b, err)
	}
	return w.Watermark
}

// sumStored sums one series of one project over the periods that start in [from, to).
func sumStored(t testing.TB, db *tsdb.DB, name string, from, to time.Time, project string) float64 {
	t.Helper()
	q, err := db.Querier(from.UnixMilli()+1, to.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ss := q.Select(context.Background(), false, nil,
		labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, name),
		labels.MustNewMatcher(labels.MatchEqual, "project", project))
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
