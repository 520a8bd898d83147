package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"

	"github.com/cygni/usage/api"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/store"
	"github.com/cygni/usage/tsdb"
)

// promFixture is a running API over a real TSDB holding three projects of two teams.
type promFixture struct {
	url     string
	from    time.Time // first period end
	hours   int
	truth   map[string]float64 // project → sum of cygni_cpu_seconds over all periods
	teamA   []string           // team A's projects
	teamB   []string
	tokens  map[string]string // team → token
	emptyTk string            // a team without projects
	db      *tsdb.DB
	groups  []*rules.Group // what the alerting engine would hand out
}

// staticProjects lists the fixture's projects by team.
type staticProjects map[string][]string

func (s staticProjects) ListProjects(_ context.Context, teamID string) ([]store.Project, error) {
	var out []store.Project
	for _, id := range s[teamID] {
		out = append(out, store.Project{ID: id, TeamID: teamID})
	}
	return out, nil
}

// cpuValue is the per-minute amount of project p at minute i: multiples of 1/4, so float sums
// are exact and comparable with ==.
func cpuValue(p, i int) float64 { return float64((i*7+p*3)%13+1) * 0.25 }

func newPromFixture(t testing.TB) *promFixture {
	t.Helper()
	return newPromFixtureLimits(t, api.Limits{})
}

// newPromFixtureLimits is newPromFixture with the API's limits l (zero fields: the defaults).
func newPromFixtureLimits(t testing.TB, l api.Limits) *promFixture {
	t.Helper()
	return newPromFixtureWith(t, func(o *api.Options) { o.Limits = l })
}

// newPromFixtureWith is newPromFixture with the server's options changed by mod.
func newPromFixtureWith(t testing.TB, mod func(*api.Options)) *promFixture {
	t.Helper()
	db, err := tsdb.Open(nil, nil, tsdb.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })

	f := &promFixture{
		db:      db,
		from:    time.Date(2024, 1, 15, 0, 1, 0, 0, time.UTC),
		hours:   2,
		truth:   map[string]float64{},
		teamA:   []string{"proj_a1", "proj_a2.x"}, // a regex metacharacter in an id
		teamB:   []string{"proj_b1"},
		tokens:  map[string]string{"team_a": "tok-a", "team_b": "tok-b"},
		emptyTk: "tok-empty",
	}
	all := append(slices.Clone(f.teamA), f.teamB...)
	app := db.Appender(context.Background())
	for p, proj := range all {
		for i := range f.hours * 60 {
			ts := f.from.Add(time.Duration(i) * time.Minute)
			for _, name := range []string{series.CPUSeconds, series.Requests} {
				ls := labels.FromStrings("__name__", name, series.LabelProject, proj,
					series.LabelDeployment, "web", series.LabelCluster, "prod", series.LabelRegion, "us-east-1")
				v := cpuValue(p, i)
				if name == series.Requests {
					v = float64(100 * (p + 1))
				}
				if _, err := app.Append(0, ls, ts.UnixMilli(), v); err != nil {
					t.Fatal(err)
				}
			}
			f.truth[proj] += cpuValue(p, i)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}

	opts := api.Options{
		AuthDeps: api.AuthDeps{Tokens: staticTokens{
			"tok-a":     {TeamID: "team_a", Role: api.RoleMember},
			"tok-b":     {TeamID: "team_b", Role: api.RoleMember},
			"tok-empty": {TeamID: "team_c", Role: api.RoleAdmin},
		}},
		PromDeps: api.PromDeps{
			PromStorage:    db,
			PromProjects:   staticProjects{"team_a": f.teamA, "team_b": f.teamB},
			PromRuleGroups: func() []*rules.Group { return f.groups },
		},
	}
	mod(&opts)
	srv := api.New(opts)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	f.url = hs.URL
	return f
}

// promResponse is Prometheus' JSON envelope.
type promResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

