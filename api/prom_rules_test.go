package api_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"

	"github.com/cygni/usage/api"
)

type rulesData struct {
	Groups []struct {
		Name  string `json:"name"`
		File  string `json:"file"`
		Rules []struct {
			Name   string `json:"name"`
			Type   string `json:"type"`
			Alerts []any  `json:"alerts"`
		} `json:"rules"`
	} `json:"groups"`
	GroupNextToken string `json:"groupNextToken"`
}

// TestPromRulesFilters checks rule_group[], file[], rule_name[], match[], exclude_alerts and
// group_limit/group_next_token, and that files show no server directories.
func TestPromRulesFilters(t *testing.T) {
	f := newPromFixtureWith(t, func(o *api.Options) { o.PromRuleDirs = []string{"/var/lib/cygni/rules/shipped", "/etc/cygni/rules"} })
	p := parser.NewParser(parser.Options{})
	engine := api.NewPromEngine(nil, nil)
	mopts := &rules.ManagerOptions{QueryFunc: rules.EngineQueryFunc(engine, f.db), AppendableV2: f.db, Queryable: f.db, Context: context.Background(),
		NotifyFunc: func(context.Context, string, ...*rules.Alert) {}}
	alert := func(name string) rules.Rule {
		expr, err := p.ParseExpr(`sum by (project) (cygni_requests) > 0`)
		if err != nil {
			t.Fatal(err)
		}
		return rules.NewAlertingRule(name, expr, 0, 0, labels.FromStrings("severity", "info"), labels.EmptyLabels(), labels.EmptyLabels(), "", false, nil)
	}
	record := func(name, kind string) rules.Rule {
		expr, err := p.ParseExpr(`sum(cygni_requests)`)
		if err != nil {
			t.Fatal(err)
		}
		return rules.NewRecordingRule(name, expr, labels.FromStrings("kind", kind))
	}
	group := func(name, file string, rs ...rules.Rule) *rules.Group {
		g := rules.NewGroup(rules.GroupOptions{Name: name, File: file, Interval: time.Minute, Rules: rs, Opts: mopts})
		g.Eval(context.Background(), f.from.Add(30*time.Minute))
		return g
	}
	f.groups = []*rules.Group{
		group("budget", "/var/lib/cygni/rules/shipped/budget.yml", alert("BudgetNear"), alert("BudgetOver")),
		group("usage", "/etc/cygni/rules/team/usage.yml", record("cygni:requests:sum", "sum"), alert("Requests")),
		group("other", "/opt/elsewhere/x.yml", record("cygni:other", "other")),
	}
	get := func(v url.Values) rulesData {
		var d rulesData
		f.ok(t, http.MethodGet, "tok-a", "/api/v1/rules", v, &d)
		return d
	}
	names := func(d rulesData) (out []string) {
		for _, g := range d.Groups {
			out = append(out, g.File+":"+g.Name)
			for _, r := range g.Rules {
				out = append(out, r.Name)
			}
		}
		return out
	}
	eq := func(what string, got []string, want ...string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %q, want %q", what, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: %q, want %q", what, got, want)
			}
		}
	}
	eq("all", names(get(nil)), "budget.yml:budget", "BudgetNear", "BudgetOver", "team/usage.yml:usage", "cygni:requests:sum", "Requests", "x.yml:other", "cygni:other")
	eq("rule_group[]", names(get(url.Values{"rule_group[]": {"usage", "other"}})), "team/usage.yml:usage", "cygni:requests:sum", "Requests", "x.yml:other", "cygni:other")
	eq("file[]", names(get(url.Values{"file[]": {"team/usage.yml"}})), "team/usage.yml:usage", "cygni:requests:sum", "Requests")
	eq("absolute file[] reveals nothing", names(get(url.Values{"file[]": {"/etc/cygni/rules/team/usage.yml"}})))
	eq("rule_name[]", names(get(url.Values{"rule_name[]": {"BudgetOver", "cygni:other"}})), "budget.yml:budget", "BudgetOver", "x.yml:other", "cygni:other")
	eq("match[]", names(get(url.Values{"match[]": {`{kind="sum"}`}})), "team/usage.yml:usage", "cygni:requests:sum")

	d := get(url.Values{"type": {"alert"}})
	if n := len(d.Groups[0].Rules[0].Alerts); n != len(f.teamA) {
		t.Fatalf("%d alerts, want team A's %d", n, len(f.teamA))
	}
	d = get(url.Values{"type": {"alert"}, "exclude_alerts": {"true"}})
	for _, g := range d.Groups {
		for _, r := range g.Rules {
			if len(r.Alerts) != 0 {
				t.Fatalf("exclude_alerts: rule %s has alerts %v", r.Name, r.Alerts)
			}
		}
	}

	// Pages of one group, then the next by token, then the last without a token.
	var seen []string
	v := url.Values{"group_limit": {"1"}}
	for range 4 {
		d := get(v)
		if len(d.Groups) != 1 {
			t.Fatalf("page %v: %d groups", v, len(d.Groups))
		}
		seen = append(seen, d.Groups[0].Name)
		if d.GroupNextToken == "" {
			break
		}
		v.Set("group_next_token", d.GroupNextToken)
	}
	eq("pages", seen, "budget", "usage", "other")

	for _, bad := range []url.Values{
		{"group_limit": {"0"}}, {"group_limit": {"x"}}, {"group_next_token": {"abc"}},
		{"group_limit": {"1"}, "group_next_token": {"abc"}}, {"exclude_alerts": {"maybe"}}, {"match[]": {"{"}},
	} {
		code, pr := f.call(t, http.MethodGet, "tok-a", "/api/v1/rules", bad)
		if code != http.StatusBadRequest || pr.Status != "error" || pr.ErrorType != "bad_data" {
			t.Errorf("%v: %d %+v", bad, code, pr)
		}
	}
}
