package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/cygni/usage/series"
)

// whoami names the token's team and role, says whether it is an operator's, and gives the
// server's clock.
func TestWhoami(t *testing.T) {
	f := newUsageFixture(t)
	for _, tc := range []struct {
		name, token, want string
	}{
		{"admin", f.admin, `"teamId":"team_a","teamName":"Team A","role":"admin"`},
		{"member", f.member, `"teamId":"team_a","teamName":"Team A","role":"member"`},
		{"other team", f.other, `"teamId":"team_b","teamName":"Team B","role":"admin"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, _ := f.do(t, http.MethodGet, tc.token, "/api/whoami", "")
			if code != http.StatusOK || !strings.Contains(string(body), tc.want) ||
				!strings.Contains(string(body), `"operator":false,"now":"`+usageNow.Format(time.RFC3339)+`"`) {
				t.Errorf("status %d: %s, want %s", code, body, tc.want)
			}
		})
	}
	if code, body, _ := f.do(t, http.MethodGet, "", "/api/whoami", ""); code != http.StatusUnauthorized {
		t.Errorf("without a token: %d %s", code, body)
	}
	if code, body, _ := f.do(t, http.MethodGet, f.admin, "/api/whoami?x=1", ""); code != http.StatusBadRequest || !strings.Contains(string(body), "x: is not a parameter") {
		t.Errorf("unknown parameter: %d %s", code, body)
	}
}

// With deployments=true every project of the analytics answer carries its buckets per
// deployment, equal to the truth of each deployment, and the project's own buckets are unchanged.
func TestUsageAnalyticsByDeployment(t *testing.T) {
	f := newUsageFixture(t)
	from := time.Date(2024, 1, 15, 0, 0, 0, 0, time.UTC)
	path := "/api/usage/analytics?projectId=proj_001&startDate=2024-01-15&endDate=2024-01-18&groupBy=day"
	_, plain, _ := f.do(t, http.MethodGet, f.member, path, "")
	code, body, _ := f.do(t, http.MethodGet, f.member, path+"&deployments=true", "")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	v, p := decodeJSON(t, body), decodeJSON(t, plain)
	pr := v["projects"].([]any)[0].(map[string]any)
	if got, want := jsonString(t, pr["data"]), jsonString(t, p["projects"].([]any)[0].(map[string]any)["data"]); got != want {
		t.Errorf("project buckets changed with deployments=true:\n%s\nwant\n%s", got, want)
	}
	deps := pr["deployments"].([]any)
	if len(deps) != 2 {
		t.Fatalf("%d deployments, want web and worker: %s", len(deps), body)
	}
	for _, d := range deps {
		d := d.(map[string]any)
		name := d["deployment"].(string)
		var svcTruth func(from, to time.Time) float64
		for _, svc := range f.sim.Services() {
			if svc.Project == "proj_001" && svc.Deployment == name {
				svcTruth = func(from, to time.Time) float64 { return f.sim.Truth(svc, series.CPUSeconds, from, to) }
			}
		}
		if svcTruth == nil {
			t.Fatalf("deployment %q is not in the fleet", name)
		}
		data := d["data"].([]any)
		if len(data) != 3 {
			t.Fatalf("%s: %d buckets, want 3", name, len(data))
		}
		for i, b := range data {
			day := from.AddDate(0, 0, i)
			want := decimal.NewFromFloat(svcTruth(day, day.AddDate(0, 0, 1))).Round(6)
			if got := decimal.RequireFromString(b.(map[string]any)["cpuSeconds"].(json.Number).String()); !got.Equal(want) {
				t.Errorf("%s %s cpuSeconds %s, truth %s", name, day.Format(time.DateOnly), got, want)
			}
		}
	}
	if code, body, _ := f.do(t, http.MethodGet, f.member, path+"&deployments=yes", ""); code != http.StatusBadRequest || !strings.Contains(string(body), `deployments: \"yes\" is not true or false`) {
		t.Errorf("deployments=yes: %d %s", code, body)
	}
}

func jsonString(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The console, when given, answers / and /assets/; every API route and the API's own 404 stay.
func TestConsoleMount(t *testing.T) {
	console := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("console " + r.URL.Path)) })
	s := New(Options{Console: console})
	for _, tc := range []struct {
		method, path, want string
		code               int
	}{
		{http.MethodGet, "/", "console /", 200},
		{http.MethodGet, "/assets/app.js", "console /assets/app.js", 200},
		{http.MethodGet, "/healthz", `{"status":"ok"}`, 200},
		{http.MethodGet, "/api/nothing", `"code":"not_found"`, 404},
		{http.MethodGet, "/api/whoami", `"code":"unauthorized"`, 401},
		{http.MethodGet, "/elsewhere", `"code":"not_found"`, 404},
	} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%s %s = %d %s, want %d %s", tc.method, tc.path, rec.Code, rec.Body.String(), tc.code, tc.want)
		}
	}
}