// call sends a Grafana-style request: POST with a form body, or GET with the query string.
func (f *promFixture) call(t testing.TB, method, token, path string, params url.Values) (int, promResponse) {
	t.Helper()
	var req *http.Request
	var err error
	if method == http.MethodPost {
		req, err = http.NewRequest(method, f.url+path, strings.NewReader(params.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		req, err = http.NewRequest(method, f.url+path+"?"+params.Encode(), nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var pr promResponse
	if resp.StatusCode != http.StatusUnauthorized {
		if err := json.Unmarshal(body, &pr); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, body, err)
		}
	}
	return resp.StatusCode, pr
}

func (f *promFixture) ok(t testing.TB, method, token, path string, params url.Values, into any) {
	t.Helper()
	code, pr := f.call(t, method, token, path, params)
	if code != http.StatusOK || pr.Status != "success" {
		t.Fatalf("%s %s %v: %d %+v", method, path, params, code, pr)
	}
	if err := json.Unmarshal(pr.Data, into); err != nil {
		t.Fatalf("%s %s: decode data %s: %v", method, path, pr.Data, err)
	}
}

type vectorData struct {
	ResultType string `json:"resultType"`
	Result     []struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
		Values [][2]any          `json:"values"`
	} `json:"result"`
}

func sampleValue(t testing.TB, v any) float64 {
	t.Helper()
	s, _ := v.(string)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("sample value %v: %v", v, err)
	}
	return f
}

func TestPromQueryExactSums(t *testing.T) {
	f := newPromFixture(t)
	end := f.from.Add(time.Duration(f.hours*60-1) * time.Minute) // the last period end, an hour boundary
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		t.Run(method, func(t *testing.T) {
			var d vectorData
			f.ok(t, method, "tok-a", "/api/v1/query", url.Values{
				"query": {fmt.Sprintf("sum by (project) (sum_over_time(%s[%dh]))", series.CPUSeconds, f.hours)},
				"time":  {end.Format(time.RFC3339)},
			}, &d)
			if d.ResultType != "vector" {
				t.Fatalf("resultType %q", d.ResultType)
			}
			got := map[string]float64{}
			for _, r := range d.Result {
				got[r.Metric["project"]] = sampleValue(t, r.Value[1])
			}
			want := map[string]float64{}
			for _, p := range f.teamA {
				want[p] = f.truth[p]
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("sums %v, want %v", got, want)
			}
		})
	}
	t.Run("query_range hourly", func(t *testing.T) {
		var d vectorData
		f.ok(t, http.MethodPost, "tok-b", "/api/v1/query_range", url.Values{
			"query": {"sum_over_time(" + series.CPUSeconds + "[1h])"},
			"start": {strconv.FormatInt(f.from.Add(59*time.Minute).Unix(), 10)},
			"end":   {strconv.FormatInt(end.Unix(), 10)},
			"step":  {"1h"},
		}, &d)
		if d.ResultType != "matrix" || len(d.Result) != 1 || d.Result[0].Metric["project"] != "proj_b1" {
			t.Fatalf("result %+v", d)
		}
		var sum float64
		for _, v := range d.Result[0].Values {
			sum += sampleValue(t, v[1])
		}
		if len(d.Result[0].Values) != f.hours || sum != f.truth["proj_b1"] {
			t.Fatalf("hourly %v sum %v, want %d hours summing to %v", d.Result[0].Values, sum, f.hours, f.truth["proj_b1"])
		}
	})
}

