package deploy_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// serviceBinary builds ../cmd/cygni-usage (the service's module) once per test run.
func serviceBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "cygni-deploy-test-"); buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, "cygni-usage"), "./cmd/cygni-usage")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build cygni-usage: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "cygni-usage")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// provisionedDatasources reads the data-source provisioning and returns type by uid.
func provisionedDatasources(t testing.TB) map[string]string {
	t.Helper()
	var ds struct {
		Datasources []struct {
			Name, UID, Type, URL string
			JSONData             map[string]any    `yaml:"jsonData"`
			SecureJSONData       map[string]string `yaml:"secureJsonData"`
		}
	}
	readYAML(t, "grafana/provisioning/datasources/cygni.yml", &ds)
	uids := map[string]string{}
	for _, d := range ds.Datasources {
		uids[d.UID] = d.Type
		if d.URL != "http://cygni-usage:8080" {
			t.Errorf("%s points at %q", d.Name, d.URL)
		}
		switch d.Type {
		case pluginID(t):
			if d.SecureJSONData["apiToken"] == "" {
				t.Errorf("%s has no apiToken", d.Name)
			}
		case "prometheus":
			if d.JSONData["httpHeaderName1"] != "Authorization" || !strings.HasPrefix(d.SecureJSONData["httpHeaderValue1"], "Bearer ") {
				t.Errorf("%s sends no bearer token: %+v %+v", d.Name, d.JSONData, d.SecureJSONData)
			}
		default:
			t.Errorf("unexpected data source type %q", d.Type)
		}
	}
	if len(uids) != 2 {
		t.Fatalf("data sources %v, want the plugin and Prometheus", uids)
	}
	return uids
}

// The plugin's query types and the fields that select projects.
var (
	pluginQueryTypes   = []string{"usage", "budget", "promql", "notifications", "variable"}
	projectQueryTypes  = []string{"usage", "budget", "notifications"}
	budgetFields       = []string{"", "used", "limit", "remaining", "percentUsed", "forecast"}
	notificationTypes  = []string{"budget_warning", "budget_exceeded", "forecast_exceeded", "usage_anomaly", "alert_resolved"}
	grafanaGlobalNames = []string{"__interval", "__interval_ms", "__range", "__range_s", "__rate_interval", "__all", "__field", "__data", "__url_time_range", "__value", "__series", "__name", "__org", "__user", "__dashboard", "__from", "__to", "__timeFilter"}
)

type dashPanel struct {
	ID         int
	Title      string
	Type       string
	Repeat     string
	Datasource *struct{ Type, UID string }
	Targets    []map[string]any
	Panels     []dashPanel
	Raw        json.RawMessage `json:"-"`
}

type dashboard struct {
	UID, Title string
	Templating struct {
		List []struct {
			Name, Type string
			Datasource *struct{ Type, UID string }
			Query      any
			Multi      bool
			IncludeAll bool   `json:"includeAll"`
			AllValue   string `json:"allValue"`
		}
	}
	Annotations struct {
		List []struct {
			Name       string
			BuiltIn    int `json:"builtIn"`
			Datasource *struct{ Type, UID string }
			Target     map[string]any
		}
	}
	Panels []dashPanel
}

