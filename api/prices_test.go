package api

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/shopspring/decimal"

	"github.com/cygni/usage/config"
	"github.com/cygni/usage/query"
	"github.com/cygni/usage/rollup"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/store"
	"github.com/cygni/usage/tsdb"
)

// priceFixture serves every endpoint over a real SQLite store, a real TSDB and a real Deriver,
// with the engine reading the overrides from the store as cmd wires it. Team A (admin, member)
// owns proj_a1 and proj_a2, team B owns proj_b1, team ops is an operator team. Each project
// reserves exactly 1 vCPU and 2 GB of memory every minute of December 1 and 2, 2026: $0.06 an
// hour at the default prices.
type priceFixture struct {
	*usageFixture
	db       *tsdb.DB
	d        *rollup.Deriver
	operator string
	opTok    store.Token
	mu       sync.Mutex
	now      time.Time
}

var (
	priceDay0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	priceEnd  = priceDay0.Add(48 * time.Hour)
)

func (f *priceFixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *priceFixture) setNow(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = t
}

// overridesOf is the adapter cmd/cygni-usage wires between the store and the engine.
func overridesOf(st *store.Store) query.OverridesFunc {
	return func(ctx context.Context, projects []string) (map[string]query.ProjectOverrides, error) {
		m, err := st.ProjectPriceOverrides(ctx, projects)
		if err != nil {
			return nil, err
		}
		out := map[string]query.ProjectOverrides{}
		for id, o := range m {
			out[id] = query.ProjectOverrides{Team: o.Team, Project: o.Project}
		}
		return out, nil
	}
}

