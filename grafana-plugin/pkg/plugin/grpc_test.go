package plugin_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/shopspring/decimal"
)

// TestPluginOverGRPC drives the built plugin binary over gRPC against a running cygni-usage and
// checks that every frame carries the service's exact numbers, in shapes Grafana's panels,
// variables, annotations and alert rules accept.
func TestPluginOverGRPC(t *testing.T) {
	svc := startService(t)
	plug := startPlugin(t)
	pcA := pluginContext(svc.url, svc.tokenA)
	pcB := pluginContext(svc.url, svc.tokenB)
	// Whole hours of the backfill: collected completely before the service was ready.
	from, to := svc.from.Truncate(time.Hour).Add(time.Hour), svc.to.Truncate(time.Hour)
	window := request{from: from, to: to}

	// The window has usage of every project of team A (asserted against the simulator's
	// truth, not assumed), so that no comparison below is between two empty answers.
	simURL := logValue(svc.stderr.String(), "simulated AWS endpoint started", "url")
	truth := func(project, series string) float64 {
		t.Helper()
		var v struct{ Value float64 }
		resp, err := http.Get(simURL + "/_sim/truth?" + url.Values{"project": {project}, "series": {series}, "from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("truth of %s %s: %d %v", project, series, resp.StatusCode, err)
		}
		return v.Value
	}
	for _, p := range []string{"proj_001", "proj_002"} {
		if truth(p, "cygni_requests") <= 0 || truth(p, "cygni_cpu_seconds") <= 0 {
			t.Fatalf("%s has no usage in %s..%s: pick another window", p, from, to)
		}
	}

	t.Run("CheckHealth", func(t *testing.T) {
		closed, _ := net.Listen("tcp", "127.0.0.1:0")
		deadURL := "http://" + closed.Addr().String()
		_ = closed.Close()
		for _, tc := range []struct {
			name       string
			pc         backend.PluginContext
			status     backend.HealthStatus
			msgContain string
		}{
			{"good", pcA, backend.HealthStatusOk, "2 project(s)"},
			{"wrong token", pluginContext(svc.url, "cyg_wrong"), backend.HealthStatusError, "rejected the API token"},
			{"no token", pluginContext(svc.url, ""), backend.HealthStatusError, "no API token"},
			{"wrong URL", pluginContext(deadURL, svc.tokenA), backend.HealthStatusError, "Cannot reach cygni-usage"},
			{"not cygni", pluginContext(svc.url+"/nothing-here", svc.tokenA), backend.HealthStatusError, "Check the URL"},
			{"no URL", pluginContext("", svc.tokenA), backend.HealthStatusError, "no valid URL"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res := plug.checkHealth(t, tc.pc)
				if res.Status != tc.status || !strings.Contains(res.Message, tc.msgContain) {
					t.Errorf("CheckHealth = %v %q, want %v containing %q", res.Status, res.Message, tc.status, tc.msgContain)
				}
			})
		}
	})

	t.Run("usage", func(t *testing.T) {
		for _, tc := range []struct {
			name, metric, groupBy, project string
			want                           []string // the projects of the frames
		}{
			{"all projects hourly", "cpuHours", "hour", "", []string{"proj_001", "proj_002"}},
			{"all projects daily", "cost.total", "day", "", []string{"proj_001", "proj_002"}},
			{"one project", "egressGB", "hour", "proj_002", []string{"proj_002"}},
			{"multi-value variable", "requests", "hour", "{proj_001,proj_002}", []string{"proj_001", "proj_002"}},
			{"comma list", "memoryGbHours", "day", "proj_002,proj_001", []string{"proj_002", "proj_001"}},
			{"regex list", "cost.compute", "hour", "(proj_001|proj_002)", []string{"proj_001", "proj_002"}},
			{"All as .*", "containerInstances", "hour", ".*", []string{"proj_001", "proj_002"}},
			{"All as $__all", "cost.bandwidth", "day", "$__all", []string{"proj_001", "proj_002"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				q := map[string]any{"queryType": "usage", "metric": tc.metric, "groupBy": tc.groupBy, "project": tc.project}
				res := plug.query(t, pcA, window, q)
				if res.Error != nil {
					t.Fatal(res.Error)
				}
				alert := plug.query(t, pcA, request{from: from, to: to, fromAlert: true}, q)
				if alert.Error != nil {
					t.Fatal(alert.Error)
				}
				alertValues(t, alert.Frames)
				timeSeries(t, res.Frames)
				if len(res.Frames) != len(tc.want) || len(alert.Frames) != len(tc.want) {
					t.Fatalf("%d frames and %d alert frames, want %d", len(res.Frames), len(alert.Frames), len(tc.want))
				}
				for i, p := range tc.want {
					// Series start at the beginning of the first bucket; alert sums cover the range.
					buckets := analytics(t, svc, from.Truncate(map[string]time.Duration{"hour": time.Hour, "day": 24 * time.Hour}[tc.groupBy]), to, tc.groupBy, p)
					ranged := analytics(t, svc, from, to, tc.groupBy, p)
					f, af := res.Frames[i], alert.Frames[i]
					if got := f.Fields[1].Labels; got["project"] != p || got["project_name"] == "" {
						t.Fatalf("frame %d has labels %v, want project %s with its name", i, got, p)
					}
					if f.Rows() != len(buckets) {
						t.Fatalf("%s: %d rows for %d buckets", p, f.Rows(), len(buckets))
					}
					sum := decimal.Zero
					for _, b := range ranged {
						sum = sum.Add(decimal.RequireFromString(bucketValue(t, b, tc.metric)))
					}
					for r, b := range buckets {
						raw := bucketValue(t, b, tc.metric)
						wantV, _ := strconv.ParseFloat(raw, 64)
						if got := f.Fields[1].At(r).(float64); got != wantV {
							t.Errorf("%s bucket %d: %v, want %v (%s)", p, r, got, wantV, raw)
						}
						if start, _ := time.Parse(time.RFC3339, b["start"].(string)); !f.Fields[0].At(r).(time.Time).Equal(start) {
							t.Errorf("%s bucket %d at %v, want %v", p, r, f.Fields[0].At(r), start)
						}
					}
					if tc.metric == "containerInstances" {
						sum = sum.DivRound(decimal.NewFromInt(int64(len(ranged))), 9)
					}
					wantSum, _ := sum.Float64()
					if got := af.Fields[0].At(0).(float64); af.Fields[0].Labels["project"] != p || got != wantSum {
						t.Errorf("%s: alert value %v of %v, want %v", p, got, af.Fields[0].Labels, wantSum)
					}
				}
			})
		}
	})

	t.Run("usage sums equal the simulator's truth", func(t *testing.T) {
		res := plug.query(t, pcA, request{from: from, to: to, fromAlert: true}, map[string]any{"queryType": "usage", "metric": "requests", "project": "$__all"})
		got := alertValues(t, res.Frames)
		for _, p := range []string{"proj_001", "proj_002"} {
			key := data.Labels{"project": p, "project_name": map[string]string{"proj_001": "Web shop", "proj_002": "Batch"}[p]}.String()
			if want := truth(p, "cygni_requests"); got[key] != want {
				t.Errorf("%s: %v requests, the simulator served %v", p, got[key], want)
			}
		}
	})

	t.Run("usage follows the panel's interval and aligns the first bucket", func(t *testing.T) {
		// A relative range starts at any second: the first point is still a whole hour.
		odd := request{from: from.Add(17*time.Minute + 18*time.Second), to: to, interval: 10 * time.Minute}
		res := plug.query(t, pcA, odd, map[string]any{"queryType": "usage", "metric": "cpuSeconds", "project": "proj_001"})
		if res.Error != nil {
			t.Fatal(res.Error)
		}
		buckets := analytics(t, svc, from, to, "hour", "proj_001")
		f := res.Frames[0]
		if f.Rows() != len(buckets) || !f.Fields[0].At(0).(time.Time).Equal(from) {
			t.Fatalf("%d rows from %v, want the %d whole hours from %v", f.Rows(), f.Fields[0].At(0), len(buckets), from)
		}
		if got, want := f.Fields[1].At(0).(float64), mustFloat(t, bucketValue(t, buckets[0], "cpuSeconds")); got != want {
			t.Errorf("first hour %v, want the whole hour's %v", got, want)
		}
		// "Last 90 days" on a 1000-point panel (an interval of about 2h): days, not a 400.
		long := request{from: to.Add(-90 * 24 * time.Hour).Add(5 * time.Minute), to: to, interval: 2 * time.Hour}
		res = plug.query(t, pcA, long, map[string]any{"queryType": "usage", "metric": "cost.total", "project": "proj_001"})
		if res.Error != nil {
			t.Fatalf("90 days: %v", res.Error)
		}
		days := analytics(t, svc, long.from.Truncate(24*time.Hour), to, "day", "proj_001")
		if f := res.Frames[0]; f.Rows() != len(days) || f.Rows() < 90 || f.Fields[0].At(0).(time.Time).UTC().Hour() != 0 {
			t.Errorf("90 days: %d rows from %v, want %d days from midnight", f.Rows(), f.Fields[0].At(0), len(days))
		}
		for _, tc := range []struct {
			interval time.Duration
			span     time.Duration
			groupBy  string
		}{
			{time.Minute, 24 * time.Hour, "hour"},
			{time.Hour, 31 * 24 * time.Hour, "hour"},
			{time.Hour, 32 * 24 * time.Hour, "day"},
			{24 * time.Hour, 48 * time.Hour, "day"},
			{7 * 24 * time.Hour, 200 * 24 * time.Hour, "week"},
			{30 * 24 * time.Hour, 365 * 24 * time.Hour, "month"},
		} {
			r := request{from: to.Add(-tc.span), to: to, interval: tc.interval}
			res := plug.query(t, pcA, r, map[string]any{"queryType": "usage", "metric": "requests", "project": "proj_001", "groupBy": "auto"})
			if res.Error != nil {
				t.Fatalf("interval %s over %s: %v", tc.interval, tc.span, res.Error)
			}
			starts := analytics(t, svc, r.from, to, tc.groupBy, "proj_001")
			f := res.Frames[0]
			if f.Rows() < 2 || f.Rows() != len(starts) {
				t.Errorf("interval %s over %s: %d rows, want the %d %s buckets", tc.interval, tc.span, f.Rows(), len(starts), tc.groupBy)
				continue
			}
			// Every bucket but the first is a whole one, the first is aligned too.
			for r, b := range starts {
				if start, _ := time.Parse(time.RFC3339, b["start"].(string)); r > 0 && !f.Fields[0].At(r).(time.Time).Equal(start) {
					t.Errorf("interval %s over %s: bucket %d at %v, want %v", tc.interval, tc.span, r, f.Fields[0].At(r), start)
					break
				}
			}
		}
	})

	t.Run("budget", func(t *testing.T) {
		want := map[string]map[string]any{}
		for _, p := range []string{"proj_001", "proj_002"} {
			var b map[string]any
			svc.get(t, svc.tokenA, "/api/projects/"+p+"/budget", nil, &b)
			want[p] = b
		}
		for _, project := range []string{"", "proj_001", "{proj_001,proj_002}", ".*"} {
			res := plug.query(t, pcA, window, map[string]any{"queryType": "budget", "project": project})
			if res.Error != nil {
				t.Fatal(res.Error)
			}
			if len(res.Frames) != 1 || res.Frames[0].Meta.Type != data.FrameTypeNumericLong {
				t.Fatalf("project %q: frames %v, want one numeric-long table", project, res.Frames)
			}
			f := res.Frames[0]
			names := []string{}
			for _, fl := range f.Fields {
				names = append(names, fl.Name)
			}
			if fmt.Sprint(names) != "[project project_name status used limit remaining percentUsed forecast]" {
				t.Fatalf("fields %v", names)
			}
			wantRows := 2
			if project == "proj_001" {
				wantRows = 1
			}
			if f.Rows() != wantRows {
				t.Fatalf("project %q: %d rows, want %d", project, f.Rows(), wantRows)
			}
			for r := range f.Rows() {
				p := f.Fields[0].At(r).(string)
				if name := f.Fields[1].At(r).(string); name != map[string]string{"proj_001": "Web shop", "proj_002": "Batch"}[p] {
					t.Errorf("%s is named %q", p, name)
				}
				if status := f.Fields[2].At(r).(string); status != want[p]["status"] {
					t.Errorf("%s status %q, want %v", p, status, want[p]["status"])
				}
				for i, name := range names[3:] {
					if got, w := f.Fields[3+i].At(r).(float64), number(t, want[p][name]); got != w && !(math.IsNaN(got) && math.IsNaN(w)) {
						t.Errorf("%s %s = %v, want %v", p, name, got, w)
					}
				}
			}
		}
		// One quantity per project, labelled by project only: what alert rules compare.
		for _, field := range []string{"used", "limit", "remaining", "percentUsed", "forecast"} {
			for _, fromAlert := range []bool{false, true} {
				res := plug.query(t, pcA, request{from: from, to: to, fromAlert: fromAlert}, map[string]any{"queryType": "budget", "field": field, "project": "$__all"})
				if res.Error != nil {
					t.Fatal(res.Error)
				}
				got := alertValues(t, res.Frames)
				if len(got) != 2 {
					t.Fatalf("%s: %v, want a value for each of team A's projects", field, got)
				}
				for _, p := range []string{"proj_001", "proj_002"} {
					key := data.Labels{"project": p, "project_name": map[string]string{"proj_001": "Web shop", "proj_002": "Batch"}[p]}.String()
					if w := number(t, want[p][field]); got[key] != w && !(math.IsNaN(got[key]) && math.IsNaN(w)) {
						t.Errorf("%s %s = %v, want %v", p, field, got[key], w)
					}
				}
			}
		}
		res := plug.query(t, pcA, request{from: from, to: to, fromAlert: true}, map[string]any{"queryType": "budget"})
		if res.Error == nil || res.Status != backend.StatusBadRequest || !strings.Contains(res.Error.Error(), "set the budget query's field") {
			t.Errorf("an alert rule on all five budget quantities: %v %v, want a 400 saying to pick one", res.Status, res.Error)
		}
	})

	t.Run("promql", func(t *testing.T) {
		expr := `sum by (project) (sum_over_time(cygni_cpu_seconds[1h]))`
		odd := request{from: from.Add(17*time.Minute + 18*time.Second), to: to.Add(-5*time.Minute - 2*time.Second), interval: 10 * time.Minute}
		for _, tc := range []struct {
			name       string
			step       string
			interval   time.Duration
			start, end time.Time // aligned as Grafana's Prometheus data source aligns them
			stepSec    int
		}{
			{"step 1h", "1h", 0, from, to.Add(-time.Hour), 3600},
			{"the panel's interval", "", 10 * time.Minute, from.Add(10 * time.Minute), to.Add(-10 * time.Minute), 600},
			{"at least a minute", "", 15 * time.Second, from.Add(17 * time.Minute), to.Add(-6 * time.Minute), 60},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := odd
				r.interval = tc.interval
				res := plug.query(t, pcA, r, map[string]any{"queryType": "promql", "expr": expr, "step": tc.step, "legendFormat": "{{project}} reserved"})
				if res.Error != nil {
					t.Fatal(res.Error)
				}
				timeSeries(t, res.Frames)
				want := promRange(t, svc, expr, tc.start, tc.end, tc.stepSec)
				if len(res.Frames) != 2 || len(want) != 2 {
					t.Fatalf("%d frames, %d series", len(res.Frames), len(want))
				}
				for i, s := range want {
					f := res.Frames[i]
					if f.Fields[1].Labels["project"] != s.Metric["project"] || f.Rows() != len(s.Values) {
						t.Fatalf("frame %d: %v with %d rows, want %v with %d", i, f.Fields[1].Labels, f.Rows(), s.Metric, len(s.Values))
					}
					if got := f.Fields[1].Config.DisplayNameFromDS; got != s.Metric["project"]+" reserved" {
						t.Errorf("legend %q", got)
					}
					if first := f.Fields[0].At(0).(time.Time); !first.Equal(tc.start) {
						t.Errorf("first point at %v, want %v", first, tc.start)
					}
					for r, v := range s.Values {
						if got := f.Fields[1].At(r).(float64); got != mustFloat(t, v[1].(string)) {
							t.Errorf("%s row %d: %v, want %v", s.Metric["project"], r, got, v[1])
						}
					}
				}
			})
		}
		// Series differing only by name stay apart: __name__ is a label, as in Grafana's
		// Prometheus data source.
		res := plug.query(t, pcA, request{from: from, to: to, fromAlert: true}, map[string]any{"queryType": "promql", "expr": `sum by (__name__, project) ({__name__=~"cygni_requests|cygni_egress_bytes"})`})
		if res.Error != nil {
			t.Fatal(res.Error)
		}
		if got := alertValues(t, res.Frames); len(got) != 4 {
			t.Errorf("alert values %v, want 2 series of each of 2 projects", got)
		}
		res = plug.query(t, pcA, request{from: from, to: to, fromAlert: true}, map[string]any{"queryType": "promql", "expr": fmt.Sprintf(`sum by (project) (sum_over_time(cygni_requests[%ds]))`, int(to.Sub(from).Seconds()))})
		got := alertValues(t, res.Frames)
		for _, p := range []string{"proj_001", "proj_002"} {
			if w := truth(p, "cygni_requests"); got[data.Labels{"project": p}.String()] != w {
				t.Errorf("%s: PromQL says %v requests, the simulator served %v", p, got[data.Labels{"project": p}.String()], w)
			}
		}
		// Team B's plugin instance sees only proj_003, even when it asks for team A's.
		res = plug.query(t, pcB, window, map[string]any{"queryType": "promql", "expr": `sum by (project) (cygni_cpu_seconds{project=~"proj_00[12]"}) or sum by (project) (cygni_cpu_seconds)`})
		if res.Error != nil || len(res.Frames) != 1 || res.Frames[0].Fields[1].Labels["project"] != "proj_003" {
			t.Errorf("team B sees %v (%v)", res.Frames, res.Error)
		}
	})

	var lastNote time.Time // when the service raised its last notification
	t.Run("notifications and annotations", func(t *testing.T) {
		// proj_001's $1 budget is exceeded: the shipped rules raise a warning and an exceeded
		// notification for it (and nothing for proj_002 with its large budget).
		var notes struct {
			Notifications []struct {
				ID, Type, Severity, Message, CreatedAt string
				ProjectID                              *string
			}
		}
		deadline := time.Now().Add(90 * time.Second)
		for {
			svc.get(t, svc.tokenA, "/api/usage/notifications", url.Values{"limit": {"100"}}, &notes)
			types := []string{}
			for _, n := range notes.Notifications {
				types = append(types, n.Type)
			}
			if slices.Contains(types, "budget_warning") && slices.Contains(types, "budget_exceeded") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no budget notifications for proj_001 after 90s: %v", notes.Notifications)
			}
			time.Sleep(200 * time.Millisecond)
		}
		last, _ := time.Parse(time.RFC3339, notes.Notifications[0].CreatedAt)
		lastNote = last
		r := request{from: from, to: last}
		names := map[string]string{"proj_001": "Web shop", "proj_002": "Batch"}
		for _, tc := range []struct {
			name, project string
			projects      []string // nil: all
			types         []string
		}{
			{"all", "", nil, nil},
			{"one project", "proj_001", []string{"proj_001"}, nil},
			{"multi-value project", "{proj_001,proj_002}", []string{"proj_001", "proj_002"}, []string{"budget_exceeded"}},
			{"another project", "proj_002", []string{"proj_002"}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res := plug.query(t, pcA, r, map[string]any{"queryType": "notifications", "project": tc.project, "types": tc.types})
				if res.Error != nil || len(res.Frames) != 1 {
					t.Fatalf("%v %v", res.Frames, res.Error)
				}
				f := res.Frames[0]
				var want []string
				for _, n := range notes.Notifications {
					if (tc.projects != nil && !slices.Contains(tc.projects, *n.ProjectID)) || (len(tc.types) > 0 && !slices.Contains(tc.types, n.Type)) {
						continue
					}
					want = append(want, n.CreatedAt+" "+n.Type+" "+n.Severity+" "+*n.ProjectID+" "+n.Message)
				}
				var got []string
				for i := range f.Rows() {
					row := map[string]any{}
					for _, fl := range f.Fields {
						row[fl.Name] = fl.At(i)
					}
					got = append(got, row["time"].(time.Time).UTC().Format(time.RFC3339)+" "+row["type"].(string)+" "+row["severity"].(string)+" "+row["project"].(string)+" "+row["text"].(string))
					if row["project_name"] != names[row["project"].(string)] || row["title"] == "" || !strings.Contains(row["tags"].(string), row["type"].(string)) {
						t.Errorf("row %v", row)
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("notifications\n%v\nwant\n%v", got, want)
				}
			})
		}
		// An annotation is a row with a time, a title, a text and tags, as Grafana reads them.
		res := plug.query(t, pcA, r, map[string]any{"queryType": "notifications", "types": []string{"budget_warning"}})
		f := res.Frames[0]
		if f.Rows() != 1 || f.Fields[0].Name != "time" || f.Fields[1].Name != "title" || f.Fields[2].Name != "text" || f.Fields[3].Name != "tags" {
			t.Fatalf("annotation frame %v", f)
		}
		if title, text := f.Fields[1].At(0), f.Fields[2].At(0).(string); title != "Budget warning" || !strings.HasPrefix(text, "proj_001 has used $") {
			t.Errorf("annotation %q: %q", title, text)
		}
		if res := plug.query(t, pcA, r, map[string]any{"queryType": "notifications", "project": "proj_003"}); res.Status != backend.StatusNotFound {
			t.Errorf("another team's notifications: %v %v, want 404", res.Status, res.Error)
		}
	})

	t.Run("provisioned Grafana alert rules fire where the shipped rules fire", func(t *testing.T) {
		if lastNote.IsZero() {
			t.Fatal("no notifications: the budget rules never fired")
		}
		// The service's own pending and firing alerts of its rule files, by alert and project.
		alerts := func() map[string][]string {
			var a struct {
				Data struct {
					Alerts []struct{ Labels map[string]string }
				}
			}
			svc.get(t, svc.tokenA, "/api/v1/alerts", nil, &a)
			out := map[string][]string{}
			for _, al := range a.Data.Alerts {
				key := data.Labels{"project": al.Labels["project"]}
				if al.Labels["alertname"] == "ProjectBudgetThreshold" { // one alert per threshold reached
					key["threshold"], key["basis"] = al.Labels["threshold"], al.Labels["basis"]
				}
				out[al.Labels["alertname"]] = append(out[al.Labels["alertname"]], key.String())
			}
			for _, v := range out {
				slices.Sort(v)
			}
			return out
		}
		rules := provisionedRules(t)
		before := alerts()
		at := svc.clock()
		got := map[string][]string{}
		for _, r := range rules {
			got[r.Title] = evalRule(t, plug, pcA, r, at)
		}
		after := alerts()
		for _, r := range rules {
			if fmt.Sprint(before[r.Title]) != fmt.Sprint(after[r.Title]) {
				t.Logf("%s changed state while the Grafana rules were evaluated; not compared", r.Title)
				continue
			}
			if fmt.Sprint(got[r.Title]) != fmt.Sprint(after[r.Title]) {
				t.Errorf("%s: the Grafana rule holds for %v, the shipped rule is active for %v", r.Title, got[r.Title], after[r.Title])
			}
		}
		want := (data.Labels{"project": "proj_001"}).String()
		if fmt.Sprint(got["ProjectBudgetExceeded"]) != "["+want+"]" || fmt.Sprint(got["ProjectBudgetWarning"]) != "["+want+"]" {
			t.Errorf("the budget rules hold for %v and %v, want proj_001 alone", got["ProjectBudgetWarning"], got["ProjectBudgetExceeded"])
		}
		if th := (data.Labels{"basis": "actual", "project": "proj_001", "threshold": "50"}).String(); fmt.Sprint(got["ProjectBudgetThreshold"]) != "["+th+"]" {
			t.Errorf("the threshold rule holds for %v, want %s alone", got["ProjectBudgetThreshold"], th)
		}
	})

	t.Run("variables", func(t *testing.T) {
		variable := func(pc backend.PluginContext, q map[string]any) [][2]string {
			t.Helper()
			q["queryType"] = "variable"
			res := plug.query(t, pc, window, q)
			if res.Error != nil || len(res.Frames) != 1 {
				t.Fatalf("%v: %v %v", q, res.Frames, res.Error)
			}
			f := res.Frames[0]
			if f.Fields[0].Name != "text" || f.Fields[1].Name != "value" {
				t.Fatalf("fields %s, %s", f.Fields[0].Name, f.Fields[1].Name)
			}
			var out [][2]string
			for i := range f.Rows() {
				out = append(out, [2]string{f.Fields[0].At(i).(string), f.Fields[1].At(i).(string)})
			}
			return out
		}
		if got := variable(pcA, map[string]any{"variable": "projects"}); fmt.Sprint(got) != "[[Batch proj_002] [Web shop proj_001]]" {
			t.Errorf("projects %v", got)
		}
		if got := variable(pcB, map[string]any{"variable": "projects"}); fmt.Sprint(got) != "[[Other proj_003]]" {
			t.Errorf("team B's projects %v", got)
		}
		for _, project := range []string{"", "proj_001", "{proj_001,proj_002}", "$__all"} {
			var want struct{ Data []string }
			match := `cygni_cpu_seconds`
			if project == "proj_001" {
				match = `cygni_cpu_seconds{project="proj_001"}`
			}
			svc.get(t, svc.tokenA, "/api/v1/label/deployment/values", url.Values{"match[]": {match}}, &want)
			var values []string
			for _, o := range variable(pcA, map[string]any{"variable": "deployments", "project": project}) {
				values = append(values, o[1])
			}
			if len(values) == 0 || fmt.Sprint(values) != fmt.Sprint(want.Data) {
				t.Errorf("deployments of %q: %v, want %v", project, values, want.Data)
			}
		}
		metrics := variable(pcA, map[string]any{"variable": "metrics"})
		if len(metrics) != 13 || metrics[0] != [2]string{"Cost (total)", "cost.total"} {
			t.Errorf("metrics %v", metrics)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			pc     backend.PluginContext
			q      map[string]any
			status backend.Status
			msg    string
		}{
			{"unknown metric", pcA, map[string]any{"queryType": "usage", "metric": "bogus"}, backend.StatusBadRequest, "unknown metric"},
			{"unknown type", pcA, map[string]any{"queryType": "sql"}, backend.StatusBadRequest, "unknown query type"},
			{"bad groupBy", pcA, map[string]any{"queryType": "usage", "groupBy": "year"}, backend.StatusBadRequest, "groupBy"},
			{"bad tz", pcA, map[string]any{"queryType": "usage", "tz": "Mars/Olympus"}, backend.StatusBadRequest, "tz"},
			{"hourly over 90 days", pcA, map[string]any{"queryType": "usage", "groupBy": "hour", "_range": "90d"}, backend.StatusBadRequest, "groupBy=hour"},
			{"bad project", pcA, map[string]any{"queryType": "usage", "project": "proj_001,DROP"}, backend.StatusBadRequest, `"DROP" is not a project id`},
			{"unreplaced variable", pcA, map[string]any{"queryType": "budget", "project": "$project"}, backend.StatusBadRequest, "not replaced"},
			{"bad budget field", pcA, map[string]any{"queryType": "budget", "field": "spent"}, backend.StatusBadRequest, "budget field"},
			{"bad PromQL", pcA, map[string]any{"queryType": "promql", "expr": "sum("}, backend.StatusBadRequest, "answered 400"},
			{"bad step", pcA, map[string]any{"queryType": "promql", "expr": "up", "step": "soon"}, backend.StatusBadRequest, "step"},
			{"bad variable", pcA, map[string]any{"queryType": "variable", "variable": "teams"}, backend.StatusBadRequest, "variable"},
			{"bad notification type", pcA, map[string]any{"queryType": "notifications", "types": []string{"Budget Warning"}}, backend.StatusBadRequest, "notification type"},
			{"other team's budget", pcA, map[string]any{"queryType": "budget", "project": "proj_003"}, backend.StatusNotFound, "not found"},
			{"other team's usage", pcA, map[string]any{"queryType": "usage", "project": "proj_001,proj_003"}, backend.StatusNotFound, "not found"},
			{"wrong token", pluginContext(svc.url, "cyg_wrong"), map[string]any{"queryType": "usage"}, backend.StatusUnauthorized, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := window
				if tc.q["_range"] == "90d" {
					r.from = to.Add(-90 * 24 * time.Hour)
				}
				res := plug.query(t, tc.pc, r, tc.q)
				if res.Error == nil || res.Status != tc.status || !strings.Contains(res.Error.Error(), tc.msg) {
					t.Errorf("status %v error %v, want %v containing %q", res.Status, res.Error, tc.status, tc.msg)
				}
			})
		}
	})

	t.Run("CallResource", func(t *testing.T) {
		code, body := plug.resourceCall(t, pcA, "projects")
		var projects []struct{ Value, Label string }
		if err := json.Unmarshal(body, &projects); code != http.StatusOK || err != nil {
			t.Fatalf("projects: %d %s", code, body)
		}
		if fmt.Sprint(projects) != "[{proj_002 Batch (proj_002)} {proj_001 Web shop (proj_001)}]" {
			t.Errorf("projects %v", projects)
		}
		code, body = plug.resourceCall(t, pcA, "metrics")
		if code != http.StatusOK || !strings.Contains(string(body), `"value":"cost.total"`) || !strings.Contains(string(body), `"value":"cpuHours"`) {
			t.Errorf("metrics: %d %s", code, body)
		}
		if code, _ = plug.resourceCall(t, pcA, "nope"); code != http.StatusNotFound {
			t.Errorf("unknown resource: %d", code)
		}
		if code, _ = plug.resourceCall(t, pluginContext(svc.url, "cyg_wrong"), "projects"); code != http.StatusUnauthorized {
			t.Errorf("projects with a wrong token: %d", code)
		}
	})
}