// TestPromTeamIsolation tries to reach another team's series through every endpoint.
func TestPromTeamIsolation(t *testing.T) {
	f := newPromFixture(t)
	at := f.from.Add(time.Hour).Format(time.RFC3339)
	queries := []string{
		`cygni_cpu_seconds{project="proj_b1"}`,
		`{project="proj_b1"}`,
		`{project=~"proj_b.*"}`,
		`{project=~".+"}`,
		`{__name__=~".+"}`,
		`{__name__=~".+", project!="proj_a1"}`,
		`{project!~"proj_a.*", __name__=~".+"}`,
		`count by (project) ({__name__=~"cygni_.*"})`,
		`sum by (project) (cygni_cpu_seconds or on() vector(0))`,
	}
	for _, q := range queries {
		t.Run("query "+q, func(t *testing.T) {
			var d vectorData
			f.ok(t, http.MethodPost, "tok-a", "/api/v1/query", url.Values{"query": {q}, "time": {at}}, &d)
			for _, r := range d.Result {
				if p, ok := r.Metric["project"]; ok && !slices.Contains(f.teamA, p) {
					t.Errorf("team A sees %v", r.Metric)
				}
			}
			var e vectorData
			f.ok(t, http.MethodPost, "tok-empty", "/api/v1/query", url.Values{"query": {q}, "time": {at}}, &e)
			for _, r := range e.Result {
				if len(r.Metric) != 0 {
					t.Errorf("a team without projects sees %v", r.Metric)
				}
			}
		})
	}
	t.Run("aggregates hold only the team's samples", func(t *testing.T) {
		// Team A's projects send 100 and 200 requests a minute, team B's 300.
		for tok, want := range map[string]string{"tok-a": "300", "tok-b": "300", "tok-empty": ""} {
			for _, q := range []string{`sum(cygni_requests)`, `sum({__name__="cygni_requests", project=~".*"})`, `sum(cygni_requests{project=~"proj_b1|proj_a1|proj_a2.x"})`} {
				var d vectorData
				f.ok(t, http.MethodGet, tok, "/api/v1/query", url.Values{"query": {q}, "time": {at}}, &d)
				got := ""
				if len(d.Result) == 1 {
					got = d.Result[0].Value[1].(string)
				}
				if got != want {
					t.Errorf("%s: %s = %q, want %q", tok, q, got, want)
				}
			}
		}
	})
	t.Run("series", func(t *testing.T) {
		for _, tok := range []string{"tok-a", "tok-b", "tok-empty"} {
			for _, method := range []string{http.MethodPost, http.MethodGet} {
				var got []map[string]string
				f.ok(t, method, tok, "/api/v1/series", url.Values{"match[]": {`{__name__=~".+"}`, `{project="proj_b1"}`}}, &got)
				projects := map[string]bool{}
				for _, s := range got {
					projects[s["project"]] = true
				}
				want := map[string]bool{}
				switch tok {
				case "tok-a":
					want = map[string]bool{f.teamA[0]: true, f.teamA[1]: true}
				case "tok-b":
					want = map[string]bool{"proj_b1": true}
				}
				if fmt.Sprint(projects) != fmt.Sprint(want) {
					t.Errorf("%s %s: series of %v, want %v", tok, method, projects, want)
				}
			}
		}
	})
	t.Run("label values", func(t *testing.T) {
		for tok, want := range map[string][]string{"tok-a": f.teamA, "tok-b": f.teamB, "tok-empty": {}} {
			var got []string
			f.ok(t, http.MethodGet, tok, "/api/v1/label/project/values", nil, &got)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s: project values %v, want %v", tok, got, want)
			}
			got = nil
			f.ok(t, http.MethodGet, tok, "/api/v1/label/project/values", url.Values{"match[]": {`{project="proj_b1"}`}}, &got)
			if tok != "tok-b" && len(got) != 0 {
				t.Errorf("%s: project values matching proj_b1: %v", tok, got)
			}
		}
	})
	t.Run("labels", func(t *testing.T) {
		for _, method := range []string{http.MethodPost, http.MethodGet} {
			var got []string
			f.ok(t, method, "tok-a", "/api/v1/labels", nil, &got)
			if want := []string{"__name__", "cluster", "deployment", "project", "region"}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s labels %v, want %v", method, got, want)
			}
			got = nil
			f.ok(t, method, "tok-empty", "/api/v1/labels", nil, &got)
			if len(got) != 0 {
				t.Errorf("%s: a team without projects sees labels %v", method, got)
			}
		}
	})
}

