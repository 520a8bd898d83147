package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cygni/usage/alerting"
	"github.com/cygni/usage/api"
	"github.com/cygni/usage/tsdb"
)

// POST /-/reload re-reads the rule files for an admin token; a broken file is a 400 naming
// file:line while the previous rules keep running.
func TestReloadEndpoint(t *testing.T) {
	db, err := tsdb.Open(nil, prometheus.NewRegistry(), tsdb.Options{Dir: filepath.Join(t.TempDir(), "tsdb")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yml")
	if err := os.WriteFile(good, []byte("groups:\n  - name: g\n    rules:\n      - alert: Budget\n        expr: sum(cygni_project_budget_usd) > 1e9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mgr, err := alerting.New(nil, prometheus.NewRegistry(), alerting.Options{
		Storage: db, RuleFiles: []string{filepath.Join(dir, "*.yml")}, RequiredAlerts: []string{"Budget"},
		Evaluated: func(context.Context, alerting.Evaluation) {},
	})
	if err != nil {
		t.Fatal(err)
	}
	tokens := staticTokens{
		"admin":  {TeamID: "team_a", Role: api.RoleAdmin},
		"member": {TeamID: "team_a", Role: api.RoleMember},
		"adminB": {TeamID: "team_b", Role: api.RoleAdmin}, // an admin, but not of an operator team
	}
	if err := mgr.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Options{OperatorTeams: []string{"team_a"}, AuthDeps: api.AuthDeps{Tokens: tokens}, AlertingDeps: api.AlertingDeps{Rules: mgr},
		ReadyDetails: []func() (string, any){func() (string, any) { return "alerting", mgr.Status() }}}))
	t.Cleanup(srv.Close)
	without := httptest.NewServer(api.New(api.Options{OperatorTeams: []string{"team_a"}, AuthDeps: api.AuthDeps{Tokens: tokens}}))
	t.Cleanup(without.Close)

	post := func(t *testing.T, base, token string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+"/-/reload", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	errCode := func(body map[string]any) string {
		e, _ := body["error"].(map[string]any)
		c, _ := e["code"].(string)
		m, _ := e["message"].(string)
		return c + ": " + m
	}

	for _, tc := range []struct {
		name, base, token string
		status            int
		want              string
	}{
		{"no token", srv.URL, "", 401, "unauthorized"},
		{"member", srv.URL, "member", 403, "forbidden"},
		{"admin of a team that is not an operator", srv.URL, "adminB", 403, "forbidden: this endpoint acts across all teams"},
		{"alerting not running", without.URL, "admin", 503, "alerting_disabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(t, tc.base, tc.token)
			if status != tc.status || !strings.HasPrefix(errCode(body), tc.want) {
				t.Fatalf("status %d body %v; want %d %s", status, body, tc.status, tc.want)
			}
		})
	}
	t.Run("admin reloads", func(t *testing.T) {
		status, body := post(t, srv.URL, "admin")
		files, _ := body["ruleFiles"].([]any)
		if status != 200 || body["status"] != "reloaded" || len(files) != 1 || files[0] != good {
			t.Fatalf("status %d body %v", status, body)
		}
	})
	t.Run("broken file rejected", func(t *testing.T) {
		bad := filepath.Join(dir, "z_bad.yml")
		if err := os.WriteFile(bad, []byte("groups:\n  - name: b\n    rules:\n      - record: y\n        expr: rate(\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		status, body := post(t, srv.URL, "admin")
		if status != 400 || !strings.HasPrefix(errCode(body), "invalid_rule_files: ") || !strings.Contains(errCode(body), bad+":5:") {
			t.Fatalf("status %d body %v", status, body)
		}
		if got := mgr.Files(); len(got) != 1 || got[0] != good {
			t.Fatalf("running files %v; want the previous %s", got, good)
		}
		if got := len(mgr.RuleGroups()); got != 1 {
			t.Fatalf("%d groups running, want 1", got)
		}
		if err := os.Remove(bad); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("set without the required alert rejected", func(t *testing.T) {
		if err := os.WriteFile(good, []byte("groups:\n  - name: g\n    rules:\n      - record: x:sum\n        expr: sum(cygni_project_budget_usd)\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		status, body := post(t, srv.URL, "admin")
		if status != 400 || !strings.Contains(errCode(body), "no rule file defines the alert Budget (alerting.required_alerts)") {
			t.Fatalf("status %d body %v", status, body)
		}
	})
	// /readyz names the running rule files and groups, and the refused reload.
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ready struct {
		Status   string
		Alerting alerting.Status
	}
	if err := json.NewDecoder(resp.Body).Decode(&ready); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || ready.Status != "ready" || len(ready.Alerting.Files) != 1 || ready.Alerting.Groups[0] != good+";g" ||
		!strings.Contains(ready.Alerting.LastReloadError, "Budget") {
		t.Fatalf("/readyz = %d %+v", resp.StatusCode, ready)
	}
}