func newPriceFixture(t *testing.T) *priceFixture {
	t.Helper()
	ctx := context.Background()
	f := &priceFixture{usageFixture: &usageFixture{}, now: priceEnd.Add(30 * time.Minute)}
	db, err := tsdb.Open(nil, nil, tsdb.Options{Dir: t.TempDir(), OutOfOrderWindow: 400 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	f.db = db
	app := db.Appender(ctx)
	for _, p := range []string{"proj_a1", "proj_a2", "proj_b1"} {
		cpu := labels.FromStrings(labels.MetricName, series.CPUSeconds, series.LabelProject, p, series.LabelDeployment, "web")
		mem := labels.FromStrings(labels.MetricName, series.MemoryGBHours, series.LabelProject, p, series.LabelDeployment, "web")
		for m := priceDay0.Add(time.Minute); !m.After(priceEnd); m = m.Add(time.Minute) {
			if _, err := app.Append(0, cpu, m.UnixMilli(), 60); err != nil { // 1 vCPU for 60 s
				t.Fatal(err)
			}
			if _, err := app.Append(0, mem, m.UnixMilli(), 2048.0/1024/60); err != nil { // 2 GB for a minute
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, nil, store.Options{DataDir: t.TempDir(), Now: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	f.st = st
	ten := decimal.NewFromInt(10)
	for _, tm := range []string{"team_a", "team_b", "team_ops"} {
		if _, err := st.CreateTeam(ctx, store.Team{ID: tm, Name: tm}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []store.Project{{ID: "proj_a1", TeamID: "team_a"}, {ID: "proj_a2", TeamID: "team_a"}, {ID: "proj_b1", TeamID: "team_b"}} {
		p.Name, p.BudgetLimit = p.ID, &ten
		if _, err := st.CreateProject(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	tok := func(team, role string) (string, store.Token) {
		s, tk, err := st.CreateToken(ctx, team, role, "test")
		if err != nil {
			t.Fatal(err)
		}
		return s, tk
	}
	f.admin, _ = tok("team_a", "admin")
	f.member, _ = tok("team_a", "member")
	f.other, _ = tok("team_b", "admin")
	f.operator, f.opTok = tok("team_ops", "admin")
	prices := query.NewPrices(config.Default().Pricing)
	d, err := rollup.NewDeriver(nil, nil, rollup.DeriverOptions{Storage: db, Prices: prices, Overrides: overridesOf(st), Projects: st, Now: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	f.d = d
	engine, err := query.New(nil, nil, query.Options{Storage: db, Prices: prices, Overrides: overridesOf(st), Now: f.clock, HourlyRange: d.Range, DailyRange: d.DailyRange})
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{
		OperatorTeams: []string{"team_ops"},
		AuthDeps:      AuthDeps{Tokens: StoreTokens(st)},
		UsageDeps:     UsageDeps{Usage: engine, UsageProjects: st},
		BudgetDeps:    BudgetDeps{Budgets: st},
		PriceDeps:     PriceDeps{PriceOverrides: st, DefaultPrices: prices},
	})
	f.srv = httptest.NewServer(s)
	t.Cleanup(f.srv.Close)
	return f
}

// get returns the body of a 200 answer.
func (f *priceFixture) get(t *testing.T, token, path string) string {
	t.Helper()
	code, b, _ := f.do(t, "GET", token, path, "")
	if code != 200 {
		t.Fatalf("GET %s: %d %s", path, code, b)
	}
	return string(b)
}

// gauge is the latest sample of a project's gauge at the clock's instant.
func (f *priceFixture) gauge(t *testing.T, name, project string) float64 {
	t.Helper()
	now := f.clock()
	q, err := f.db.Querier(now.UnixMilli(), now.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, name), labels.MustNewMatcher(labels.MatchEqual, series.LabelProject, project))
	var v []float64
	for ss.Next() {
		it := ss.At().Iterator(nil)
		for it.Next() != 0 {
			_, x := it.At()
			v = append(v, x)
		}
	}
	if len(v) != 1 {
		t.Fatalf("%s{project=%s} at %s: %v", name, project, now, v)
	}
	return v[0]
}

// teamFigures are every cost figure a team sees: analytics by hour and by day, the summary, the
// budgets, the export.
func (f *priceFixture) teamFigures(t *testing.T, token string, projects ...string) map[string]string {
	t.Helper()
	out := map[string]string{
		"analytics day":  f.get(t, token, "/api/usage/analytics?startDate=2026-12-01T00:00:00Z&endDate=2026-12-03T00:00:00Z&groupBy=day"),
		"analytics hour": f.get(t, token, "/api/usage/analytics?startDate=2026-12-01T00:00:00Z&endDate=2026-12-03T00:00:00Z&groupBy=hour"),
		"summary":        f.get(t, token, "/api/usage/summary"),
		"export":         f.get(t, token, "/api/usage/export?startDate=2026-12-01T00:00:00Z&endDate=2026-12-03T00:00:00Z"),
	}
	for _, p := range projects {
		out["budget "+p] = f.get(t, token, "/api/projects/"+p+"/budget")
	}
	return out
}

// TestPriceOverrideMidMonthForOneTeam: team A's contract lowers the vCPU-hour from $0.05 to
// $0.04 at noon on December 2; proj_a2's own contract prices it at $0.02 from 06:00 that day
// (beating its team's). Team B's analytics, summary, budget, export and derived cost gauges are
// byte for byte what they were; team A's are the hand-computed exact decimals.
func TestPriceOverrideMidMonthForOneTeam(t *testing.T) {
	f := newPriceFixture(t)
	ctx := context.Background()
	if err := f.d.Step(ctx); err != nil {
		t.Fatal(err)
	}
	beforeB := f.teamFigures(t, f.other, "proj_b1")
	gaugeB := f.gauge(t, series.ProjectCostMonthToDateUSD, "proj_b1")
	if gaugeB != 2.88 || f.gauge(t, series.ProjectCostMonthToDateUSD, "proj_a1") != 2.88 {
		t.Fatalf("month-to-date gauges before any override: %v, %v; want 48 h × $0.06 = 2.88", gaugeB, f.gauge(t, series.ProjectCostMonthToDateUSD, "proj_a1"))
	}
	f.want(t, "PUT", f.operator, "/api/teams/team_a/prices", `{"effectiveFrom":"2026-12-02T12:00:00Z","prices":{"vcpuHour":"0.04"}}`, 200, "")
	f.want(t, "PUT", f.operator, "/api/teams/team_a/prices", `{"projectId":"proj_a2","effectiveFrom":"2026-12-02T06:00:00Z","prices":{"vcpuHour":0.02}}`, 200, "")

	// The Deriver writes its gauges at a new instant (the month to date is the same 48 h); the
	// API answers at the first instant again, so that its forecast's window is the same.
	f.setNow(priceEnd.Add(31 * time.Minute))
	if err := f.d.Step(ctx); err != nil {
		t.Fatal(err)
	}
	gauges := map[string]float64{}
	for _, p := range []string{"proj_a1", "proj_a2", "proj_b1"} {
		gauges[p] = f.gauge(t, series.ProjectCostMonthToDateUSD, p)
	}
	if gauges["proj_b1"] != gaugeB {
		t.Errorf("team B's month-to-date gauge %v, was %v", gauges["proj_b1"], gaugeB)
	}
	f.setNow(priceEnd.Add(30 * time.Minute))
	afterB := f.teamFigures(t, f.other, "proj_b1")
	for k, v := range beforeB {
		if afterB[k] != v {
			t.Errorf("team B's %s changed with team A's prices:\nbefore %s\nafter  %s", k, v, afterB[k])
		}
	}

	// Team A by hand: proj_a1 36 h × (0.05 + 0.01) + 12 h × (0.04 + 0.01) = 2.16 + 0.60 = 2.76
	// (compute 1.80 + 0.48 = 2.28, memory 0.48); proj_a2 30 h × 0.06 + 18 h × (0.02 + 0.01) =
	// 1.80 + 0.54 = 2.34 (compute 1.50 + 0.36 = 1.86).
	// The forecast adds the last 24 hours' cost (23.5 h of data: proj_a1 11.5 h × 0.06 + 12 h ×
	// 0.05 = 1.29, proj_a2 5.5 h × 0.06 + 18 h × 0.03 = 0.87) for each of the 41,730 minutes left
	// in December, per 1,440: 2.76 + 37.383125 = 40.14, 2.34 + 25.211875 = 27.55.
	for _, c := range []struct {
		project, total, compute, forecast string
		gauge                             float64
	}{
		{"proj_a1", "2.76", "2.28", "40.14", 2.76},
		{"proj_a2", "2.34", "1.86", "27.55", 2.34},
	} {
		if g := gauges[c.project]; g != c.gauge {
			t.Errorf("%s month-to-date gauge %v, want %v", c.project, g, c.gauge)
		}
		b := decodeJSON(t, []byte(f.get(t, f.admin, "/api/projects/"+c.project+"/budget")))
		bd := b["breakdown"].(map[string]any)
		if got := b["used"].(json.Number).String(); got != c.total {
			t.Errorf("%s budget used %s, want %s", c.project, got, c.total)
		}
		if got := b["forecast"].(json.Number).String(); got != c.forecast {
			t.Errorf("%s budget forecast %s, want %s", c.project, got, c.forecast)
		}
		if got := bd["compute"].(map[string]any)["cost"]; got != c.compute {
			t.Errorf("%s budget compute %v, want %s", c.project, got, c.compute)
		}
	}
	sum := decodeJSON(t, []byte(f.get(t, f.admin, "/api/usage/summary")))
	if got := sum["totalCost"]; got != "5.10" {
		t.Errorf("team A summary totalCost %v, want 2.76 + 2.34 = 5.10", got)
	}
	for _, p := range sum["projects"].([]any) {
		pm := p.(map[string]any)
		want := map[string]string{"proj_a1": "2.76", "proj_a2": "2.34"}[pm["projectId"].(string)]
		if pm["totalCost"] != want {
			t.Errorf("summary %s totalCost %v, want %s", pm["projectId"], pm["totalCost"], want)
		}
	}
	// The hours around each change, each priced by its own sheet (hourly precision: 6 places).
	hourly := decodeJSON(t, []byte(f.get(t, f.admin, "/api/usage/analytics?projectId=proj_a1&startDate=2026-12-02T11:00:00Z&endDate=2026-12-02T13:00:00Z&groupBy=hour")))
	var costs []string
	for _, b := range hourly["data"].([]any) {
		costs = append(costs, b.(map[string]any)["cost"].(map[string]any)["compute"].(string))
	}
	if strings.Join(costs, " ") != "0.050000 0.040000" {
		t.Errorf("proj_a1 compute 11:00 and 12:00: %v, want 0.050000 0.040000", costs)
	}
	days := decodeJSON(t, []byte(f.get(t, f.admin, "/api/usage/analytics?startDate=2026-12-01T00:00:00Z&endDate=2026-12-03T00:00:00Z&groupBy=day")))
	costs = nil
	for _, b := range days["data"].([]any) {
		costs = append(costs, b.(map[string]any)["cost"].(map[string]any)["total"].(string))
	}
	// Dec 1: 2 × 24 × 0.06 = 2.88; Dec 2: proj_a1 12 × 0.06 + 12 × 0.05 = 1.32, proj_a2 6 × 0.06 + 18 × 0.03 = 0.90.
	if strings.Join(costs, " ") != "2.880000 2.220000" {
		t.Errorf("team A daily totals %v, want 2.880000 2.220000", costs)
	}
	// The export's rows price each hour with the project's own sheet.
	exp := f.get(t, f.admin, "/api/usage/export?projectId=proj_a2&startDate=2026-12-02T05:00:00Z&endDate=2026-12-02T07:00:00Z")
	if !strings.Contains(exp, "0.050000") || !strings.Contains(exp, "0.020000") {
		t.Errorf("export of proj_a2 05:00-07:00 lacks the default then the project's compute price:\n%s", exp)
	}
}

// want checks the status and, unless wantBody is "", the exact body.
func (f *priceFixture) want(t *testing.T, method, token, path, body string, wantCode int, wantBody string) {
	t.Helper()
	code, b, _ := f.do(t, method, token, path, body)
	if code != wantCode || (wantBody != "" && strings.TrimSpace(string(b)) != wantBody) {
		t.Fatalf("%s %s %s:\ngot  %d %s\nwant %d %s", method, path, body, code, b, wantCode, wantBody)
	}
}

// TestPricesAPIAuthzInputAndAudit: a team's admin reads its own prices but cannot change them
// (403), nor can a member; another team's are 404; an operator changes any team's (200). Bad
// input is a 400 naming the field; every change is in the team's audit trail with its actor,
// old → new.
func TestPricesAPIAuthzInputAndAudit(t *testing.T) {
	f := newPriceFixture(t)
	set := `{"effectiveFrom":"2026-12-15T00:00:00Z","prices":{"vcpuHour":"0.04"}}`
	const noOverride = `{"teamId":"team_a","effective":[{"effectiveFrom":null,"vcpuHour":"0.05","memoryGbHour":"0.005","egressGb":"0.09","storageGbHour":"0.0001","millionRequests":"0.4"}],"projects":[],"overrides":[]}`
	f.want(t, "GET", f.admin, "/api/teams/team_a/prices", "", 200, noOverride)
	f.want(t, "GET", f.member, "/api/teams/team_a/prices", "", 403, `{"error":{"code":"forbidden","message":"reading the team's prices needs the admin role; the token has member"}}`)
	f.want(t, "GET", f.other, "/api/teams/team_a/prices", "", 404, `{"error":{"code":"not_found","message":"team \"team_a\" not found"}}`)
	f.want(t, "PUT", f.other, "/api/teams/team_a/prices", set, 404, `{"error":{"code":"not_found","message":"team \"team_a\" not found"}}`)
	f.want(t, "PUT", f.member, "/api/teams/team_a/prices", set, 403, "")
	f.want(t, "PUT", f.admin, "/api/teams/team_a/prices", set, 403,
		`{"error":{"code":"forbidden","message":"negotiated prices are a contract: only an operator token (an admin of the configuration's operator_teams) may change them; the token has role admin in team team_a"}}`)
	f.want(t, "DELETE", f.admin, "/api/teams/team_a/prices?effectiveFrom=2026-12-15T00:00:00Z", "", 403, "")
	f.want(t, "PUT", f.operator, "/api/teams/team_nope/prices", set, 404, `{"error":{"code":"not_found","message":"team \"team_nope\" not found"}}`)
	f.want(t, "PUT", f.operator, "/api/teams/team_a/prices", `{"projectId":"proj_b1","effectiveFrom":"2026-12-15T00:00:00Z","prices":{"vcpuHour":"0.04"}}`, 404,
		`{"error":{"code":"not_found","message":"project \"proj_b1\" not found in team team_a"}}`)

	for _, c := range []struct{ name, body, want string }{
		{"unknown price", `{"effectiveFrom":"2026-12-15T00:00:00Z","prices":{"gpuHour":"1"}}`,
			`{"error":{"code":"invalid_parameter","message":"prices.gpuHour: is not a price (known: vcpuHour, memoryGbHour, egressGb, storageGbHour, millionRequests)"}}`},
		{"unknown field", `{"effectiveFrom":"2026-12-15T00:00:00Z","prices":{"vcpuHour":"1"},"discount":5}`,
			`{"error":{"code":"invalid_parameter","message":"body: json: unknown field \"discount\""}}`},
		{"negative price", `{"effectiveFrom":"2026-12-15T00:00:00Z","prices":{"egressGb":"-0.01"}}`,
			`{"error":{"code":"invalid_parameter","message":"prices.egressGb: -0.01 is not a price; it must be between 0 and 1000 USD"}}`},
		{"not a decimal", `{"effectiveFrom":"2026-12-15T00:00:00Z","prices":{"vcpuHour":"cheap"}}`,
			`{"error":{"code":"invalid_parameter","message":"prices.vcpuHour: cheap is not a decimal price (e.g. \"0.04\")"}}`},
		{"malformed date", `{"effectiveFrom":"2026-12-15","prices":{"vcpuHour":"0.04"}}`,
			`{"error":{"code":"invalid_parameter","message":"effectiveFrom: \"2026-12-15\" is not an RFC 3339 instant (e.g. 2026-12-15T00:00:00Z)"}}`},
		{"no date", `{"prices":{"vcpuHour":"0.04"}}`,
			`{"error":{"code":"invalid_parameter","message":"effectiveFrom: is required (RFC 3339, e.g. 2026-12-15T00:00:00Z)"}}`},
		{"no prices", `{"effectiveFrom":"2026-12-15T00:00:00Z","prices":{}}`,
			`{"error":{"code":"invalid_parameter","message":"prices: is required: at least one of vcpuHour, memoryGbHour, egressGb, storageGbHour, millionRequests (DELETE resets to the sheet underneath)"}}`},
		{"bad project id", `{"projectId":"nope","effectiveFrom":"2026-12-15T00:00:00Z","prices":{"vcpuHour":"0.04"}}`,
			`{"error":{"code":"invalid_parameter","message":"projectId: \"nope\" is not a project id (proj_ followed by 1-64 letters, digits, '-' or '_')"}}`},
	} {
		t.Run(c.name, func(t *testing.T) { f.want(t, "PUT", f.operator, "/api/teams/team_a/prices", c.body, 400, c.want) })
	}
	f.want(t, "DELETE", f.operator, "/api/teams/team_a/prices?effectiveFrom=soon", "", 400,
		`{"error":{"code":"invalid_parameter","message":"effectiveFrom: \"soon\" is not an RFC 3339 instant (e.g. 2026-12-15T00:00:00Z)"}}`)
	f.want(t, "DELETE", f.operator, "/api/teams/team_a/prices?effectiveFrom=2027-01-01T00:00:00Z&force=1", "", 400,
		`{"error":{"code":"invalid_parameter","message":"force: is not a parameter of /api/teams/team_a/prices (known: effectiveFrom, projectId)"}}`)
	f.want(t, "GET", f.admin, "/api/teams/team_a/prices?at=now", "", 400,
		`{"error":{"code":"invalid_parameter","message":"at: is not a parameter of /api/teams/team_a/prices (it takes none)"}}`)
	f.want(t, "GET", f.admin, "/api/teams/team_a/prices", "", 200, noOverride) // nothing bad was stored

	// The operator sets the team's, then a project's, then replaces the team's, then resets it.
	f.want(t, "PUT", f.operator, "/api/teams/team_a/prices", set, 200, "")
	f.want(t, "PUT", f.operator, "/api/teams/team_a/prices", `{"projectId":"proj_a2","effectiveFrom":"2026-12-20T00:00:00Z","prices":{"memoryGbHour":"0.004","millionRequests":0.3}}`, 200, "")
	f.want(t, "PUT", f.operator, "/api/teams/team_a/prices", `{"effectiveFrom":"2026-12-15T00:00:00Z","prices":{"vcpuHour":"0.045"}}`, 200, "")
	f.want(t, "DELETE", f.operator, "/api/teams/team_a/prices?effectiveFrom=2027-01-01T00:00:00Z", "", 200, "")
	const sheets = `{"teamId":"team_a","effective":[` +
		`{"effectiveFrom":null,"vcpuHour":"0.05","memoryGbHour":"0.005","egressGb":"0.09","storageGbHour":"0.0001","millionRequests":"0.4"},` +
		`{"effectiveFrom":"2026-12-15T00:00:00Z","vcpuHour":"0.045","memoryGbHour":"0.005","egressGb":"0.09","storageGbHour":"0.0001","millionRequests":"0.4"},` +
		`{"effectiveFrom":"2027-01-01T00:00:00Z","vcpuHour":"0.05","memoryGbHour":"0.005","egressGb":"0.09","storageGbHour":"0.0001","millionRequests":"0.4"}],` +
		`"projects":[{"projectId":"proj_a2","effective":[` +
		`{"effectiveFrom":null,"vcpuHour":"0.05","memoryGbHour":"0.005","egressGb":"0.09","storageGbHour":"0.0001","millionRequests":"0.4"},` +
		`{"effectiveFrom":"2026-12-15T00:00:00Z","vcpuHour":"0.045","memoryGbHour":"0.005","egressGb":"0.09","storageGbHour":"0.0001","millionRequests":"0.4"},` +
		`{"effectiveFrom":"2026-12-20T00:00:00Z","vcpuHour":"0.045","memoryGbHour":"0.004","egressGb":"0.09","storageGbHour":"0.0001","millionRequests":"0.3"},` +
		`{"effectiveFrom":"2027-01-01T00:00:00Z","vcpuHour":"0.05","memoryGbHour":"0.004","egressGb":"0.09","storageGbHour":"0.0001","millionRequests":"0.3"}]}],` +
		`"overrides":[` +
		`{"effectiveFrom":"2026-12-15T00:00:00Z","prices":{"vcpuHour":"0.045"},"updatedAt":"2026-12-03T00:30:00Z"},` +
		`{"effectiveFrom":"2027-01-01T00:00:00Z","prices":{},"updatedAt":"2026-12-03T00:30:00Z"},` +
		`{"projectId":"proj_a2","effectiveFrom":"2026-12-20T00:00:00Z","prices":{"memoryGbHour":"0.004","millionRequests":"0.3"},"updatedAt":"2026-12-03T00:30:00Z"}]}`
	f.want(t, "GET", f.admin, "/api/teams/team_a/prices", "", 200, sheets)
	f.want(t, "GET", f.operator, "/api/teams/team_a/prices", "", 200, sheets)
	f.want(t, "GET", f.other, "/api/teams/team_b/prices", "", 200, strings.ReplaceAll(noOverride, "team_a", "team_b"))

	// The audit trail: the customer's admin sees each change, by the operator's token.
	code, b, _ := f.do(t, "GET", f.admin, "/api/audit?action=price_override", "")
	if code != 200 {
		t.Fatalf("audit: %d %s", code, b)
	}
	var audit struct {
		Events []auditJSON `json:"events"`
	}
	if err := json.Unmarshal(b, &audit); err != nil {
		t.Fatalf("audit %s: %v", b, err)
	}
	want := []struct{ target, old, new string }{
		{"team_a from 2027-01-01T00:00:00Z", `{"vcpuHour":"0.045"}`, `{}`},
		{"team_a from 2026-12-15T00:00:00Z", `{"vcpuHour":"0.04"}`, `{"vcpuHour":"0.045"}`},
		{"proj_a2 from 2026-12-20T00:00:00Z", ``, `{"memoryGbHour":"0.004","millionRequests":"0.3"}`},
		{"team_a from 2026-12-15T00:00:00Z", ``, `{"vcpuHour":"0.04"}`},
	}
	if len(audit.Events) != len(want) {
		t.Fatalf("%d audit events, want %d: %s", len(audit.Events), len(want), b)
	}
	for i, w := range want {
		e := audit.Events[i]
		if e.Action != "price_override" || e.Target != w.target || e.Old != w.old || e.New != w.new || e.Actor != "operator-api" || e.ActorToken != f.opTok.ID {
			t.Errorf("audit[%d] = %+v, want %+v by operator-api with %s", i, e, w, f.opTok.ID)
		}
	}
	// Team B's audit has none of it.
	if _, b, _ := f.do(t, "GET", f.other, "/api/audit?action=price_override", ""); strings.Contains(string(b), "price_override") {
		t.Errorf("team B's audit shows team A's prices: %s", b)
	}
}