func TestPromEndpoints(t *testing.T) {
	f := newPromFixture(t)
	t.Run("buildinfo", func(t *testing.T) {
		var d map[string]any
		f.ok(t, http.MethodGet, "tok-a", "/api/v1/status/buildinfo", nil, &d)
		if d["version"] != api.PromCompatVersion {
			t.Errorf("version %v", d["version"])
		}
		if _, ok := d["features"]; ok {
			t.Errorf("features present (Grafana would take the server for Mimir): %v", d)
		}
	})
	t.Run("metadata", func(t *testing.T) {
		var d map[string][]api.PromMetricMetadata
		f.ok(t, http.MethodGet, "tok-a", "/api/v1/metadata", url.Values{"metric": {series.EgressBytes}}, &d)
		if len(d) != 1 || d[series.EgressBytes][0].Unit != "bytes" || d[series.EgressBytes][0].Type != "gauge" || d[series.EgressBytes][0].Help == "" {
			t.Errorf("metadata %+v", d)
		}
		d = nil
		f.ok(t, http.MethodGet, "tok-a", "/api/v1/metadata", nil, &d)
		for _, name := range series.Usage {
			if len(d[name]) != 1 || d[name][0].Help == "" {
				t.Errorf("no metadata for %s", name)
			}
		}
	})
	t.Run("rules and alerts without an alerting engine", func(t *testing.T) {
		var rules struct {
			Groups []any `json:"groups"`
		}
		f.ok(t, http.MethodGet, "tok-a", "/api/v1/rules", nil, &rules)
		if rules.Groups == nil || len(rules.Groups) != 0 {
			t.Errorf("groups %v", rules.Groups)
		}
		var alerts struct {
			Alerts []any `json:"alerts"`
		}
		f.ok(t, http.MethodGet, "tok-a", "/api/v1/alerts", nil, &alerts)
		if alerts.Alerts == nil || len(alerts.Alerts) != 0 {
			t.Errorf("alerts %v", alerts.Alerts)
		}
	})
	t.Run("format_query", func(t *testing.T) {
		var d string
		f.ok(t, http.MethodPost, "tok-a", "/api/v1/format_query", url.Values{"query": {"sum by(project)(cygni_requests)"}}, &d)
		if d != "sum by (project) (cygni_requests)" {
			t.Errorf("formatted %q", d)
		}
	})
	t.Run("exemplars", func(t *testing.T) {
		var d []any
		f.ok(t, http.MethodPost, "tok-a", "/api/v1/query_exemplars", url.Values{"query": {series.CPUSeconds}, "start": {"0"}, "end": {"1e9"}}, &d)
		if d == nil || len(d) != 0 {
			t.Errorf("exemplars %v", d)
		}
	})
	errorCases := []struct {
		name, method, token, path string
		params                    url.Values
		code                      int
		errType                   string
	}{
		{"no token", http.MethodGet, "", "/api/v1/query", url.Values{"query": {"1"}}, http.StatusUnauthorized, ""},
		{"bad token", http.MethodPost, "nope", "/api/v1/labels", nil, http.StatusUnauthorized, ""},
		{"bad PromQL", http.MethodPost, "tok-a", "/api/v1/query", url.Values{"query": {"sum("}}, http.StatusBadRequest, "bad_data"},
		{"bad time", http.MethodGet, "tok-a", "/api/v1/query", url.Values{"query": {"1"}, "time": {"yesterday"}}, http.StatusBadRequest, "bad_data"},
		{"zero step", http.MethodPost, "tok-a", "/api/v1/query_range", url.Values{"query": {"1"}, "start": {"0"}, "end": {"60"}, "step": {"0"}}, http.StatusBadRequest, "bad_data"},
		{"series without match", http.MethodGet, "tok-a", "/api/v1/series", nil, http.StatusBadRequest, "bad_data"},
		{"bad rule type", http.MethodGet, "tok-a", "/api/v1/rules", url.Values{"type": {"x"}}, http.StatusBadRequest, "bad_data"},
		{"bad metadata limit", http.MethodGet, "tok-a", "/api/v1/metadata", url.Values{"limit": {"x"}}, http.StatusBadRequest, "bad_data"},
	}
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			code, pr := f.call(t, tc.method, tc.token, tc.path, tc.params)
			if code != tc.code || (tc.errType != "" && (pr.Status != "error" || pr.ErrorType != tc.errType || pr.Error == "")) {
				t.Errorf("%d %+v, want %d %s", code, pr, tc.code, tc.errType)
			}
		})
	}
	t.Run("health check 1+1", func(t *testing.T) {
		var d struct {
			ResultType string `json:"resultType"`
			Result     [2]any `json:"result"`
		}
		f.ok(t, http.MethodPost, "tok-empty", "/api/v1/query", url.Values{"query": {"1+1"}}, &d)
		if d.ResultType != "scalar" || d.Result[1] != "2" {
			t.Errorf("1+1 = %+v", d)
		}
	})
}

