package e2e

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/cygni/usage/internal/pgtest"
	"github.com/cygni/usage/internal/storetest"
	"github.com/cygni/usage/simaws"
	"github.com/cygni/usage/tsdb"
)

// Several processes on one remote series store (VictoriaMetrics, then Prometheus) and one
// PostgreSQL (storage.mode: remote): two
// collector shards (one killed mid-backfill; its standby takes over) and two API replicas that
// each could derive. Exactly one Deriver runs (the hourly
// tier equals the simulator's truth, not twice it); when the leader is SIGKILLed the other
// replica takes over within the lease interval, keeps the hourly tier exact, and answers.
func TestRemoteModeReplicas(t *testing.T) {
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) { remoteModeReplicas(t, kind) })
	}
}

func remoteModeReplicas(t *testing.T, kind string) {
	vm := storetest.Start(t, kind)
	dsn := pgtest.DSN(t, "e2e_remote")
	sim := simaws.New(simaws.Options{Projects: 6, ServicesPerProject: 2, Now: Clock(t)})
	// Each GetMetricData call takes 300 ms, so that a 6-hour backfill in 1-hour chunks is still
	// running when its first chunk is committed.
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/GetMetricData") {
			time.Sleep(300 * time.Millisecond)
		}
		sim.Handler().ServeHTTP(w, r)
	})
	srv := httptest.NewServer(slow)
	t.Cleanup(srv.Close)
	env := AWSEnv(t, srv.URL)
	config := func(shard string) string {
		return fmt.Sprintf(`store:
  driver: postgres
  dsn: %q
storage:
  mode: remote
  remote:
    kind: %s
    write_url: %s
    read_url: %s
collector:
  backfill: 6h
  chunk: 1h
  interval: 1h
  shard: %q
`, dsn, vm.Kind, vm.WriteURL, vm.ReadURL, shard)
	}
	cfg := config("")

	// Two collector shards, the second started twice (on "two machines": fresh data dirs). One
	// of the two takes shard 1's lease, the other stands by; the active one is SIGKILLed after
	// its first committed chunk, mid-backfill, and the standby resumes from its watermark in
	// PostgreSQL.
	c0 := Start(t, ProcOptions{Args: []string{"serve", "--only", "collector"}, Config: config("0/2"), Env: env})
	c1a := Start(t, ProcOptions{Args: []string{"serve", "--only", "collector"}, Config: config("1/2"), Env: env})
	c1b := Start(t, ProcOptions{Args: []string{"serve", "--only", "collector"}, Config: config("1/2"), Env: env})
	const taken, standing = `msg="leadership taken" name=collector/`, `msg="leadership held by another process; standing by" name=collector/`
	var c1, standby *Proc
	for expired := timeout(30 * time.Second); c1 == nil; time.Sleep(10 * time.Millisecond) {
		switch {
		case strings.Contains(c1a.Stderr(), taken) && strings.Contains(c1b.Stderr(), standing):
			c1, standby = c1a, c1b
		case strings.Contains(c1b.Stderr(), taken) && strings.Contains(c1a.Stderr(), standing):
			c1, standby = c1b, c1a
		case expired():
			t.Fatalf("shard 1 has not one leader and one standby:\n%s\n---\n%s", tail(c1a.Stderr(), 1500), tail(c1b.Stderr(), 1500))
		}
	}
	waitLog(t, c1, "collecting ", 1)
	c1.Kill()
	killed := time.Now()
	if strings.Contains(c1.Stderr(), "backfill done") {
		t.Fatal("shard 1 finished its backfill before the kill")
	}
	waitLog(t, standby, taken, 1)
	t.Logf("shard 1 moved to its standby %s after the kill", time.Since(killed).Round(10*time.Millisecond))
	waitLog(t, c0, "backfill done", 1)
	from, err := time.Parse(time.RFC3339, LogValue(c0.Stderr(), "no watermark; backfilling", "from"))
	if err != nil {
		t.Fatalf("backfill start not logged: %v", err)
	}
	to, err := time.Parse(time.RFC3339, LogValue(c0.Stderr(), "no watermark; backfilling", "to"))
	if err != nil {
		t.Fatal(err)
	}
	// The whole hours of the backfill.
	h0, h1 := from.Truncate(time.Hour).Add(time.Hour), to.Truncate(time.Hour)

	a := Start(t, ProcOptions{Args: []string{"serve", "--only", "api,alerting"}, Config: cfg, Env: env})
	b := Start(t, ProcOptions{Args: []string{"serve", "--only", "api,alerting"}, Config: cfg, Env: env})
	a.WaitReady(90 * time.Second)
	b.WaitReady(90 * time.Second)

	reader, err := tsdb.OpenReader(nil, tsdb.StorageOptions{Mode: tsdb.ModeRemote, Remote: tsdb.RemoteOptions{Kind: vm.Kind, ReadURL: vm.ReadURL}})
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	projects := map[string]bool{}
	for _, s := range sim.Services() {
		if s.Project != "" {
			projects[s.Project] = true
		}
	}
	// hourlyExact reports whether every project's hourly tier over [h0, h1) equals the truth.
	hourlyExact := func() (bool, string) {
		if vm.Kind == storetest.VictoriaMetrics {
			resp, err := http.Get(vm.BaseURL + "/internal/force_flush")
			if err == nil {
				resp.Body.Close()
			}
		}
		q, err := reader.Querier(h0.UnixMilli()+1, h1.UnixMilli())
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		got := map[string]float64{}
		ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, simaws.SeriesCPUSeconds+":sum1h"))
		var it chunkenc.Iterator
		for ss.Next() {
			it = ss.At().Iterator(it)
			for it.Next() == chunkenc.ValFloat {
				_, v := it.At()
				got[ss.At().Labels().Get("project")] += v
			}
		}
		if err := ss.Err(); err != nil {
			t.Fatalf("%v (the store: %v)", err, vm.Err())
		}
		var diff []string
		for p := range projects {
			want := sim.ProjectTruth(p, simaws.SeriesCPUSeconds, h0, h1)
			if math.Abs(got[p]-want) > 1e-9*math.Abs(want) {
				diff = append(diff, fmt.Sprintf("%s: hourly %v, truth %v", p, got[p], want))
			}
		}
		return len(diff) == 0, strings.Join(diff, "; ")
	}
	waitExact := func(what string) {
		t.Helper()
		var last string
		for expired := timeout(90 * time.Second); !expired(); time.Sleep(500 * time.Millisecond) {
			ok, d := hourlyExact()
			if ok {
				return
			}
			last = d
		}
		t.Fatalf("%s: the hourly tier never equalled the truth: %s", what, last)
	}
	waitExact("two replicas")
	if strings.Contains(standby.Stderr(), "no watermark") {
		t.Errorf("the standby started shard 1 over instead of resuming from its watermark in the store:\n%s", tail(standby.Stderr(), 2000))
	}
	leaders := func(p *Proc) int { return strings.Count(p.Stderr(), `msg="leadership taken" name=deriver`) }
	if n := leaders(a) + leaders(b); n != 1 {
		t.Fatalf("%d Deriver leaderships taken among two replicas, want 1", n)
	}
	ruleLeaders := func(p *Proc) int { return strings.Count(p.Stderr(), `msg="leadership taken" name=rules`) }
	if n := ruleLeaders(a) + ruleLeaders(b); n != 1 {
		t.Fatalf("%d rule-evaluation leaderships taken among two replicas, want 1", n)
	}
	leader, follower := a, b
	if leaders(b) == 1 {
		leader, follower = b, a
	}
	ruleFollowerBefore := ruleLeaders(follower)
	// The leader dies; the follower takes the Deriver over and the tier stays exact (a second
	// Deriver reads the first one's writes back instead of writing them again).
	leader.Kill()
	killed = time.Now()
	for expired := timeout(30 * time.Second); leaders(follower) == 0; time.Sleep(100 * time.Millisecond) {
		if expired() {
			t.Fatalf("the surviving replica did not take the Deriver over within 30s\n%s", tail(follower.Stderr(), 3000))
		}
	}
	t.Logf("the Deriver moved to the other replica %s after the kill", time.Since(killed).Round(10*time.Millisecond))
	time.Sleep(3 * time.Second) // the new leader derives at once when it takes over
	// The rules leadership ends up on the survivor too (it was there already, or moves now).
	for expired := timeout(30 * time.Second); ruleFollowerBefore == 0 && ruleLeaders(follower) == 0; time.Sleep(100 * time.Millisecond) {
		if expired() {
			t.Fatalf("the surviving replica did not take the rule evaluation over within 30s")
		}
	}
	if ok, d := hourlyExact(); !ok {
		t.Errorf("after failover: %s", d)
	}
	// A one-shot backfill refuses to race the running collector shards and Deriver.
	cfgPath := filepath.Join(t.TempDir(), "cygni-usage.yml")
	writeFile(t, cfgPath, cfg)
	out, err := Run(t, 60*time.Second, env, "--data-dir", t.TempDir(), "--config", cfgPath, "collect",
		"--from", h0.Format(time.RFC3339), "--to", h1.Format(time.RFC3339))
	if err == nil || !strings.Contains(out, "leadership is held by a running process sharing this store") {
		t.Errorf("collect beside running collectors: %v\n%s", err, tail(out, 2000))
	}
	resp, err := http.Get(follower.URL() + "/readyz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("surviving replica /readyz: %v %v", resp, err)
	}
	if resp != nil {
		resp.Body.Close()
	}
}
