package api

// Fuzz targets of the HTTP surface: every request goes through the whole server (auth, limits,
// the Prometheus API's and the REST endpoints' parameter parsers, POST bodies) and must be
// answered with a 4xx or a 2xx in JSON, never a 5xx or a panic; and every series the storage
// hands to a Prometheus API request must carry one of the caller's projects (the team-scope
// injector of prom_scope.go). Seeds: testdata/fuzz/<target>/. In the suite:
//
//	go test ./api/ -run '^$' -fuzz '^FuzzPromAPI$' -fuzztime 10s

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/cygni/usage/config"
	"github.com/cygni/usage/query"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/store"
	"github.com/cygni/usage/tsdb"
)

// leakRecorder wraps the TSDB under the scoped queryable and records any series it returns
// whose project is not in the request's scope.
type leakRecorder struct {
	storage.SampleAndChunkQueryable
	mu    sync.Mutex
	leaks []string
}

func (l *leakRecorder) Querier(mint, maxt int64) (storage.Querier, error) {
	q, err := l.SampleAndChunkQueryable.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return &leakQuerier{q, l}, nil
}

type leakQuerier struct {
	storage.Querier
	l *leakRecorder
}

func (q *leakQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	return &leakSet{q.Querier.Select(ctx, sortSeries, hints, ms...), visibleTo(ctx), q.l}
}

func (q *leakQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	vs, a, err := q.Querier.LabelValues(ctx, name, hints, ms...)
	if name == series.LabelProject {
		vis := visibleTo(ctx)
		for _, v := range vs {
			if !vis(labels.FromStrings(series.LabelProject, v)) {
				q.l.record("label value " + v)
			}
		}
	}
	return vs, a, err
}

type leakSet struct {
	storage.SeriesSet
	visible func(labels.Labels) bool
	l       *leakRecorder
}

func (s *leakSet) Next() bool {
	if !s.SeriesSet.Next() {
		return false
	}
	if ls := s.At().Labels(); !s.visible(ls) {
		s.l.record(ls.String())
	}
	return true
}

func (l *leakRecorder) record(s string) {
	l.mu.Lock()
	l.leaks = append(l.leaks, s)
	l.mu.Unlock()
}

type fuzzTokens map[string]Principal

func (f fuzzTokens) VerifyToken(_ context.Context, token string) (Principal, error) {
	p, ok := f[token]
	if !ok {
		return Principal{}, store.ErrInvalidToken
	}
	return p, nil
}

type fuzzProjects map[string][]string

func (f fuzzProjects) ListProjects(_ context.Context, teamID string) ([]store.Project, error) {
	var out []store.Project
	for _, id := range f[teamID] {
		out = append(out, store.Project{ID: id, TeamID: teamID})
	}
	return out, nil
}

var fuzzFrom = time.Date(2024, 1, 15, 0, 0, 0, 0, time.UTC)

