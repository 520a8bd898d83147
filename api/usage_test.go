package api

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/shopspring/decimal"

	"github.com/cygni/usage/config"
	"github.com/cygni/usage/query"
	"github.com/cygni/usage/rollup"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/simaws"
	"github.com/cygni/usage/store"
	"github.com/cygni/usage/tsdb"
)

// usageNow is the fixed clock of the usage tests: the middle of January 2024.
var usageNow = time.Date(2024, 1, 20, 12, 34, 0, 0, time.UTC)

type usageFixture struct {
	srv                  *httptest.Server
	st                   *store.Store
	sim                  *simaws.Sim
	prices               query.Prices
	engine               *query.Engine
	admin, member, other string // tokens: team A admin, team A member, team B admin
	teamA                store.Team
}

// newUsageFixture serves the usage API over a real TSDB filled as the collector fills it from
// the simulated fleet (1-minute samples from 2023-12-31 to usageNow, hourly points derived) and
// a real SQLite store: team A owns proj_001 and proj_002, team B owns proj_003.
func newUsageFixture(t testing.TB) *usageFixture {
	t.Helper()
	ctx := context.Background()
	sim := simaws.New(simaws.Options{Seed: 7, Projects: 3, ServicesPerProject: 2, Untagged: 1, Now: func() time.Time { return usageNow }})
	db, err := tsdb.Open(nil, nil, tsdb.Options{Dir: t.TempDir(), OutOfOrderWindow: 400 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	from := time.Date(2023, 12, 31, 0, 0, 0, 0, time.UTC)
	usageWriteSim(t, db, sim, from, usageNow)
	prices := query.NewPrices(config.Default().Pricing)
	engine, err := query.New(nil, nil, query.Options{Storage: db, Prices: prices, Now: func() time.Time { return usageNow },
		HourlyRange: func() (time.Time, time.Time) { return from, usageNow.Truncate(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	d, err := rollup.NewDeriver(nil, nil, rollup.DeriverOptions{Storage: db, Prices: prices})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Derive(ctx, from, usageNow.Truncate(time.Hour)); err != nil {
		t.Fatal(err)
	}

	st, err := store.Open(ctx, nil, store.Options{DataDir: t.TempDir(), Now: func() time.Time { return usageNow }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	a, err := st.CreateTeam(ctx, store.Team{ID: "team_a", Name: "Team A"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.CreateTeam(ctx, store.Team{ID: "team_b", Name: "Team B"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []store.Project{
		{ID: "proj_001", TeamID: a.ID, Name: "Web shop"},
		{ID: "proj_002", TeamID: a.ID, Name: "Batch"},
		{ID: "proj_003", TeamID: b.ID, Name: "Other team's"},
	} {
		if _, err := st.CreateProject(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	tok := func(team, role string) string {
		s, _, err := st.CreateToken(ctx, team, role, "test")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	f := &usageFixture{st: st, sim: sim, prices: prices, engine: engine, teamA: a,
		admin: tok(a.ID, "admin"), member: tok(a.ID, "member"), other: tok(b.ID, "admin")}
	s := New(Options{AuthDeps: AuthDeps{Tokens: StoreTokens(st)}, UsageDeps: UsageDeps{Usage: engine, UsageProjects: st}, BudgetDeps: BudgetDeps{Budgets: st}})
	f.srv = httptest.NewServer(s)
	t.Cleanup(f.srv.Close)
	return f
}

// usageWriteSim appends, for every service, series and minute m in [from, to), the simulator's
// exact value stamped at m+1min, with the collector's labels.
func usageWriteSim(t testing.TB, db *tsdb.DB, sim *simaws.Sim, from, to time.Time) {
	t.Helper()
	type ser struct {
		svc  simaws.Service
		name string
		l    labels.Labels
	}
	var all []ser
	for _, svc := range sim.Services() {
		for _, name := range series.Usage {
			b := labels.NewScratchBuilder(5)
			b.Add(labels.MetricName, name)
			if svc.Project != "" {
				b.Add(series.LabelProject, svc.Project)
				b.Add(series.LabelDeployment, svc.Deployment)
			} else {
				b.Add(series.LabelDeployment, svc.Name)
			}
			b.Add(series.LabelCluster, svc.Cluster)
			b.Add(series.LabelRegion, "us-east-1")
			b.Sort()
			all = append(all, ser{svc, name, b.Labels()})
		}
	}
	for day := from; day.Before(to); day = day.Add(24 * time.Hour) {
		app := db.Appender(context.Background())
		for m := day; m.Before(day.Add(24*time.Hour)) && m.Before(to); m = m.Add(time.Minute) {
			for _, s := range all {
				v := sim.Truth(s.svc, s.name, m, m.Add(time.Minute))
				if _, err := app.Append(0, s.l, m.Add(time.Minute).UnixMilli(), v); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *usageFixture) do(t testing.TB, method, token, path, body string) (int, []byte, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, b, res.Header
}

func decodeJSON(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var v map[string]any
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// teamTruth sums the ground truth of team A's projects.
func (f *usageFixture) teamTruth(name string, from, to time.Time) float64 {
	return f.sim.ProjectTruth("proj_001", name, from, to) + f.sim.ProjectTruth("proj_002", name, from, to)
}

// expectedParts prices the ground truth hour by hour with the default prices, per resource
// (compute, memory, bandwidth, requests): each series' hourly amount rounded to nine decimals
// (whole bytes and requests), exact sums.
func (f *usageFixture) expectedParts(projects []string, from, to time.Time) [4]decimal.Decimal {
	var parts [4]decimal.Decimal
	s := config.DefaultPriceSheet()
	for h := from; h.Before(to); h = h.Add(time.Hour) {
		end := h.Add(time.Hour)
		if end.After(to) {
			end = to
		}
		for _, svc := range f.sim.Services() {
			if svc.Project == "" || !containsStr(projects, svc.Project) {
				continue
			}
			q := func(name string, places int32) decimal.Decimal {
				return decimal.NewFromFloat(f.sim.Truth(svc, name, h, end)).Round(places)
			}
			parts[0] = parts[0].Add(q(series.CPUSeconds, 9).Mul(s.VCPUHour.Decimal).DivRound(decimal.NewFromInt(3600), 20))
			parts[1] = parts[1].Add(q(series.MemoryGBHours, 9).Mul(s.MemoryGBHour.Decimal))
			parts[2] = parts[2].Add(q(series.EgressBytes, 0).Mul(s.EgressGB.Decimal).DivRound(decimal.NewFromInt(series.GiB), 40))
			parts[3] = parts[3].Add(q(series.Requests, 0).Mul(s.MillionRequests.Decimal).DivRound(decimal.NewFromInt(1e6), 40))
		}
	}
	return parts
}

// expectedCost is the exact cost of the projects.
func (f *usageFixture) expectedCost(projects []string, from, to time.Time) decimal.Decimal {
	p := f.expectedParts(projects, from, to)
	return p[0].Add(p[1]).Add(p[2]).Add(p[3])
}

// shownCost is the total an invoice shows (docs/api.md, "How the figures add up"): each
// project's resource cost rounded once to places, the total the sum of those.
func (f *usageFixture) shownCost(projects []string, from, to time.Time, places int32) decimal.Decimal {
	total := decimal.Zero
	for _, p := range projects {
		for _, part := range f.expectedParts([]string{p}, from, to) {
			total = total.Add(part.Round(places))
		}
	}
	return total
}

// shownQuantity is the sum over team A's projects of each one's truth rounded once.
func (f *usageFixture) shownQuantity(name string, from, to time.Time, div decimal.Decimal, places int32) decimal.Decimal {
	total := decimal.Zero
	for _, p := range []string{"proj_001", "proj_002"} {
		total = total.Add(f.exactTruth(p, name, from, to).DivRound(div, places))
	}
	return total
}

// exactTruth is a project's truth as an exact decimal, from the simulator's integer CloudWatch
// units (CPU units × 60 / 1024, MiB-minutes / 61,440, bytes per second × 60, requests).
func (f *usageFixture) exactTruth(project, name string, from, to time.Time) decimal.Decimal {
	raw := decimal.NewFromInt(f.rawTruth(project, name, from, to))
	switch name {
	case series.CPUSeconds, series.CPUUsedSeconds:
		return raw.Mul(decimal.NewFromInt(60)).Div(decimal.NewFromInt(1024)) // exact: 1/1024 terminates
	case series.MemoryGBHours, series.MemoryUsedGBHours:
		return raw.DivRound(decimal.NewFromInt(61440), 30)
	case series.EgressBytes:
		return raw.Mul(decimal.NewFromInt(60)) // NetworkTxBytes Sum (bytes/s) × 60 s
	}
	return raw
}

func containsStr(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func TestUsageAnalyticsSeedExample(t *testing.T) {
	f := newUsageFixture(t)
	code, body, _ := f.do(t, http.MethodGet, f.member, "/api/usage/analytics?startDate=2024-01-01T00:00:00Z&endDate=2024-01-31T23:59:59Z&groupBy=day", "")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	v := decodeJSON(t, body)
	data := v["data"].([]any)
	if len(data) != 31 {
		t.Fatalf("%d daily buckets, want 31 (endDate 23:59:59 covers January 31st)", len(data))
	}
	day0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	sumCost := decimal.Zero
	for i, e := range data {
		b := e.(map[string]any)
		from, to := day0.AddDate(0, 0, i), day0.AddDate(0, 0, i+1)
		if got, want := b["period"], from.Format(time.RFC3339); got != want {
			t.Errorf("bucket %d period %v, want %s", i, got, want)
		}
		for _, c := range []struct {
			field, series string
			div           decimal.Decimal
			places        int32
		}{
			{"cpuSeconds", series.CPUSeconds, decimal.NewFromInt(1), 6},
			{"requests", series.Requests, decimal.NewFromInt(1), 0},
			{"egressGB", series.EgressBytes, decimal.NewFromInt(series.GiB), 9},
		} {
			// Fixed precision per field, and the team's bucket is the sum of the projects' shown.
			want := f.shownQuantity(c.series, from, to, c.div, c.places).StringFixed(c.places)
			if got := b[c.field].(json.Number).String(); got != want {
				t.Errorf("%s %s = %s, want %s", from.Format("2006-01-02"), c.field, got, want)
			}
		}
		wantCost := f.shownCost([]string{"proj_001", "proj_002"}, from, to, 6)
		sumCost = sumCost.Add(wantCost)
		if got := b["cost"].(map[string]any)["total"]; got != wantCost.StringFixed(6) {
			t.Errorf("%s cost.total = %v, want %s", from.Format("2006-01-02"), got, wantCost.StringFixed(6))
		}
		assertPartsAddUp(t, from.Format("2006-01-02"), b["cost"].(map[string]any), 6)
	}
	totals := v["totals"].(map[string]any)
	want := f.shownQuantity(series.CPUSeconds, day0, day0.AddDate(0, 1, 0), decimal.NewFromInt(1), 6)
	if got := decimal.RequireFromString(totals["cpuSeconds"].(json.Number).String()); !got.Equal(want) {
		t.Errorf("totals.cpuSeconds = %s, want %s", got, want)
	}
	if got, want := totals["cost"].(map[string]any)["total"], sumCost.StringFixed(6); got != want {
		t.Errorf("totals.cost.total = %v, want the sum of the buckets shown, %s", got, want)
	}
	if exact := f.expectedCost([]string{"proj_001", "proj_002"}, day0, usageNow.Truncate(time.Minute)); exact.Sub(sumCost).Abs().GreaterThan(decimal.RequireFromString("0.0005")) {
		t.Errorf("shown total %s is not within rounding of the exact %s", sumCost, exact)
	}
	assertPartsAddUp(t, "totals", totals["cost"].(map[string]any), 6)
	if ps := v["projects"].([]any); len(ps) != 2 {
		t.Errorf("%d projects, want team A's 2", len(ps))
	}
}

func TestUsageAnalyticsOneProjectByHourInNewYork(t *testing.T) {
	f := newUsageFixture(t)
	ny, _ := time.LoadLocation("America/New_York")
	q := url.Values{"projectId": {"proj_002"}, "startDate": {"2024-01-10"}, "endDate": {"2024-01-11"}, "groupBy": {"hour"}, "tz": {"America/New_York"}}
	code, body, _ := f.do(t, http.MethodGet, f.member, "/api/usage/analytics?"+q.Encode(), "")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	data := decodeJSON(t, body)["data"].([]any)
	if len(data) != 24 {
		t.Fatalf("%d buckets, want 24", len(data))
	}
	start := time.Date(2024, 1, 10, 0, 0, 0, 0, ny)
	for i, e := range data {
		from := start.Add(time.Duration(i) * time.Hour)
		want := f.exactTruth("proj_002", series.CPUSeconds, from, from.Add(time.Hour)).Round(6)
		b := e.(map[string]any)
		if b["period"] != from.Format(time.RFC3339) {
			t.Errorf("period %v, want %s", b["period"], from.Format(time.RFC3339))
		}
		if got := decimal.RequireFromString(b["cpuSeconds"].(json.Number).String()); !got.Equal(want) {
			t.Errorf("%s cpuSeconds %s, truth %s", from, got, want)
		}
	}
}

func TestUsageSummaryAndBudget(t *testing.T) {
	f := newUsageFixture(t)
	monthStart := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	cut := usageNow.Truncate(time.Minute)
	code, body, _ := f.do(t, http.MethodGet, f.member, "/api/usage/summary", "")
	if code != http.StatusOK {
		t.Fatalf("summary: %d %s", code, body)
	}
	v := decodeJSON(t, body)
	if got, want := v["totalCost"], f.shownCost([]string{"proj_001", "proj_002"}, monthStart, cut, 2).StringFixed(2); got != want {
		t.Errorf("summary totalCost %v, want %s", got, want)
	}
	assertPartsAddUp(t, "summary", v["cost"].(map[string]any), 2)
	if got := v["cost"].(map[string]any)["total"]; got != v["totalCost"] {
		t.Errorf("summary cost.total %v, totalCost %v", got, v["totalCost"])
	}
	if v["periodStart"] != "2024-01-01T00:00:00Z" || v["periodEnd"] != "2024-02-01T00:00:00Z" {
		t.Errorf("period %v .. %v", v["periodStart"], v["periodEnd"])
	}
	mt := v["metricTotals"].(map[string]any)
	if got, want := mt["cpuSeconds"].(json.Number).String(), f.shownQuantity(series.CPUSeconds, monthStart, cut, decimal.NewFromInt(1), 6).StringFixed(6); got != want {
		t.Errorf("metricTotals.cpuSeconds %s, truth %s", got, want)
	}
	ps := v["projects"].([]any)
	if len(ps) != 2 {
		t.Fatalf("summary lists %d projects, want 2", len(ps))
	}
	projectsTotal := decimal.Zero
	for _, p := range ps {
		pm := p.(map[string]any)
		id := pm["projectId"].(string)
		if got, want := pm["totalCost"], f.shownCost([]string{id}, monthStart, cut, 2).StringFixed(2); got != want {
			t.Errorf("%s totalCost %v, want %s", id, got, want)
		}
		assertPartsAddUp(t, id, pm["cost"].(map[string]any), 2)
		projectsTotal = projectsTotal.Add(decimal.RequireFromString(pm["totalCost"].(string)))
	}
	if got := v["totalCost"]; got != projectsTotal.StringFixed(2) {
		t.Errorf("summary totalCost %v, projects add up to %s", got, projectsTotal.StringFixed(2))
	}

	// Budget: set a limit that puts proj_001 in the warning band, then check the seed's shape.
	used := f.expectedCost([]string{"proj_001"}, monthStart, cut)
	limit := used.Div(decimal.RequireFromString("0.85")).Round(2)
	code, body, _ = f.do(t, http.MethodPost, f.admin, "/api/usage/limits", `{"projectId":"proj_001","budgetLimit":`+limit.String()+`}`)
	if code != http.StatusOK {
		t.Fatalf("POST limits: %d %s", code, body)
	}
	code, body, _ = f.do(t, http.MethodGet, f.member, "/api/projects/proj_001/budget", "")
	if code != http.StatusOK {
		t.Fatalf("budget: %d %s", code, body)
	}
	b := decodeJSON(t, body)
	wantKeys := []string{"breakdown", "forecast", "limit", "percentUsed", "periodEnd", "periodStart", "projectId", "remaining", "status", "used"}
	var keys []string
	for k := range b {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if strings.Join(keys, ",") != strings.Join(wantKeys, ",") {
		t.Errorf("budget keys %v, want %v", keys, wantKeys)
	}
	shownUsed := f.shownCost([]string{"proj_001"}, monthStart, cut, 2)
	if got := b["used"].(json.Number).String(); got != shownUsed.StringFixed(2) {
		t.Errorf("used %s, want the breakdown's sum %s", got, shownUsed.StringFixed(2))
	}
	if got := b["limit"].(json.Number).String(); got != limit.StringFixed(2) {
		t.Errorf("limit %s, want %s", got, limit.StringFixed(2))
	}
	if got, want := b["remaining"].(json.Number).String(), limit.Sub(shownUsed).StringFixed(2); got != want {
		t.Errorf("remaining %s, want %s", got, want)
	}
	if b["status"] != "warning" {
		t.Errorf("status %v at %v%%, want warning", b["status"], b["percentUsed"])
	}
	pct := decimal.RequireFromString(b["percentUsed"].(json.Number).String())
	if pct.LessThan(decimal.NewFromInt(84)) || pct.GreaterThan(decimal.NewFromInt(86)) {
		t.Errorf("percentUsed %s, want about 85", pct)
	}
	bd := b["breakdown"].(map[string]any)
	for _, k := range []string{"compute", "storage", "bandwidth", "memory", "requests"} {
		entry, ok := bd[k].(map[string]any)
		if !ok {
			t.Fatalf("breakdown.%s missing: %s", k, body)
		}
		if _, ok := entry["cost"].(string); !ok {
			t.Errorf("breakdown.%s.cost is not a string: %v", k, entry["cost"])
		}
	}
	if _, ok := bd["compute"].(map[string]any)["cpuHours"].(string); !ok {
		t.Errorf("breakdown.compute.cpuHours is not a string")
	}
	if _, ok := bd["bandwidth"].(map[string]any)["egressGB"].(string); !ok {
		t.Errorf("breakdown.bandwidth.egressGB is not a string")
	}
	fc := decimal.RequireFromString(b["forecast"].(json.Number).String())
	if !fc.GreaterThan(used) {
		t.Errorf("forecast %s is not above month-to-date %s", fc, used)
	}

	// Limits list: the seed's shape, budgetExceeded from month-to-date cost.
	code, body, _ = f.do(t, http.MethodGet, f.member, "/api/usage/limits", "")
	if code != http.StatusOK {
		t.Fatalf("limits: %d %s", code, body)
	}
	l := decodeJSON(t, body)
	if l["defaultLimit"].(json.Number).String() != "100" {
		t.Errorf("defaultLimit %v, want 100", l["defaultLimit"])
	}
	lp := l["projects"].([]any)
	if len(lp) != 2 {
		t.Fatalf("limits list %d projects, want 2", len(lp))
	}
	first := lp[0].(map[string]any)
	for _, k := range []string{"projectId", "projectName", "budgetLimit", "budgetExceeded", "suspended", "deployments"} {
		if _, ok := first[k]; !ok {
			t.Errorf("limits entry lacks %s: %v", k, first)
		}
	}
	if first["budgetExceeded"] != false {
		t.Errorf("proj_001 budgetExceeded %v at 85%%", first["budgetExceeded"])
	}
	// A limit below the month-to-date cost: exceeded.
	if code, body, _ = f.do(t, http.MethodPost, f.admin, "/api/usage/limits", `{"projectId":"proj_001","budgetLimit":0.01}`); code != http.StatusOK {
		t.Fatalf("POST limits: %d %s", code, body)
	}
	if e := decodeJSON(t, body); e["budgetExceeded"] != true {
		t.Errorf("after limit 0.01: budgetExceeded %v", e["budgetExceeded"])
	}
	if _, body, _ = f.do(t, http.MethodGet, f.member, "/api/projects/proj_001/budget", ""); decodeJSON(t, body)["status"] != "exceeded" {
		t.Errorf("status after limit 0.01: %s", body)
	}
}

func TestUsageBadRequests(t *testing.T) {
	f := newUsageFixture(t)
	for _, tc := range []struct {
		name, method, token, path, body string
		code                            int
		mention                         string
	}{
		{"no token", "GET", "", "/api/usage/summary", "", 401, "bearer"},
		{"startDate malformed", "GET", f.member, "/api/usage/analytics?startDate=2024-13-01&endDate=2024-01-31", "", 400, "startDate"},
		{"startDate missing", "GET", f.member, "/api/usage/analytics?endDate=2024-01-31", "", 400, "startDate"},
		{"endDate malformed", "GET", f.member, "/api/usage/analytics?startDate=2024-01-01&endDate=yesterday", "", 400, "endDate"},
		{"groupBy", "GET", f.member, "/api/usage/analytics?startDate=2024-01-01&endDate=2024-01-31&groupBy=year", "", 400, "groupBy"},
		{"tz", "GET", f.member, "/api/usage/analytics?startDate=2024-01-01&endDate=2024-01-31&tz=Mars/Olympus", "", 400, "tz"},
		{"unknown parameter", "GET", f.member, "/api/usage/analytics?startDate=2024-01-01&endDate=2024-01-31&group=day", "", 400, "group"},
		{"start after end", "GET", f.member, "/api/usage/analytics?startDate=2024-02-01&endDate=2024-01-01", "", 400, "startDate: is after endDate"},
		{"hourly range too large", "GET", f.member, "/api/usage/analytics?startDate=2024-01-01&endDate=2024-03-01&groupBy=hour", "", 400, "at most 31 days"},
		{"projectId malformed", "GET", f.member, "/api/usage/analytics?startDate=2024-01-01&endDate=2024-01-31&projectId=x%20y", "", 400, "projectId"},
		{"unknown project", "GET", f.member, "/api/usage/analytics?startDate=2024-01-01&endDate=2024-01-31&projectId=proj_999", "", 404, "proj_999"},
		{"other team's project", "GET", f.member, "/api/usage/analytics?startDate=2024-01-01&endDate=2024-01-31&projectId=proj_003", "", 404, "proj_003"},
		{"other team's budget", "GET", f.member, "/api/projects/proj_003/budget", "", 404, "proj_003"},
		{"export format", "GET", f.member, "/api/usage/export?startDate=2024-01-01&endDate=2024-01-02&format=xml", "", 400, "format"},
		{"export start after end", "GET", f.member, "/api/usage/export?startDate=2024-01-03&endDate=2024-01-02", "", 400, "startDate"},
		{"limits member", "POST", f.member, "/api/usage/limits", `{"projectId":"proj_001","budgetLimit":200}`, 403, "admin"},
		{"limits negative", "POST", f.admin, "/api/usage/limits", `{"projectId":"proj_001","budgetLimit":-5}`, 400, "budgetLimit"},
		{"limits zero", "POST", f.admin, "/api/usage/limits", `{"projectId":"proj_001","budgetLimit":0}`, 400, "budgetLimit"},
		{"limits 3 decimals", "POST", f.admin, "/api/usage/limits", `{"projectId":"proj_001","budgetLimit":10.005}`, 400, "more than 2 decimals"},
		{"limits too large", "POST", f.admin, "/api/usage/limits", `{"projectId":"proj_001","budgetLimit":5000000}`, 400, "maximum"},
		{"limits string", "POST", f.admin, "/api/usage/limits", `{"projectId":"proj_001","budgetLimit":"200"}`, 400, "budgetLimit"},
		{"limits unknown field", "POST", f.admin, "/api/usage/limits", `{"projectId":"proj_001","budgetLimit":200,"limit":3}`, 400, "limit"},
		{"limits missing limit", "POST", f.admin, "/api/usage/limits", `{"projectId":"proj_001"}`, 400, "budgetLimit"},
		{"limits other team", "POST", f.admin, "/api/usage/limits", `{"projectId":"proj_003","budgetLimit":200}`, 404, "proj_003"},
		{"limits not json", "POST", f.admin, "/api/usage/limits", `projectId=proj_001`, 400, "body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, _ := f.do(t, tc.method, tc.token, tc.path, tc.body)
			if code != tc.code {
				t.Fatalf("status %d, want %d: %s", code, tc.code, body)
			}
			e := decodeJSON(t, body)["error"].(map[string]any)
			if msg := e["message"].(string); !strings.Contains(strings.ToLower(msg), strings.ToLower(tc.mention)) {
				t.Errorf("message %q does not mention %q", msg, tc.mention)
			}
		})
	}
}

func TestUsageExport(t *testing.T) {
	f := newUsageFixture(t)
	from, to := time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC), time.Date(2024, 1, 3, 0, 0, 0, 0, time.UTC)
	t.Run("csv", func(t *testing.T) {
		code, body, h := f.do(t, "GET", f.member, "/api/usage/export?startDate=2024-01-02T00:00:00Z&endDate=2024-01-03T00:00:00Z&format=csv", "")
		if code != 200 {
			t.Fatalf("%d %s", code, body)
		}
		if cd := h.Get("Content-Disposition"); cd != `attachment; filename="cygni-usage-20240102T000000Z-20240103T000000Z.csv"` {
			t.Errorf("Content-Disposition %q", cd)
		}
		recs, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(recs[0], ",") != strings.Join(exportColumns, ",") {
			t.Errorf("header %v", recs[0])
		}
		// 2 projects × 2 deployments × 24 hours, minus hours without usage.
		if n := len(recs) - 1; n == 0 || n > 96 {
			t.Fatalf("%d rows", n)
		}
		sum := decimal.Zero
		cost := decimal.Zero
		places := []int{6, 6, 4, 9, 0, 6, 6, 6, 6, 6, 6, 6} // cpuSeconds … totalCost: one precision per field
		for _, r := range recs[1:] {
			sum = sum.Add(decimal.RequireFromString(r[4]))
			cost = cost.Add(decimal.RequireFromString(r[15]))
			parts := decimal.Zero
			for i, v := range r[4:] {
				dec := 0
				if j := strings.IndexByte(v, '.'); j >= 0 {
					dec = len(v) - j - 1
				}
				if dec != places[i] {
					t.Errorf("%s %s = %q, want %d decimals", r[0], exportColumns[4+i], v, places[i])
				}
				if i >= 6 && i < 11 {
					parts = parts.Add(decimal.RequireFromString(v))
				}
			}
			if r[15] != parts.StringFixed(6) {
				t.Errorf("%s %s %s: totalCost %s, parts add up to %s", r[0], r[1], r[3], r[15], parts.StringFixed(6))
			}
		}
		if want := decimal.NewFromFloat(f.teamTruth(series.CPUSeconds, from, to)); !sum.Equal(want) {
			t.Errorf("Σ cpuSeconds %s, truth %s", sum, want)
		}
		// Each row is rounded to 6 decimals: the sum is within half a micro-dollar per row.
		want := f.expectedCost([]string{"proj_001", "proj_002"}, from, to)
		if d := cost.Sub(want).Abs(); d.GreaterThan(decimal.New(5, -7).Mul(decimal.NewFromInt(int64(len(recs))))) {
			t.Errorf("Σ totalCost %s, want %s", cost, want)
		}
	})
	t.Run("json", func(t *testing.T) {
		code, body, h := f.do(t, "GET", f.member, "/api/usage/export?startDate=2024-01-02T00:00:00Z&endDate=2024-01-03T00:00:00Z", "")
		if code != 200 || h.Get("Content-Type") != "application/json" {
			t.Fatalf("%d %s %s", code, h.Get("Content-Type"), body)
		}
		var rows []map[string]any
		if err := json.Unmarshal(body, &rows); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		sum := 0.0
		for _, r := range rows {
			sum += r["requests"].(float64)
		}
		if want := f.teamTruth(series.Requests, from, to); sum != want {
			t.Errorf("Σ requests %v, truth %v", sum, want)
		}
	})
}

func TestUsageRecommendations(t *testing.T) {
	f := newUsageFixture(t)
	code, body, _ := f.do(t, "GET", f.member, "/api/usage/recommendations", "")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	v := decodeJSON(t, body)
	if _, ok := v["recommendations"].([]any); !ok {
		t.Fatalf("no recommendations list: %s", body)
	}
	t.Logf("%s", body)
}

// TestOpenAPIMatchesRoutes walks the usage routes and checks that each is in the OpenAPI
// document, and that each documented operation is served.
// Every REST route of the server is in openapi.json and every documented route is served. The
// Prometheus API (/api/v1/..., Prometheus' own contract) and /healthz, /readyz, /metrics are not
// part of the document.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	s := New(Options{})
	served := map[string]bool{}
	err := s.router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		path, err := route.GetPathTemplate()
		if err != nil {
			return err
		}
		if strings.HasPrefix(path, "/api/v1/") || (!strings.HasPrefix(path, "/api/") && !strings.HasPrefix(path, "/-/")) {
			return nil
		}
		methods, _ := route.GetMethods()
		for _, m := range methods {
			served[strings.ToLower(m)+" "+path] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi %q, want 3.x", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for p, ops := range doc.Paths {
		for m := range ops {
			documented[m+" "+p] = true
		}
	}
	for r := range served {
		if !documented[r] {
			t.Errorf("route %s is not in openapi.json", r)
		}
	}
	for d := range documented {
		if !served[d] {
			t.Errorf("openapi.json documents %s, which is not served", d)
		}
	}
}

// A range that starts and ends inside weeks and months counts exactly its own minutes: the
// first and last buckets are clipped to the range and labelled with their calendar period.
func TestUsageAnalyticsClipsBucketsToTheRange(t *testing.T) {
	f := newUsageFixture(t)
	from := time.Date(2023, 12, 31, 6, 30, 0, 0, time.UTC) // a Sunday morning: the end of an ISO week
	to := time.Date(2024, 1, 17, 18, 0, 0, 0, time.UTC)    // a Wednesday evening, before usageNow
	for _, tc := range []struct {
		groupBy string
		periods []string // calendar labels of the buckets
	}{
		{"week", []string{"2023-12-25", "2024-01-01", "2024-01-08", "2024-01-15"}},
		{"month", []string{"2023-12-01", "2024-01-01"}},
	} {
		t.Run(tc.groupBy, func(t *testing.T) {
			q := url.Values{"projectId": {"proj_001"}, "startDate": {from.Format(time.RFC3339)}, "endDate": {to.Format(time.RFC3339)}, "groupBy": {tc.groupBy}}
			code, body, _ := f.do(t, http.MethodGet, f.member, "/api/usage/analytics?"+q.Encode(), "")
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, body)
			}
			out := decodeJSON(t, body)
			data := out["data"].([]any)
			if len(data) != len(tc.periods) {
				t.Fatalf("%d buckets, want %d: %s", len(data), len(tc.periods), body)
			}
			for i, e := range data {
				b := e.(map[string]any)
				start, _ := time.Parse(time.RFC3339, b["start"].(string))
				end, _ := time.Parse(time.RFC3339, b["end"].(string))
				if want := tc.periods[i] + "T00:00:00Z"; b["period"] != want {
					t.Errorf("bucket %d period %v, want %s", i, b["period"], want)
				}
				if i == 0 && !start.Equal(from) || i == len(data)-1 && !end.Equal(to) {
					t.Errorf("bucket %d spans [%s, %s); the range is [%s, %s)", i, start, end, from, to)
				}
				want := f.exactTruth("proj_001", series.CPUSeconds, start, end).Round(6)
				if got := decimal.RequireFromString(b["cpuSeconds"].(json.Number).String()); !got.Equal(want) {
					t.Errorf("bucket %d [%s, %s) cpuSeconds %s, truth %s", i, start, end, got, want)
				}
			}
			total := f.exactTruth("proj_001", series.CPUSeconds, from, to).Round(6)
			if got := decimal.RequireFromString(out["totals"].(map[string]any)["cpuSeconds"].(json.Number).String()); !got.Equal(total) {
				t.Errorf("total cpuSeconds %s, truth over the range %s", got, total)
			}
		})
	}
}

// assertPartsAddUp checks the rule of docs/api.md: every part has exactly places decimals and
// the total shown is their sum.
func assertPartsAddUp(t *testing.T, what string, cost map[string]any, places int32) {
	t.Helper()
	sum := decimal.Zero
	for _, k := range []string{"compute", "memory", "bandwidth", "requests", "storage"} {
		s := cost[k].(string)
		if i := strings.IndexByte(s, '.'); i < 0 || int32(len(s)-i-1) != places {
			t.Errorf("%s cost.%s %q does not have %d decimals", what, k, s, places)
		}
		sum = sum.Add(decimal.RequireFromString(s))
	}
	if got := cost["total"]; got != sum.StringFixed(places) {
		t.Errorf("%s cost.total %v, parts add up to %s", what, got, sum.StringFixed(places))
	}
}

// rawTruth is a project's exact truth in whole CloudWatch units (simaws.RawTruth).
func (f *usageFixture) rawTruth(project, name string, from, to time.Time) int64 {
	var n int64
	for _, svc := range f.sim.Services() {
		if svc.Project == project {
			n += f.sim.RawTruth(svc, name, from, to)
		}
	}
	return n
}

// shownTruth is what a team bucket shows under the rule of docs/api.md: each project's exact
// truth rounded once to 6 decimals, summed.
func (f *usageFixture) shownTruth(name string, from, to time.Time) decimal.Decimal {
	sum := decimal.Zero
	for _, p := range []string{"proj_001", "proj_002"} {
		raw := decimal.NewFromInt(f.rawTruth(p, name, from, to))
		switch name {
		case series.MemoryGBHours:
			sum = sum.Add(raw.DivRound(decimal.NewFromInt(61440), 6))
		case series.CPUSeconds:
			sum = sum.Add(raw.Mul(decimal.NewFromInt(60)).DivRound(decimal.NewFromInt(1024), 6))
		}
	}
	return sum
}

// Memory GB-hours and vCPU-seconds of every bucket are each project's exact truth
// (MiB-minutes / 61,440, CPU-unit-minutes × 60 / 1024) rounded once and summed, and the totals
// the sum of the buckets shown, for every groupBy.
func TestUsageAnalyticsExactForEveryGroupBy(t *testing.T) {
	f := newUsageFixture(t)
	for _, tc := range []struct{ groupBy, from, to string }{
		{"hour", "2024-01-10T00:00:00Z", "2024-01-11T00:00:00Z"},
		{"day", "2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z"},
		{"week", "2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z"},
		{"month", "2024-01-01T00:00:00Z", "2024-03-01T00:00:00Z"},
	} {
		t.Run(tc.groupBy, func(t *testing.T) {
			code, body, _ := f.do(t, http.MethodGet, f.member, "/api/usage/analytics?startDate="+tc.from+"&endDate="+tc.to+"&groupBy="+tc.groupBy, "")
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, body)
			}
			v := decodeJSON(t, body)
			totalMem, totalCPU := decimal.Zero, decimal.Zero
			check := func(what string, m map[string]any, mem, cpu decimal.Decimal) {
				if got := decimal.RequireFromString(m["memoryGbHours"].(json.Number).String()); !got.Equal(mem) {
					t.Errorf("%s memoryGbHours %s, truth %s", what, got, mem)
				}
				if got := decimal.RequireFromString(m["cpuSeconds"].(json.Number).String()); !got.Equal(cpu) {
					t.Errorf("%s cpuSeconds %s, truth %s", what, got, cpu)
				}
			}
			for _, e := range v["data"].([]any) {
				b := e.(map[string]any)
				from, _ := time.Parse(time.RFC3339, b["start"].(string))
				to, _ := time.Parse(time.RFC3339, b["end"].(string))
				mem, cpu := f.shownTruth(series.MemoryGBHours, from, to), f.shownTruth(series.CPUSeconds, from, to)
				totalMem, totalCPU = totalMem.Add(mem), totalCPU.Add(cpu)
				check("bucket "+b["start"].(string), b, mem, cpu)
			}
			check("totals", v["totals"].(map[string]any), totalMem, totalCPU)
		})
	}
}
