package api

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/cygni/usage/budget"
	"github.com/cygni/usage/config"
	"github.com/cygni/usage/query"
	"github.com/cygni/usage/store"
	"github.com/cygni/usage/tsdb"
)

type budgetFixture struct {
	*usageFixture
	adminTok, memberTok store.Token
}

// newBudgetFixture serves the threshold, mute, limit and audit endpoints over a real SQLite
// store and an empty TSDB: team A (admin ana@, member dev@) owns proj_001 and proj_002, team B
// owns proj_003. Every token belongs to a member.
func newBudgetFixture(t *testing.T) *budgetFixture {
	t.Helper()
	ctx := context.Background()
	db, err := tsdb.Open(nil, nil, tsdb.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	engine, err := query.New(nil, nil, query.Options{Storage: db, Prices: query.NewPrices(config.Default().Pricing), Now: func() time.Time { return usageNow }})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, nil, store.Options{DataDir: t.TempDir(), Now: func() time.Time { return usageNow }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	for _, tm := range []store.Team{{ID: "team_a", Name: "Team A", BillingEmail: "billing@a.test"}, {ID: "team_b", Name: "Team B"}} {
		if _, err := st.CreateTeam(ctx, tm); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []store.Member{
		{TeamID: "team_a", Email: "ana@a.test", Role: "admin"}, {TeamID: "team_a", Email: "dev@a.test", Role: "member"},
		{TeamID: "team_b", Email: "eve@b.test", Role: "admin"},
	} {
		if err := st.AddMember(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []store.Project{{ID: "proj_001", TeamID: "team_a", Name: "Web shop"}, {ID: "proj_002", TeamID: "team_a", Name: "Batch"}, {ID: "proj_003", TeamID: "team_b", Name: "B"}} {
		if _, err := st.CreateProject(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	f := &budgetFixture{usageFixture: &usageFixture{st: st}}
	tok := func(team, role, member string) (string, store.Token) {
		s, tk, err := st.CreateToken(ctx, team, role, member)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SetTokenMember(ctx, team, tk.ID, member); err != nil {
			t.Fatal(err)
		}
		return s, tk
	}
	f.admin, f.adminTok = tok("team_a", "admin", "ana@a.test")
	f.member, f.memberTok = tok("team_a", "member", "dev@a.test")
	f.other, _ = tok("team_b", "admin", "eve@b.test")
	s := New(Options{AuthDeps: AuthDeps{Tokens: StoreTokens(st)}, UsageDeps: UsageDeps{Usage: engine, UsageProjects: st}, BudgetDeps: BudgetDeps{Budgets: st}})
	f.srv = httptest.NewServer(s)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *budgetFixture) want(t *testing.T, method, token, path, body string, wantCode int, wantBody string) {
	t.Helper()
	code, b, _ := f.do(t, method, token, path, body)
	if code != wantCode || strings.TrimSpace(string(b)) != wantBody {
		t.Fatalf("%s %s %s:\ngot  %d %s\nwant %d %s", method, path, body, code, b, wantCode, wantBody)
	}
}

func TestThresholdsAPI(t *testing.T) {
	f := newBudgetFixture(t)
	def := `{"teamId":"team_a","projectId":"proj_001","source":"default","thresholds":[` +
		`{"percent":80,"basis":"actual","recipients":{"billingContact":true,"admins":false,"emails":[],"webhook":true},"fixed":true},` +
		`{"percent":100,"basis":"actual","recipients":{"billingContact":false,"admins":true,"emails":[],"webhook":true},"fixed":true}]}`
	f.want(t, "GET", f.member, "/api/projects/proj_001/thresholds", "", 200, def)

	// The team default: 50 % forecast to an extra address. The fixed ones stay.
	teamList := `{"thresholds":[{"percent":50,"basis":"forecast","recipients":{"emails":["cfo@a.test"]}}]}`
	f.want(t, "PUT", f.admin, "/api/teams/team_a/thresholds", teamList, 200,
		`{"teamId":"team_a","source":"team","thresholds":[`+
			`{"percent":80,"basis":"actual","recipients":{"billingContact":true,"admins":false,"emails":[],"webhook":true},"fixed":true},`+
			`{"percent":100,"basis":"actual","recipients":{"billingContact":false,"admins":true,"emails":[],"webhook":true},"fixed":true},`+
			`{"percent":50,"basis":"forecast","recipients":{"billingContact":false,"admins":false,"emails":["cfo@a.test"],"webhook":false},"fixed":false}]}`)
	code, b, _ := f.do(t, "GET", f.member, "/api/projects/proj_002/thresholds", "")
	if code != 200 || !strings.Contains(string(b), `"source":"team"`) {
		t.Fatalf("proj_002 inherits the team's list: %d %s", code, b)
	}
	// The project's own list: 50 and 90 % of the actual cost; the 100 % one always goes to the admins.
	f.want(t, "PUT", f.admin, "/api/projects/proj_001/thresholds",
		`{"thresholds":[{"percent":90},{"percent":50.5,"basis":"actual"},{"percent":100,"recipients":{"billingContact":true}}]}`, 200,
		`{"teamId":"team_a","projectId":"proj_001","source":"project","thresholds":[`+
			`{"percent":50.5,"basis":"actual","recipients":{"billingContact":true,"admins":false,"emails":[],"webhook":true},"fixed":false},`+
			`{"percent":80,"basis":"actual","recipients":{"billingContact":true,"admins":false,"emails":[],"webhook":true},"fixed":true},`+
			`{"percent":90,"basis":"actual","recipients":{"billingContact":true,"admins":false,"emails":[],"webhook":true},"fixed":false},`+
			`{"percent":100,"basis":"actual","recipients":{"billingContact":true,"admins":true,"emails":[],"webhook":false},"fixed":true}]}`)

	// Who may: a member reads but cannot change (403); another team gets 404 for both.
	f.want(t, "PUT", f.member, "/api/projects/proj_001/thresholds", teamList, 403,
		`{"error":{"code":"forbidden","message":"changing thresholds needs the admin role; the token has member"}}`)
	f.want(t, "PUT", f.member, "/api/teams/team_a/thresholds", teamList, 403,
		`{"error":{"code":"forbidden","message":"changing thresholds needs the admin role; the token has member"}}`)
	f.want(t, "PUT", f.other, "/api/projects/proj_001/thresholds", teamList, 404,
		`{"error":{"code":"not_found","message":"project \"proj_001\" not found"}}`)
	f.want(t, "GET", f.other, "/api/projects/proj_001/thresholds", "", 404,
		`{"error":{"code":"not_found","message":"project \"proj_001\" not found"}}`)
	f.want(t, "PUT", f.other, "/api/teams/team_a/thresholds", teamList, 404,
		`{"error":{"code":"not_found","message":"team \"team_a\" not found"}}`)

	// Bad input names what is wrong.
	for _, c := range []struct{ body, msg string }{
		{`{}`, `thresholds: is required (a list, or null to inherit)`},
		{`{"thresholds":[{"percent":"50"}]}`, `thresholds[0].percent: \"50\" is not a JSON number (e.g. 50 or 75.5)`},
		{`{"thresholds":[{"percent":0}]}`, `thresholds[0].percent: 0 must be positive`},
		{`{"thresholds":[{"percent":50.555}]}`, `thresholds[0].percent: 50.555 has more than 2 decimals`},
		{`{"thresholds":[{"percent":50,"basis":"daily"}]}`, `thresholds[0].basis: \"daily\" is not actual or forecast`},
		{`{"thresholds":[{"percent":50},{"percent":50.0}]}`, `thresholds[1].percent: 50 % on the actual cost is listed twice`},
		{`{"thresholds":[{"percent":50,"recipients":{"emails":["Ana <ana@a.test>"]}}]}`, `thresholds[0].recipients.emails[0]: \"Ana \u003cana@a.test\u003e\" is not a plain e-mail address`},
		{`{"thresholds":[{"percent":50,"recipient":{}}]}`, `thresholds: json: unknown field \"recipient\"`},
	} {
		f.want(t, "PUT", f.admin, "/api/projects/proj_001/thresholds", c.body, 400, `{"error":{"code":"invalid_parameter","message":"`+c.msg+`"}}`)
	}
	// null clears the project's list: it inherits the team's again.
	code, b, _ = f.do(t, "PUT", f.admin, "/api/projects/proj_001/thresholds", `{"thresholds":null}`)
	if code != 200 || !strings.Contains(string(b), `"source":"team"`) {
		t.Fatalf("cleared: %d %s", code, b)
	}
}

// Every change is in the audit trail with who made it (token and member), old → new; only
// admins read it, only their own team's, and nothing edits it.
func TestAuditTrail(t *testing.T) {
	f := newBudgetFixture(t)
	f.want(t, "PUT", f.admin, "/api/projects/proj_001/thresholds", `{"thresholds":[{"percent":50}]}`, 200,
		`{"teamId":"team_a","projectId":"proj_001","source":"project","thresholds":[`+
			`{"percent":50,"basis":"actual","recipients":{"billingContact":true,"admins":false,"emails":[],"webhook":true},"fixed":false},`+
			`{"percent":80,"basis":"actual","recipients":{"billingContact":true,"admins":false,"emails":[],"webhook":true},"fixed":true},`+
			`{"percent":100,"basis":"actual","recipients":{"billingContact":false,"admins":true,"emails":[],"webhook":true},"fixed":true}]}`)
	if code, b, _ := f.do(t, "POST", f.admin, "/api/usage/limits", `{"projectId":"proj_001","budgetLimit":250}`); code != 200 {
		t.Fatalf("set limit: %d %s", code, b)
	}
	if code, b, _ := f.do(t, "POST", f.admin, "/api/usage/limits", `{"projectId":"proj_001","budgetLimit":300.5}`); code != 200 {
		t.Fatalf("set limit: %d %s", code, b)
	}
	f.want(t, "PUT", f.member, "/api/projects/proj_001/mute", `{"muted":true}`, 200, `{"member":"dev@a.test","muted":true,"projectId":"proj_001"}`)
	f.want(t, "PUT", f.other, "/api/projects/proj_001/mute", `{"muted":true}`, 404, `{"error":{"code":"not_found","message":"project \"proj_001\" not found"}}`)

	code, b, _ := f.do(t, "GET", f.admin, "/api/audit", "")
	if code != 200 {
		t.Fatalf("audit: %d %s", code, b)
	}
	var got struct {
		Events []map[string]any `json:"events"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range got.Events {
		lines = append(lines, strings.Join([]string{e["actorToken"].(string), e["actorMember"].(string), e["actor"].(string), e["action"].(string),
			e["target"].(string), e["old"].(string) + " -> " + e["new"].(string), e["at"].(string)}, " | "))
	}
	at := usageNow.Format(time.RFC3339)
	a, m := f.adminTok.ID, f.memberTok.ID
	wantLines := []string{
		m + " | dev@a.test | api | notification_mute | proj_001 dev@a.test | unmuted -> muted | " + at,
		a + " | ana@a.test | api | budget_limit | proj_001 | 250 -> 300.5 | " + at,
		a + " | ana@a.test | api | budget_limit | proj_001 |  -> 250 | " + at,
		a + " | ana@a.test | api | thresholds | proj_001 |  -> " + `[{"percent":"50","basis":"actual","recipients":{"billingContact":true,"admins":false,"emails":[],"webhook":true}},` +
			`{"percent":"80","basis":"actual","recipients":{"billingContact":true,"admins":false,"emails":[],"webhook":true}},` +
			`{"percent":"100","basis":"actual","recipients":{"billingContact":false,"admins":true,"emails":[],"webhook":true}}] | ` + at,
	}
	if strings.Join(lines, "\n") != strings.Join(wantLines, "\n") {
		t.Fatalf("audit:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(wantLines, "\n"))
	}
	// Paging and filters.
	code, b, _ = f.do(t, "GET", f.admin, "/api/audit?limit=1&action=budget_limit", "")
	if code != 200 || !strings.Contains(string(b), `"old":"250","new":"300.5"`) || !strings.Contains(string(b), `"next":"/api/audit?before=`) || strings.Contains(string(b), "thresholds") {
		t.Fatalf("filtered page: %d %s", code, b)
	}
	// Another team sees none of it; a member may not read it; nobody edits it.
	f.want(t, "GET", f.other, "/api/audit", "", 200, `{"events":[]}`)
	f.want(t, "GET", f.member, "/api/audit", "", 403, `{"error":{"code":"forbidden","message":"this endpoint needs the admin role; the token has member"}}`)
	for _, method := range []string{"POST", "PUT", "DELETE", "PATCH"} {
		if code, _, _ := f.do(t, method, f.admin, "/api/audit", `{}`); code != 405 {
			t.Fatalf("%s /api/audit: %d, want 405", method, code)
		}
	}
	f.want(t, "GET", f.admin, "/api/audit?limit=0", "", 400, `{"error":{"code":"invalid_parameter","message":"limit: \"0\" is not a whole number from 1 to 1000"}}`)
	f.want(t, "GET", f.admin, "/api/audit?team=team_b", "", 400, `{"error":{"code":"invalid_parameter","message":"team: is not a parameter of /api/audit (known: before, limit, action)"}}`)
}

// The team budget: the exact sum of team A's projects against its team budget, by the budget
// package's rules; admin to change, member to read (403 to change), another team 404.
func TestTeamBudgetAPI(t *testing.T) {
	f := newUsageFixture(t)
	monthStart := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	cut := usageNow.Truncate(time.Minute)
	used := f.expectedCost([]string{"proj_001", "proj_002"}, monthStart, cut)
	f2 := &budgetFixture{usageFixture: f}
	code, b, _ := f.do(t, "GET", f.member, "/api/teams/team_a/budget", "")
	// The forecast is the exact sum rounded once; the projects' rounded forecasts may differ by
	// a cent per project.
	fc := decodeJSON(t, b)["forecast"].(json.Number).String()
	if d := decimal.RequireFromString(fc).Sub(forecastOf(t, f)).Abs(); code != 200 || d.GreaterThan(decimal.RequireFromString("0.02")) {
		t.Fatalf("forecast %s, projects' forecasts add up to %s", fc, forecastOf(t, f))
	}
	f2.want(t, "GET", f.member, "/api/teams/team_a/budget", "", 200, `{"teamId":"team_a","limit":null,"used":`+used.StringFixed(2)+
		`,"remaining":null,"percentUsed":null,"status":"none","forecast":`+fc+`,"projects":2,"periodStart":"2024-01-01T00:00:00Z","periodEnd":"2024-02-01T00:00:00Z"}`)
	// A limit that puts the team at 90 %: warning.
	limit := used.Div(decimal.RequireFromString("0.9")).Round(2)
	code, b, _ = f.do(t, "PUT", f.admin, "/api/teams/team_a/budget", `{"limit":`+limit.String()+`}`)
	if code != 200 {
		t.Fatalf("put: %d %s", code, b)
	}
	got := decodeJSON(t, b)
	pct := budget.PercentUsed(used, limit)
	if got["status"] != "warning" || got["limit"].(json.Number).String() != limit.StringFixed(2) || got["percentUsed"].(json.Number).String() != pct.StringFixed(1) ||
		got["remaining"].(json.Number).String() != limit.Sub(used.Round(2)).StringFixed(2) {
		t.Fatalf("team budget %s; want warning at %s %% of %s", b, pct.StringFixed(1), limit)
	}
	f2.want(t, "PUT", f.member, "/api/teams/team_a/budget", `{"limit":10}`, 403, `{"error":{"code":"forbidden","message":"changing the team budget needs the admin role; the token has member"}}`)
	f2.want(t, "PUT", f.other, "/api/teams/team_a/budget", `{"limit":10}`, 404, `{"error":{"code":"not_found","message":"team \"team_a\" not found"}}`)
	f2.want(t, "GET", f.other, "/api/teams/team_a/budget", "", 404, `{"error":{"code":"not_found","message":"team \"team_a\" not found"}}`)
	f2.want(t, "PUT", f.admin, "/api/teams/team_a/budget", `{"limit":-5}`, 400, `{"error":{"code":"invalid_parameter","message":"limit: -5 must be positive"}}`)
	f2.want(t, "PUT", f.admin, "/api/teams/team_a/budget", `{}`, 400, `{"error":{"code":"invalid_parameter","message":"limit: is required (a positive amount in USD, or null for no team budget)"}}`)
	// Exceeded at a limit under the sum; the audit has both changes.
	code, b, _ = f.do(t, "PUT", f.admin, "/api/teams/team_a/budget", `{"limit":`+used.Sub(decimal.NewFromInt(1)).Round(2).String()+`}`)
	if code != 200 || !strings.Contains(string(b), `"status":"exceeded"`) || !strings.Contains(string(b), `"remaining":0.00`) {
		t.Fatalf("exceeded: %d %s", code, b)
	}
	code, b, _ = f.do(t, "GET", f.admin, "/api/audit?action=team_budget", "")
	if code != 200 || strings.Count(string(b), `"action":"team_budget"`) != 2 || !strings.Contains(string(b), `"old":"","new":"`+limit.StringFixed(2)) {
		t.Fatalf("audit: %d %s", code, b)
	}
}

// forecastOf reads team A's forecast as the project budget endpoint reports it, summed exactly.
func forecastOf(t *testing.T, f *usageFixture) decimal.Decimal {
	t.Helper()
	sum := decimal.Zero
	for _, p := range []string{"proj_001", "proj_002"} {
		code, b, _ := f.do(t, "GET", f.member, "/api/projects/"+p+"/budget", "")
		if code != 200 {
			t.Fatalf("budget %s: %d %s", p, code, b)
		}
		sum = sum.Add(decimal.RequireFromString(decodeJSON(t, b)["forecast"].(json.Number).String()))
	}
	return sum
}

// A daily budget: the exact cost since local midnight in the team's time zone.
func TestDailyBudgetAPI(t *testing.T) {
	f := newUsageFixture(t)
	f2 := &budgetFixture{usageFixture: f}
	// The team's time zone: UTC until one is set; any token of the team reads it, an admin sets it.
	f2.want(t, "GET", f.member, "/api/teams/team_a/time-zone", "", 200, `{"teamId":"team_a","timeZone":"UTC"}`)
	f2.want(t, "PUT", f.admin, "/api/teams/team_a/time-zone", `{"timeZone":"America/New_York"}`, 200, `{"teamId":"team_a","timeZone":"America/New_York"}`)
	f2.want(t, "GET", f.member, "/api/teams/team_a/time-zone", "", 200, `{"teamId":"team_a","timeZone":"America/New_York"}`)
	f2.want(t, "PUT", f.admin, "/api/teams/team_a/time-zone", `{"timeZone":"Mars/Base"}`, 400, `{"error":{"code":"invalid_parameter","message":"timeZone: \"Mars/Base\" is not an IANA time zone name (e.g. Europe/Berlin)"}}`)
	f2.want(t, "PUT", f.member, "/api/teams/team_a/time-zone", `{"timeZone":"Europe/Berlin"}`, 403, `{"error":{"code":"forbidden","message":"changing the time zone needs the admin role; the token has member"}}`)
	f2.want(t, "GET", f.other, "/api/teams/team_a/time-zone", "", 404, `{"error":{"code":"not_found","message":"team \"team_a\" not found"}}`)
	f2.want(t, "GET", f.member, "/api/teams/team_a/time-zone?zone=x", "", 400, `{"error":{"code":"invalid_parameter","message":"zone: is not a parameter of /api/teams/team_a/time-zone (it takes none)"}}`)
	f2.want(t, "GET", f.member, "/api/teams/team_a/time-zone", "", 200, `{"teamId":"team_a","timeZone":"America/New_York"}`)
	dayStart := time.Date(2024, 1, 20, 5, 0, 0, 0, time.UTC) // midnight in New York
	used := f.expectedCost([]string{"proj_001"}, dayStart, usageNow.Truncate(time.Minute))
	limit := used.Div(decimal.NewFromInt(2)).Round(2) // spent twice the daily budget
	pct := budget.PercentUsed(used, limit)
	f2.want(t, "PUT", f.admin, "/api/projects/proj_001/daily-budget", `{"dailyLimit":`+limit.String()+`}`, 200,
		`{"projectId":"proj_001","dailyLimit":`+limit.StringFixed(2)+`,"timeZone":"America/New_York","dayStart":"2024-01-20T00:00:00-05:00","dayEnd":"2024-01-21T00:00:00-05:00","used":`+
			used.StringFixed(2)+`,"percentUsed":`+pct.StringFixed(1)+`,"exceeded":true}`)
	f2.want(t, "GET", f.member, "/api/projects/proj_002/daily-budget", "", 200,
		`{"projectId":"proj_002","dailyLimit":null,"timeZone":"America/New_York","dayStart":"2024-01-20T00:00:00-05:00","dayEnd":"2024-01-21T00:00:00-05:00","used":`+
			f.expectedCost([]string{"proj_002"}, dayStart, usageNow.Truncate(time.Minute)).StringFixed(2)+`,"percentUsed":null,"exceeded":false}`)
	f2.want(t, "PUT", f.member, "/api/projects/proj_001/daily-budget", `{"dailyLimit":5}`, 403, `{"error":{"code":"forbidden","message":"changing a daily budget needs the admin role; the token has member"}}`)
	f2.want(t, "PUT", f.other, "/api/projects/proj_001/daily-budget", `{"dailyLimit":5}`, 404, `{"error":{"code":"not_found","message":"project \"proj_001\" not found"}}`)
	f2.want(t, "PUT", f.admin, "/api/projects/proj_001/daily-budget", `{"dailyLimit":"5"}`, 400, `{"error":{"code":"invalid_parameter","message":"dailyLimit: \"5\" is not a JSON number (e.g. 25 or 12.50)"}}`)
	code, b, _ := f.do(t, "GET", f.admin, "/api/audit", "")
	if code != 200 || !strings.Contains(string(b), `"action":"daily_budget","target":"proj_001","old":"","new":"`+limit.StringFixed(2)) ||
		!strings.Contains(string(b), `"action":"time_zone","target":"team_a","old":"","new":"America/New_York"`) {
		t.Fatalf("audit: %d %s", code, b)
	}
}

// A member reads their own mute of a project (what the console's toggle shows) and whoami names
// the member; a team token has none to read, another team's project is 404.
func TestMuteState(t *testing.T) {
	f := newBudgetFixture(t)
	f.want(t, "GET", f.member, "/api/projects/proj_001/mute", "", 200, `{"member":"dev@a.test","muted":false,"projectId":"proj_001"}`)
	f.want(t, "PUT", f.member, "/api/projects/proj_001/mute", `{"muted":true}`, 200, `{"member":"dev@a.test","muted":true,"projectId":"proj_001"}`)
	f.want(t, "GET", f.member, "/api/projects/proj_001/mute", "", 200, `{"member":"dev@a.test","muted":true,"projectId":"proj_001"}`)
	f.want(t, "GET", f.admin, "/api/projects/proj_001/mute", "", 200, `{"member":"ana@a.test","muted":false,"projectId":"proj_001"}`)
	f.want(t, "GET", f.member, "/api/projects/proj_002/mute", "", 200, `{"member":"dev@a.test","muted":false,"projectId":"proj_002"}`)
	f.want(t, "GET", f.other, "/api/projects/proj_001/mute", "", 404, `{"error":{"code":"not_found","message":"project \"proj_001\" not found"}}`)
	f.want(t, "GET", f.member, "/api/projects/proj_001/mute?x=1", "", 400, `{"error":{"code":"invalid_parameter","message":"x: is not a parameter of /api/projects/proj_001/mute (it takes none)"}}`)
	f.want(t, "PUT", f.member, "/api/projects/proj_001/mute", `{"muted":false}`, 200, `{"member":"dev@a.test","muted":false,"projectId":"proj_001"}`)
	f.want(t, "GET", f.member, "/api/projects/proj_001/mute", "", 200, `{"member":"dev@a.test","muted":false,"projectId":"proj_001"}`)

	team, _, err := f.st.CreateToken(context.Background(), "team_a", "member", "ci")
	if err != nil {
		t.Fatal(err)
	}
	f.want(t, "GET", team, "/api/projects/proj_001/mute", "", 400, `{"error":{"code":"no_member","message":"this token belongs to no member; mute with a member's token (cygni-usage token create --member EMAIL)"}}`)

	code, b, _ := f.do(t, "GET", f.member, "/api/whoami", "")
	if code != 200 || !strings.Contains(string(b), `"tokenId":"`+f.memberTok.ID+`","member":"dev@a.test",`) {
		t.Errorf("whoami of a member's token: %d %s", code, b)
	}
	if code, b, _ := f.do(t, "GET", team, "/api/whoami", ""); code != 200 || strings.Contains(string(b), `"member":`) {
		t.Errorf("whoami of a team token: %d %s", code, b)
	}
}