// analytics is the service's own answer for one project, the reference of the usage frames.
func analytics(t testing.TB, svc *service, from, to time.Time, groupBy, project string) []map[string]any {
	t.Helper()
	var a struct {
		Projects []struct {
			ProjectID string           `json:"projectId"`
			Data      []map[string]any `json:"data"`
		} `json:"projects"`
	}
	svc.get(t, svc.tokenA, "/api/usage/analytics", url.Values{"startDate": {from.UTC().Format(time.RFC3339)}, "endDate": {to.UTC().Format(time.RFC3339)}, "groupBy": {groupBy}, "projectId": {project}}, &a)
	if len(a.Projects) != 1 || a.Projects[0].ProjectID != project {
		t.Fatalf("analytics of %s: %+v", project, a.Projects)
	}
	return a.Projects[0].Data
}

type promSeries struct {
	Metric map[string]string `json:"metric"`
	Values [][2]any          `json:"values"`
}

// promRange is the service's own range query, the reference of the PromQL frames.
func promRange(t testing.TB, svc *service, expr string, start, end time.Time, step int) []promSeries {
	t.Helper()
	var want struct {
		Data struct {
			Result []promSeries `json:"result"`
		} `json:"data"`
	}
	svc.get(t, svc.tokenA, "/api/v1/query_range", url.Values{"query": {expr}, "start": {strconv.FormatInt(start.Unix(), 10)}, "end": {strconv.FormatInt(end.Unix(), 10)}, "step": {strconv.Itoa(step)}}, &want)
	return want.Data.Result
}