// fuzzPromServer is a server over a TSDB of two teams' series (an hour of 1-minute samples).
func fuzzPromServer(t testing.TB) (http.Handler, *leakRecorder) {
	db, err := tsdb.Open(nil, nil, tsdb.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	app := db.Appender(context.Background())
	for p, proj := range []string{"proj_a1", "proj_a.2", "proj_b1"} {
		for _, name := range []string{series.CPUSeconds, series.Requests} {
			ls := labels.FromStrings("__name__", name, series.LabelProject, proj, series.LabelDeployment, "web")
			for i := range 60 {
				if _, err := app.Append(0, ls, fuzzFrom.Add(time.Duration(i)*time.Minute).UnixMilli(), float64(p+i)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	// A series without a project (unmapped usage) must stay invisible too.
	if _, err := app.Append(0, labels.FromStrings("__name__", series.CPUSeconds, series.LabelDeployment, "legacy"), fuzzFrom.UnixMilli(), 1); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	rec := &leakRecorder{SampleAndChunkQueryable: db}
	srv := New(Options{
		// Small limits, so that the fuzzer reaches them; a short timeout bounds each input.
		Limits:   Limits{QueryTimeout: 2 * time.Second, MaxSamples: 100_000, MaxSeries: 100, MaxResponseBytes: 1 << 20},
		AuthDeps: AuthDeps{Tokens: fuzzTokens{"tok-a": {TeamID: "team_a", Role: RoleMember}, "tok-c": {TeamID: "team_c", Role: RoleMember}}},
		PromDeps: PromDeps{PromStorage: rec, PromProjects: fuzzProjects{"team_a": {"proj_a1", "proj_a.2"}, "team_b": {"proj_b1"}}},
	})
	return srv, rec
}

var fuzzPromPaths = []string{"query", "query_range", "series", "labels", "label/project/values", "query_exemplars", "format_query", "metadata", "rules", "alerts", "status/buildinfo"}

// checkAnswer fails on a 5xx or a body that is not JSON (204 and 405 preflights aside).
func checkAnswer(t *testing.T, rr *httptest.ResponseRecorder, what string) {
	t.Helper()
	if rr.Code >= 500 {
		t.Fatalf("%s: %d %s", what, rr.Code, rr.Body.String())
	}
	if rr.Code != http.StatusNoContent && !json.Valid(rr.Body.Bytes()) {
		t.Fatalf("%s: %d, body is not JSON: %q", what, rr.Code, rr.Body.String())
	}
}

func FuzzPromAPI(f *testing.F) {
	srv, rec := fuzzPromServer(f)
	at := fmt.Sprint(fuzzFrom.Add(59 * time.Minute).Unix())
	f.Add(uint8(0), true, "sum by (project) (sum_over_time(cygni_cpu_seconds[1h]))", at, "", "", "")
	f.Add(uint8(1), false, `{__name__=~"cygni_.*"}`, fmt.Sprint(fuzzFrom.Unix()), at, "60", "")
	f.Add(uint8(1), true, "vector(1)", "0", "60", "0.0001", "")
	f.Add(uint8(0), false, `{__name__=~"cygni_.*"}[30d:1s]`, at, "", "", "")
	f.Add(uint8(0), true, `cygni_cpu_seconds{project="proj_b1"} or absent(cygni_cpu_seconds{project="proj_b1"})`, at, "", "", "")
	f.Add(uint8(2), false, "", "", "", "", `{project=~".+"}`)
	f.Add(uint8(4), true, "", "", "", "", `{__name__!=""}`)
	f.Add(uint8(8), false, "", "", "", "", `{kind="x"}`)
	f.Fuzz(func(t *testing.T, path uint8, post bool, q, a, b, c, match string) {
		p := fuzzPromPaths[int(path)%len(fuzzPromPaths)]
		v := url.Values{}
		for k, s := range map[string]string{"query": q, "time": a, "start": a, "end": b, "step": c, "limit": c, "type": c, "group_limit": c} {
			if s != "" {
				v.Set(k, s)
			}
		}
		if match != "" {
			v.Add("match[]", match)
		}
		var req *http.Request
		if post {
			req = httptest.NewRequest(http.MethodPost, "/api/v1/"+p, strings.NewReader(v.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			req = httptest.NewRequest(http.MethodGet, "/api/v1/"+p+"?"+v.Encode(), nil)
		}
		req.Header.Set("Authorization", "Bearer tok-a")
		rr := httptest.NewRecorder()
		srv.ServeHTTP(rr, req)
		checkAnswer(t, rr, p+" "+v.Encode())
		if rr.Code != http.StatusOK && rr.Code != http.StatusNoContent {
			var pr struct{ Status, ErrorType, Error string }
			if err := json.Unmarshal(rr.Body.Bytes(), &pr); err != nil || pr.Status != "error" || pr.Error == "" {
				t.Fatalf("%s: %d not in Prometheus' envelope: %s", p, rr.Code, rr.Body.String())
			}
		}
		rec.mu.Lock()
		leaks := rec.leaks
		rec.leaks = nil
		rec.mu.Unlock()
		if len(leaks) > 0 {
			t.Fatalf("%s %s: the storage handed out series of other scopes: %v", p, v.Encode(), leaks)
		}
	})
}

// fuzzRESTServer serves the REST endpoints over a real SQLite store and query engine.
func fuzzRESTServer(t testing.TB) (http.Handler, string, string) {
	ctx := context.Background()
	now := func() time.Time { return fuzzFrom.Add(2 * time.Hour) }
	db, err := tsdb.Open(nil, nil, tsdb.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	engine, err := query.New(nil, nil, query.Options{Storage: db, Prices: query.NewPrices(config.Default().Pricing), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, nil, store.Options{DataDir: t.TempDir(), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if _, err := st.CreateTeam(ctx, store.Team{ID: "team_a", Name: "A"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateProject(ctx, store.Project{ID: "proj_001", TeamID: "team_a", Name: "P"}); err != nil {
		t.Fatal(err)
	}
	n, err := st.CreateNotification(ctx, store.Notification{TeamID: "team_a", Type: "usage_anomaly", Severity: "info", Message: "m"})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := st.CreateToken(ctx, "team_a", "admin", "fuzz")
	if err != nil {
		t.Fatal(err)
	}
	srv := New(Options{
		Limits:           Limits{RESTTimeout: 2 * time.Second},
		AuthDeps:         AuthDeps{Tokens: StoreTokens(st)},
		UsageDeps:        UsageDeps{Usage: engine, UsageProjects: st},
		NotificationDeps: NotificationDeps{Notifications: st},
		BillingDeps:      BillingDeps{BillingReports: st},
	})
	return srv, tok, n.ID
}

var fuzzRESTPaths = []string{"/api/usage/analytics", "/api/usage/summary", "/api/usage/export", "/api/usage/limits",
	"/api/usage/recommendations", "/api/projects/proj_001/budget", "/api/usage/notifications", "/api/billing/reports", "/api/whoami"}

// FuzzRESTParams fuzzes the query string of every REST GET endpoint.
func FuzzRESTParams(f *testing.F) {
	srv, tok, _ := fuzzRESTServer(f)
	f.Add(uint8(0), "startDate=2024-01-15&endDate=2024-01-16&groupBy=hour&tz=Europe/Berlin&deployments=true")
	f.Add(uint8(1), "startDate=2024-01-01T00:00:00Z&endDate=2024-13-01")
	f.Add(uint8(2), "startDate=2024-01-15&endDate=2024-01-16&format=csv")
	f.Add(uint8(2), "startDate=1000-01-01&endDate=9999-12-31&format=json")
	f.Add(uint8(5), "month=2024-01")
	f.Add(uint8(6), "limit=1&cursor=abc&unread=true")
	f.Add(uint8(7), "state=failed&month=2024-02&limit=10000")
	f.Fuzz(func(t *testing.T, path uint8, raw string) {
		p := fuzzRESTPaths[int(path)%len(fuzzRESTPaths)]
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL.Path, req.URL.RawQuery = p, raw
		req.Header.Set("Authorization", "Bearer "+tok)
		rr := httptest.NewRecorder()
		srv.ServeHTTP(rr, req)
		if rr.Code >= 500 {
			t.Fatalf("GET %s?%s: %d %s", p, raw, rr.Code, rr.Body.String())
		}
		if rr.Code >= 400 && !json.Valid(rr.Body.Bytes()) {
			t.Fatalf("GET %s?%s: %d, error body not JSON: %q", p, raw, rr.Code, rr.Body.String())
		}
	})
}

// FuzzRESTPostBodies fuzzes the bodies of the POST endpoints.
func FuzzRESTPostBodies(f *testing.F) {
	srv, tok, ntf := fuzzRESTServer(f)
	paths := []string{"/api/usage/limits", "/api/usage/notifications/" + ntf + "/read", "/api/billing/reports/brp_x/retry"}
	f.Add(uint8(0), `{"projectId":"proj_001","budgetLimit":150.50}`)
	f.Add(uint8(0), `{"projectId":"proj_001","budgetLimit":1e400}`)
	f.Add(uint8(0), `{"projectId":"proj_001","budgetLimit":"12"}{}`)
	f.Add(uint8(1), `{}`)
	f.Add(uint8(1), ``)
	f.Add(uint8(2), `{"x":1}`)
	f.Fuzz(func(t *testing.T, path uint8, body string) {
		p := paths[int(path)%len(paths)]
		req := httptest.NewRequest(http.MethodPost, p, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		rr := httptest.NewRecorder()
		srv.ServeHTTP(rr, req)
		if rr.Code >= 500 {
			t.Fatalf("POST %s %q: %d %s", p, body, rr.Code, rr.Body.String())
		}
		if !json.Valid(rr.Body.Bytes()) {
			t.Fatalf("POST %s %q: %d, body not JSON: %q", p, body, rr.Code, rr.Body.String())
		}
	})
}
