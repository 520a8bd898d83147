package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/cygni/usage/api"
	"github.com/cygni/usage/store"
)

func newBillingServer(t *testing.T) (*httptest.Server, *store.Store) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, nil, store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	for _, team := range []string{"team_a", "team_b"} {
		if _, err := st.CreateTeam(ctx, store.Team{ID: team, Name: team}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.CreateProject(ctx, store.Project{ID: "proj_" + team[5:], TeamID: team}); err != nil {
			t.Fatal(err)
		}
	}
	hour := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	rows := []store.BillingReport{
		{ProjectID: "proj_a", Metric: "cpu", Hour: hour, Amount: decimal.RequireFromString("7.2"), Quantity: 2, Identifier: "cygni-proj_a-cpu-2026110310-r0", State: store.BillingPending},
		{ProjectID: "proj_a", Metric: "requests", Hour: hour, Amount: decimal.NewFromInt(9), Quantity: 9, Identifier: "cygni-proj_a-requests-2026110310-r0", State: store.BillingPending},
		{ProjectID: "proj_b", Metric: "cpu", Hour: hour, Amount: decimal.NewFromInt(36), Quantity: 10, Identifier: "cygni-proj_b-cpu-2026110310-r0", State: store.BillingPending},
	}
	if err := st.AppendBillingReports(ctx, rows, nil, hour.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, _ := st.ListBillingReports(ctx, store.BillingReportFilter{})
	got[1].State, got[1].LastError, got[1].Attempts = store.BillingFailed, "Stripe answered 400 invalid_request_error: No such customer", 1
	if err := st.UpdateBillingReport(ctx, got[1]); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Options{
		AuthDeps: api.AuthDeps{Tokens: staticTokens{
			"admin-a":  {TeamID: "team_a", Role: api.RoleAdmin},
			"member-a": {TeamID: "team_a", Role: api.RoleMember},
			"admin-b":  {TeamID: "team_b", Role: api.RoleAdmin},
		}},
		BillingDeps: api.BillingDeps{
			BillingReports: st,
			Reconcile: func(_ context.Context, month time.Time, teamID string) (any, error) {
				return map[string]string{"month": month.Format("2006-01"), "team": teamID}, nil
			},
		},
	}))
	t.Cleanup(srv.Close)
	return srv, st
}

func call(t *testing.T, method, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestBillingReportsEndpoint(t *testing.T) {
	srv, st := newBillingServer(t)
	// The API's ids are sealed row ids, per team: team B cannot name team A's rows.
	row1, row2 := st.BillingReportRef("team_a", 1), st.BillingReportRef("team_a", 2)
	forged := st.BillingReportRef("team_b", 2)
	for _, tc := range []struct {
		name, method, path, token string
		status                    int
		contains                  []string
	}{
		{"team admin sees its rows", "GET", "/api/billing/reports", "admin-a", 200,
			[]string{`"projectId":"proj_a"`, `"state":"failed"`, `"lastError":"Stripe answered 400 invalid_request_error: No such customer"`, `"counts":{`, `"failed":1`, `"pending":1`}},
		{"filter by state", "GET", "/api/billing/reports?state=failed&month=2026-11", "admin-a", 200, []string{`"metric":"requests"`}},
		{"member is forbidden", "GET", "/api/billing/reports", "member-a", 403, []string{`"code":"forbidden"`}},
		{"bad state", "GET", "/api/billing/reports?state=lost", "admin-a", 400, []string{`"state: \"lost\" is not a state`}},
		{"bad month", "GET", "/api/billing/reports?month=2026-13", "admin-a", 400, []string{`month: \"2026-13\" is not a month`}},
		{"bad limit", "GET", "/api/billing/reports?limit=0", "admin-a", 400, []string{`limit: `}},
		{"team admin sees opaque ids", "GET", "/api/billing/reports", "admin-a", 200, []string{`"id":"` + row1 + `"`, `"id":"` + row2 + `"`}},
		{"retry of another team's row", "POST", "/api/billing/reports/" + row2 + "/retry", "admin-b", 404, []string{`"code":"not_found"`}},
		{"retry with an id sealed for another team", "POST", "/api/billing/reports/" + forged + "/retry", "admin-a", 404, []string{`"code":"not_found"`}},
		{"retry by row number", "POST", "/api/billing/reports/2/retry", "admin-a", 400, []string{`id: \"2\" is not a billing report id`}},
		{"retry of a pending row", "POST", "/api/billing/reports/" + row1 + "/retry", "admin-a", 409, []string{`"code":"not_retryable"`}},
		{"retry with a bad id", "POST", "/api/billing/reports/x/retry", "admin-a", 400, []string{`id: \"x\"`}},
		{"retry of the failed row", "POST", "/api/billing/reports/" + row2 + "/retry", "admin-a", 200, []string{`{"id":"` + row2 + `","state":"pending"}`}},
		{"reconcile", "GET", "/api/billing/reconcile?month=2026-11", "admin-b", 200, []string{`{"month":"2026-11","team":"team_b"}`}},
		{"reconcile without month", "GET", "/api/billing/reconcile", "admin-a", 400, []string{`month: is required`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := call(t, tc.method, srv.URL+tc.path, tc.token)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			for _, c := range tc.contains {
				if !strings.Contains(body, c) {
					t.Errorf("body lacks %s:\n%s", c, body)
				}
			}
		})
	}
	// Team B sees only its row.
	_, body := call(t, "GET", srv.URL+"/api/billing/reports", "admin-b")
	var out struct {
		Reports []map[string]any `json:"reports"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Reports) != 1 || out.Reports[0]["projectId"] != "proj_b" {
		t.Errorf("team_b sees %v", out.Reports)
	}
	want := []string{"id", "projectId", "metric", "hour", "revision", "amount", "quantity", "identifier", "state", "attempts", "nextAttemptAt", "lastError", "stripeRef", "createdAt", "sentAt"}
	for _, k := range want {
		if _, ok := out.Reports[0][k]; !ok {
			t.Errorf("report lacks %q: %v", k, out.Reports[0])
		}
	}
}