func bucketValue(t testing.TB, b map[string]any, metric string) string {
	t.Helper()
	var v any = b
	for part := range strings.SplitSeq(metric, ".") {
		v = v.(map[string]any)[part]
	}
	switch v := v.(type) {
	case json.Number:
		return v.String()
	case string:
		return v
	}
	t.Fatalf("%s is %T", metric, v)
	return ""
}

// number is a JSON number of the service's answer as a frame holds it (NaN for null).
func number(t testing.TB, v any) float64 {
	t.Helper()
	if v == nil {
		return math.NaN()
	}
	return mustFloat(t, string(v.(json.Number)))
}

func mustFloat(t testing.TB, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// alertValues reads frames the way Grafana's server-side expressions and alert rules read a
// numeric result, by the data plane's numeric formats (grafana-plugin-sdk-go's
// data.FrameTypeNumericMulti, NumericWide and NumericLong): every numeric field of a multi or
// wide frame is one value with the field's labels; every row of a long frame is one value
// labelled by the row's string fields. It fails the test unless every value has a label set of
// its own (Grafana refuses results it cannot tell apart) and returns them by label set.
func alertValues(t testing.TB, frames data.Frames) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	add := func(l data.Labels, v float64) {
		key := l.String()
		if _, dup := out[key]; dup {
			t.Errorf("two values share the labels %s: Grafana's alerting refuses the result", key)
		}
		out[key] = v
	}
	for _, f := range frames {
		if f.Meta == nil || !f.Meta.Type.IsNumeric() {
			t.Errorf("frame %q is not of a numeric type: %+v", f.Name, f.Meta)
			continue
		}
		switch f.Meta.Type {
		case data.FrameTypeNumericMulti, data.FrameTypeNumericWide:
			if f.Rows() != 1 {
				t.Errorf("%s frame %q has %d rows, want 1", f.Meta.Type, f.Name, f.Rows())
				continue
			}
			numbers := 0
			for _, fl := range f.Fields {
				if !fl.Type().Numeric() {
					t.Errorf("%s frame %q has the non-numeric field %q", f.Meta.Type, f.Name, fl.Name)
					continue
				}
				v, err := fl.FloatAt(0)
				if err != nil {
					t.Fatal(err)
				}
				numbers++
				add(fl.Labels, v)
			}
			if f.Meta.Type == data.FrameTypeNumericMulti && numbers != 1 {
				t.Errorf("numeric-multi frame %q has %d numbers, want 1", f.Name, numbers)
			}
		case data.FrameTypeNumericLong:
			var value *data.Field
			var strs []*data.Field
			for _, fl := range f.Fields {
				switch {
				case fl.Type().Numeric() && value == nil:
					value = fl
				case fl.Type().Numeric():
					t.Errorf("numeric-long frame %q has more than one number field: %q and %q share every row's labels", f.Name, value.Name, fl.Name)
				case fl.Type() == data.FieldTypeString:
					strs = append(strs, fl)
				default:
					t.Errorf("numeric-long frame %q has the field %q of type %s", f.Name, fl.Name, fl.Type())
				}
			}
			if value == nil {
				t.Errorf("numeric-long frame %q has no number", f.Name)
				continue
			}
			for r := range f.Rows() {
				l := data.Labels{}
				for _, s := range strs {
					l[s.Name] = s.At(r).(string)
				}
				v, _ := value.FloatAt(r)
				add(l, v)
			}
		}
	}
	return out
}

