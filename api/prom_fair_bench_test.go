package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/cygni/usage/api"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/tsdb"
)

// BenchmarkPromFairSharing: while team A keeps 20 heavy queries in flight (each reads 2 days
// of 1-minute samples of 100 series), team B's light query is timed, one after another. It
// reports B's p50/p99/max latency and how A's requests ended (200, 429). Bounded: a fixed
// number of light queries per iteration, on loopback.
//
//	go test -run '^$' -bench BenchmarkPromFairSharing -benchtime 1x ./api/
func BenchmarkPromFairSharing(b *testing.B) {
	db, err := tsdb.Open(nil, nil, tsdb.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	from := time.Date(2024, 1, 15, 0, 0, 0, 0, time.UTC)
	const minutes = 2 * 24 * 60
	for s := range 100 {
		app := db.Appender(context.Background())
		ls := labels.FromStrings("__name__", series.CPUSeconds, series.LabelProject, "proj_a", series.LabelDeployment, fmt.Sprintf("d%03d", s))
		for i := range minutes {
			if _, err := app.Append(0, ls, from.Add(time.Duration(i)*time.Minute).UnixMilli(), float64(i%7)); err != nil {
				b.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	app := db.Appender(context.Background())
	lb := labels.FromStrings("__name__", series.CPUSeconds, series.LabelProject, "proj_b", series.LabelDeployment, "web")
	for i := range minutes {
		if _, err := app.Append(0, lb, from.Add(time.Duration(i)*time.Minute).UnixMilli(), 1); err != nil {
			b.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		b.Fatal(err)
	}
	var lim api.Limits
	if v := os.Getenv("FAIR_SLOTS"); v != "" {
		lim.MaxConcurrentPerTeam, _ = strconv.Atoi(v)
	}
	srv := api.New(api.Options{
		Limits:   lim,
		AuthDeps: api.AuthDeps{Tokens: staticTokens{"tok-a": {TeamID: "team_a", Role: api.RoleMember}, "tok-b": {TeamID: "team_b", Role: api.RoleMember}}},
		PromDeps: api.PromDeps{PromStorage: db, PromProjects: staticProjects{"team_a": {"proj_a"}, "team_b": {"proj_b"}}},
	})
	hs := httptest.NewServer(srv)
	b.Cleanup(hs.Close)
	end := from.Add(minutes * time.Minute)
	heavy := url.Values{"query": {`sum by (deployment) (sum_over_time(cygni_cpu_seconds[2d]))`}, "time": {fmt.Sprint(end.Unix())}}.Encode()
	light := url.Values{"query": {`sum(sum_over_time(cygni_cpu_seconds[1h]))`}, "time": {fmt.Sprint(end.Unix())}}.Encode()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	post := func(ctx context.Context, tok, body string) (int, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, hs.URL+"/api/v1/query", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode, nil
	}
	const lightPerIter = 200
	for b.Loop() {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var mu sync.Mutex
		heavyCodes := map[int]int{}
		heavyClients := 20
		if v := os.Getenv("FAIR_HEAVY"); v != "" {
			heavyClients, _ = strconv.Atoi(v)
		}
		for range heavyClients {
			wg.Go(func() {
				for ctx.Err() == nil {
					code, err := post(ctx, "tok-a", heavy)
					if err == nil {
						mu.Lock()
						heavyCodes[code]++
						mu.Unlock()
					}
				}
			})
		}
		time.Sleep(500 * time.Millisecond) // let A's queries fill their slots and queue
		lat := make([]time.Duration, 0, lightPerIter)
		for range lightPerIter {
			t0 := b.Elapsed() // the benchmark's own monotonic timer, not the wall clock
			code, err := post(context.Background(), "tok-b", light)
			if err != nil || code != http.StatusOK {
				b.Fatalf("team B: %d %v", code, err)
			}
			lat = append(lat, b.Elapsed()-t0)
		}
		cancel()
		wg.Wait()
		slices.Sort(lat)
		p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
		b.ReportMetric(p(0.5), "p50-ms")
		b.ReportMetric(p(0.99), "p99-ms")
		b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
		b.ReportMetric(float64(heavyCodes[200]), "A-200s")
		b.ReportMetric(float64(heavyCodes[429]), "A-429s")
	}
}