func readDashboard(t testing.TB) (dashboard, string) {
	t.Helper()
	raw, err := os.ReadFile("dashboards/cygni-usage.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	return d, string(raw)
}

// variableRef matches $name, ${name}, ${name:format} and [[name]] in dashboard strings.
var variableRef = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?:[.:][^}]*)?\}|\$([A-Za-z0-9_]+)|\[\[([A-Za-z0-9_]+)\]\]`)

func TestDashboard(t *testing.T) {
	uids := provisionedDatasources(t)
	var providers struct {
		Providers []struct {
			Options struct{ Path string }
		}
	}
	readYAML(t, "grafana/provisioning/dashboards/cygni.yml", &providers)
	if len(providers.Providers) != 1 || providers.Providers[0].Options.Path != "/var/lib/grafana/dashboards" {
		t.Errorf("dashboard providers %+v", providers)
	}
	d, raw := readDashboard(t)
	if d.Title != "Cygni usage" || d.UID != "cygni-usage" {
		t.Errorf("dashboard %q (uid %q)", d.Title, d.UID)
	}

	// Variables: the projects and deployments come from the plugin's variable queries.
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		if v.Datasource == nil || uids[v.Datasource.UID] != v.Datasource.Type {
			t.Errorf("variable %s uses data source %+v, not a provisioned one", v.Name, v.Datasource)
		}
		q, _ := v.Query.(map[string]any)
		want := map[string]string{"project": "projects", "deployment": "deployments"}[v.Name]
		if q["queryType"] != "variable" || q["variable"] != want {
			t.Errorf("variable %s queries %v, want the plugin's %s variable query", v.Name, v.Query, want)
		}
		if !v.Multi || !v.IncludeAll || v.AllValue != ".*" {
			t.Errorf("variable %s: multi %v, includeAll %v, allValue %q; want multi-value with All = .*", v.Name, v.Multi, v.IncludeAll, v.AllValue)
		}
	}
	if !vars["project"] || !vars["deployment"] {
		t.Fatalf("variables %v lack project or deployment", vars)
	}

	// Every reference to a variable names one the dashboard defines (or Grafana's own).
	for _, m := range variableRef.FindAllStringSubmatch(raw, -1) {
		name := m[1] + m[2] + m[3]
		if !vars[name] && !slices.Contains(grafanaGlobalNames, name) {
			t.Errorf("the dashboard refers to the undefined variable $%s", name)
		}
	}

	var all []dashPanel
	var walk func([]dashPanel, string)
	walk = func(ps []dashPanel, repeat string) {
		for _, p := range ps {
			if p.Type == "row" {
				walk(p.Panels, p.Repeat)
				continue
			}
			if p.Repeat == "" {
				p.Repeat = repeat
			}
			all = append(all, p)
		}
	}
	walk(d.Panels, "")
	ids := map[int]bool{}
	kinds := map[string]bool{}
	for _, p := range all {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Datasource == nil || uids[p.Datasource.UID] != p.Datasource.Type {
			t.Errorf("panel %q uses data source %+v, not a provisioned one", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			checkTarget(t, "panel "+p.Title, uids, q)
			if qt, _ := q["queryType"].(string); qt != "" {
				kinds[qt] = true
			}
		}
		kinds[p.Type] = true
	}
	for _, want := range []string{"usage", "budget", "promql", "notifications", "gauge", "timeseries", "table", "piechart"} {
		if !kinds[want] {
			t.Errorf("the dashboard has no %s panel or query", want)
		}
	}

	// The panels the dashboard promises.
	find := func(title string) *dashPanel {
		for i := range all {
			if all[i].Title == title {
				return &all[i]
			}
		}
		t.Errorf("no panel %q", title)
		return nil
	}
	if p := find("Budget vs spend over time"); p != nil {
		exprs := fmt.Sprint(p.Targets)
		for _, s := range []string{"cygni_project_cost_month_to_date_usd", "cygni_project_budget_usd"} {
			if !strings.Contains(exprs, s) {
				t.Errorf("budget vs spend does not plot %s", s)
			}
		}
	}
	if p := find("Cost by resource"); p != nil && !strings.Contains(fmt.Sprint(p.Targets), "sum by (resource)") {
		t.Errorf("cost by resource: %v", p.Targets)
	}
	if p := find("Notification history"); p != nil && (p.Type != "table" || p.Targets[0]["queryType"] != "notifications") {
		t.Errorf("notification history: a %s of %v", p.Type, p.Targets)
	}
	// Per-project drill-down: data links that set the project variable, and a row per project.
	if !strings.Contains(raw, "/d/cygni-usage/cygni-usage?var-project=${__field.labels.project}&${__url_time_range}") {
		t.Error("no data link drills down to a project")
	}
	drill := false
	for _, p := range d.Panels {
		drill = drill || (p.Type == "row" && p.Repeat == "project" && len(p.Panels) > 0)
	}
	if !drill {
		t.Error("no row repeated per project")
	}

	// Annotations from the notification history.
	anno := 0
	for _, a := range d.Annotations.List {
		if a.BuiltIn == 1 {
			continue
		}
		if a.Datasource == nil || uids[a.Datasource.UID] != a.Datasource.Type {
			t.Errorf("annotation %q uses data source %+v", a.Name, a.Datasource)
		}
		checkTarget(t, "annotation "+a.Name, uids, a.Target)
		if a.Target["queryType"] == "notifications" {
			anno++
		}
	}
	if anno == 0 {
		t.Error("no annotation shows notifications")
	}
}

// checkTarget checks one query of the dashboard: a known query of the plugin or a PromQL query,
// and on the project variable.
func checkTarget(t testing.TB, where string, uids map[string]string, q map[string]any) {
	t.Helper()
	ds, _ := q["datasource"].(map[string]any)
	typ := ""
	if ds != nil {
		typ, _ = ds["type"].(string)
		if uid, _ := ds["uid"].(string); uids[uid] != typ {
			t.Errorf("%s: query %v uses data source %v", where, q["refId"], ds)
		}
	}
	qt, _ := q["queryType"].(string)
	expr, _ := q["expr"].(string)
	if typ == "prometheus" || qt == "promql" {
		if !strings.Contains(expr, `project=~"$project"`) {
			t.Errorf("%s: PromQL %q is not restricted to $project", where, expr)
		}
		return
	}
	if !slices.Contains(pluginQueryTypes, qt) {
		t.Errorf("%s: query type %q is not one of %v", where, qt, pluginQueryTypes)
		return
	}
	if slices.Contains(projectQueryTypes, qt) && q["project"] != "$project" {
		t.Errorf("%s: %s query on project %q, not $project", where, qt, q["project"])
	}
	if f, _ := q["field"].(string); qt == "budget" && !slices.Contains(budgetFields, f) {
		t.Errorf("%s: budget field %q", where, f)
	}
	if types, ok := q["types"].([]any); ok {
		for _, ty := range types {
			if !slices.Contains(notificationTypes, ty.(string)) {
				t.Errorf("%s: notification type %v", where, ty)
			}
		}
	}
}

// shippedRule is an alert or a recording rule of cygni-usage's rule files.
type shippedRule struct {
	Alert       string
	Record      string
	Expr        string
	For         string
	Labels      map[string]string
	Annotations map[string]string
}

// shippedRules returns the shipped alerts by name and the recording rules' expressions by the
// series they record.
func shippedRules(t testing.TB) (map[string]shippedRule, map[string]string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(root, "alerting", "rules", "*.yml"))
	if len(files) == 0 {
		t.Fatal("no shipped rule files")
	}
	out, recorded := map[string]shippedRule{}, map[string]string{}
	for _, f := range files {
		var rf struct {
			Groups []struct{ Rules []shippedRule }
		}
		readYAML(t, f, &rf)
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				if r.Alert != "" {
					out[r.Alert] = r
				}
				if r.Record != "" {
					recorded[r.Record] = r.Expr
				}
			}
		}
	}
	return out, recorded
}

// TestAlertingProvisioning checks Grafana's alert-rule provisioning against the shipped rule
// files: one Grafana rule per shipped alert, with its severity, type, `for` and threshold, on
// the provisioned data sources, and the contact points the notification policy names.
func TestAlertingProvisioning(t *testing.T) {
	uids := provisionedDatasources(t)
	var prov struct {
		APIVersion int `yaml:"apiVersion"`
		Groups     []struct {
			OrgID    int `yaml:"orgId"`
			Name     string
			Folder   string
			Interval string
			Rules    []struct {
				UID       string
				Title     string
				Condition string
				For       string
				Data      []struct {
					RefID         string `yaml:"refId"`
					DatasourceUID string `yaml:"datasourceUid"`
					Model         map[string]any
				}
				NoDataState  string `yaml:"noDataState"`
				ExecErrState string `yaml:"execErrState"`
				Labels       map[string]string
				Annotations  map[string]string
			}
		}
		ContactPoints []struct {
			Name      string
			Receivers []struct {
				UID, Type string
				Settings  map[string]any
			}
		} `yaml:"contactPoints"`
		Policies []struct {
			Receiver string
			Routes   []struct {
				Receiver string
			}
		}
	}
	readYAML(t, "grafana/provisioning/alerting/cygni.yml", &prov)
	if prov.APIVersion != 1 {
		t.Errorf("apiVersion %d", prov.APIVersion)
	}
	shipped, recorded := shippedRules(t)
	seen := map[string]bool{}
	ruleUIDs := map[string]bool{}
	for _, g := range prov.Groups {
		if g.OrgID != 1 || g.Folder == "" {
			t.Errorf("group %s: org %d folder %q", g.Name, g.OrgID, g.Folder)
		}
		if d, err := time.ParseDuration(g.Interval); err != nil || d <= 0 {
			t.Errorf("group %s: interval %q", g.Name, g.Interval)
		}
		for _, r := range g.Rules {
			if ruleUIDs[r.UID] || r.UID == "" {
				t.Errorf("rule %s: uid %q missing or used twice", r.Title, r.UID)
			}
			ruleUIDs[r.UID] = true
			s, ok := shipped[r.Title]
			if !ok {
				t.Errorf("rule %q is not an alert of the shipped rule files", r.Title)
				continue
			}
			seen[r.Title] = true
			if r.Labels["severity"] != s.Labels["severity"] || r.Labels["type"] != s.Annotations["type"] || r.Labels["threshold"] != s.Labels["threshold"] {
				t.Errorf("%s: severity %q type %q threshold %q, the shipped rule has %q %q %q", r.Title, r.Labels["severity"], r.Labels["type"], r.Labels["threshold"],
					s.Labels["severity"], s.Annotations["type"], s.Labels["threshold"])
			}
			if dur(t, r.For) != dur(t, s.For) {
				t.Errorf("%s: for %q, the shipped rule holds %q", r.Title, r.For, s.For)
			}
			if r.Annotations["summary"] == "" {
				t.Errorf("%s has no summary", r.Title)
			}
			refs := map[string]bool{}
			var exprs []string
			for _, q := range r.Data {
				refs[q.RefID] = true
				if q.Model["refId"] != q.RefID {
					t.Errorf("%s: query %s has model refId %v", r.Title, q.RefID, q.Model["refId"])
				}
				switch {
				case q.DatasourceUID == "__expr__":
					e, _ := q.Model["expression"].(string)
					for _, m := range regexp.MustCompile(`\$([A-Z])`).FindAllStringSubmatch(e, -1) {
						if !refs[m[1]] {
							t.Errorf("%s: expression %q refers to %s before it is defined", r.Title, e, m[1])
						}
					}
					exprs = append(exprs, e)
				case uids[q.DatasourceUID] == pluginID(t):
					if q.Model["queryType"] != "promql" || q.Model["numeric"] != true || !regexp.MustCompile(`^sum by \(project[,)]`).MatchString(q.Model["expr"].(string)) {
						t.Errorf("%s: query %s %v is not a numeric PromQL query summed by project", r.Title, q.RefID, q.Model)
					}
					exprs = append(exprs, q.Model["expr"].(string))
				default:
					t.Errorf("%s: query %s on data source %q, not a provisioned one", r.Title, q.RefID, q.DatasourceUID)
				}
			}
			if !refs[r.Condition] {
				t.Errorf("%s: condition %q is no query of the rule", r.Title, r.Condition)
			}
			// The shipped expression's series and thresholds are in the Grafana rule: a series by
			// name, a recorded series by name or by what it records, a knob (a recorded constant,
			// vector(N), which the team-scoped API does not show) by its value.
			all := strings.ReplaceAll(strings.Join(exprs, " "), " ", "")
			for _, m := range regexp.MustCompile(`cygni[:_][a-z_:]+|(?:>=|>|<) *[0-9.]+`).FindAllString(s.Expr, -1) {
				m = strings.ReplaceAll(m, " ", "")
				want := []string{m}
				if rec, ok := recorded[m]; ok {
					if k := regexp.MustCompile(`^vector\(([0-9.]+)\)$`).FindStringSubmatch(strings.TrimSpace(rec)); k != nil {
						want = []string{k[1]}
					} else {
						want = append(want, regexp.MustCompile(`cygni_[a-z_]+`).FindAllString(rec, -1)...)
					}
				}
				if !slices.ContainsFunc(want, func(w string) bool { return strings.Contains(all, w) }) {
					t.Errorf("%s: the shipped rule's %q is not in the Grafana rule %q", r.Title, m, all)
				}
			}
		}
	}
	// Team alerts read series labelled team, not project, which a team's data source does not
	// answer with; the file says so, and cygni-usage raises them.
	raw, err := os.ReadFile("grafana/provisioning/alerting/cygni.yml")
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range shipped {
		switch {
		case seen[name]:
		case strings.HasPrefix(s.Expr, "cygni:team_") && strings.Contains(string(raw), "# Not here: TeamBudgetWarning and TeamBudgetExceeded."):
		default:
			t.Errorf("the shipped alert %s has no Grafana rule", name)
		}
	}
	points := map[string]bool{}
	for _, c := range prov.ContactPoints {
		points[c.Name] = true
		for _, r := range c.Receivers {
			if r.Type != "email" || r.Settings["addresses"] == "" {
				t.Errorf("contact point %s: %+v", c.Name, r)
			}
		}
	}
	if len(prov.Policies) != 1 || !points[prov.Policies[0].Receiver] {
		t.Fatalf("policies %+v do not route to the contact points %v", prov.Policies, points)
	}
	for _, r := range prov.Policies[0].Routes {
		if !points[r.Receiver] {
			t.Errorf("route to unknown contact point %q", r.Receiver)
		}
	}
}

func dur(t testing.TB, s string) time.Duration {
	t.Helper()
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("duration %q: %v", s, err)
	}
	return d
}

func TestPluginJSON(t *testing.T) {
	var p struct {
		ID, Type, Executable string
		Backend, Alerting    bool
		Annotations          bool
	}
	raw, err := os.ReadFile(filepath.Join(root, "grafana-plugin/src/plugin.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	if p.ID != "cygni-usage-datasource" || p.Type != "datasource" || !p.Backend || !p.Alerting || !p.Annotations || p.Executable != "gpx_usage" {
		t.Errorf("plugin.json %+v", p)
	}
}