// TestPromRulesAndAlertsPerTeam evaluates a real alerting rule over every project and checks
// that each team sees the rule but only its own projects' alerts.
func TestPromRulesAndAlertsPerTeam(t *testing.T) {
	f := newPromFixture(t)
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(`sum by (project) (cygni_requests) > 0`)
	if err != nil {
		t.Fatal(err)
	}
	rule := rules.NewAlertingRule("CygniRequests", expr, 0, 0, labels.FromStrings("severity", "info"),
		labels.FromStrings("summary", "requests"), labels.EmptyLabels(), "", false, nil)
	engine := api.NewPromEngine(nil, nil)
	g := rules.NewGroup(rules.GroupOptions{Name: "usage", File: "usage.yml", Interval: time.Minute, Rules: []rules.Rule{rule},
		Opts: &rules.ManagerOptions{QueryFunc: rules.EngineQueryFunc(engine, f.db), AppendableV2: f.db, Queryable: f.db, Context: context.Background(),
			NotifyFunc: func(context.Context, string, ...*rules.Alert) {}}})
	g.Eval(context.Background(), f.from.Add(30*time.Minute))
	if n := len(rule.ActiveAlerts()); n != 3 {
		t.Fatalf("%d active alerts, want one per project (3)", n)
	}
	f.groups = []*rules.Group{g}

	for tok, want := range map[string][]string{"tok-a": f.teamA, "tok-b": f.teamB, "tok-empty": nil} {
		t.Run(tok, func(t *testing.T) {
			var alerts struct {
				Alerts []struct {
					Labels map[string]string `json:"labels"`
					State  string            `json:"state"`
				} `json:"alerts"`
			}
			f.ok(t, http.MethodGet, tok, "/api/v1/alerts", nil, &alerts)
			var got []string
			for _, a := range alerts.Alerts {
				got = append(got, a.Labels["project"])
				if a.State != "firing" {
					t.Errorf("alert %v is %s", a.Labels, a.State)
				}
			}
			slices.Sort(got)
			if fmt.Sprint(got) != fmt.Sprint(want) && len(got)+len(want) > 0 {
				t.Errorf("alerts of %v, want %v", got, want)
			}
			var rl struct {
				Groups []struct {
					Name  string `json:"name"`
					Rules []struct {
						Name   string `json:"name"`
						State  string `json:"state"`
						Type   string `json:"type"`
						Alerts []any  `json:"alerts"`
					} `json:"rules"`
				} `json:"groups"`
			}
			f.ok(t, http.MethodPost, tok, "/api/v1/rules", url.Values{"type": {"alert"}}, &rl)
			if len(rl.Groups) != 1 || len(rl.Groups[0].Rules) != 1 || rl.Groups[0].Rules[0].Type != "alerting" {
				t.Fatalf("rules %+v", rl)
			}
			r := rl.Groups[0].Rules[0]
			wantState := "firing"
			if len(want) == 0 {
				wantState = "inactive"
			}
			if len(r.Alerts) != len(want) || r.State != wantState {
				t.Errorf("rule %s: %d alerts, state %s; want %d, %s", r.Name, len(r.Alerts), r.State, len(want), wantState)
			}
			f.ok(t, http.MethodGet, tok, "/api/v1/rules", url.Values{"type": {"record"}}, &rl)
			if len(rl.Groups) != 0 {
				t.Errorf("recording rules %+v", rl.Groups)
			}
		})
	}
}