// timeSeries checks frames are time-series multi frames Grafana reads as series (one time and
// one value field each, the SDK's own wide-series schema) with a label set each.
func timeSeries(t testing.TB, frames data.Frames) {
	t.Helper()
	seen := map[string]bool{}
	for _, f := range frames {
		if f.Meta == nil || f.Meta.Type != data.FrameTypeTimeSeriesMulti || len(f.Fields) != 2 {
			t.Errorf("frame %q is not a time-series multi frame: %+v", f.Name, f.Meta)
			continue
		}
		if s := f.TimeSeriesSchema(); s.Type != data.TimeSeriesTypeWide || len(s.ValueIndices) != 1 {
			t.Errorf("frame %q is not a wide time series: %+v", f.Name, s)
		}
		key := f.Fields[1].Labels.String()
		if seen[key] {
			t.Errorf("two series share the labels %s", key)
		}
		seen[key] = true
		for r := 1; r < f.Rows(); r++ {
			if !f.Fields[0].At(r).(time.Time).After(f.Fields[0].At(r - 1).(time.Time)) {
				t.Errorf("frame %q: times not increasing at row %d", f.Name, r)
				break
			}
		}
	}
}

// TestPluginImportsNoServerPackage keeps the plugin a pure HTTP client of the service: its
// module has no dependency on the server's.
func TestPluginImportsNoServerPackage(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "./cmd/gpx_usage")
	cmd.Dir = repoRoot(t) + "/grafana-plugin"
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/cygni/usage/") && !strings.HasPrefix(pkg, "github.com/cygni/usage/grafana-plugin/") {
			t.Errorf("the plugin imports %s", pkg)
		}
	}
}
