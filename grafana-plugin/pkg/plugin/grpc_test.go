package plugin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/grpcplugin"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/shopspring/decimal"

	"github.com/cygni/usage/api"
	"github.com/cygni/usage/config"
	"github.com/cygni/usage/query"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/simaws"
	"github.com/cygni/usage/store"
	"github.com/cygni/usage/tsdb"
)

// now is the service's clock: two days and a half of simulated usage are stored before it.
var now = time.Date(2024, 1, 3, 12, 0, 0, 0, time.UTC)

// service is a running cygni-usage API (real TSDB filled the collector's way from the
// simulated fleet, real SQLite store): team A owns proj_001 and proj_002, team B proj_003.
type service struct {
	url          string
	tokenA       string
	tokenB       string
	teamAProject []string
}

func startService(t testing.TB) *service {
	t.Helper()
	ctx := context.Background()
	sim := simaws.New(simaws.Options{Seed: 3, Projects: 3, ServicesPerProject: 1, Untagged: -1, Now: func() time.Time { return now }})
	db, err := tsdb.Open(nil, nil, tsdb.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	from := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	writeSim(t, db, sim, from, now)
	engine, err := query.New(nil, nil, query.Options{Storage: db, Prices: query.NewPrices(config.Default().Pricing), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	deriver, err := query.NewDeriver(nil, nil, query.DeriverOptions{Storage: db, Engine: engine})
	if err != nil {
		t.Fatal(err)
	}
	if err := deriver.Derive(ctx, from, now); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, nil, store.Options{DataDir: t.TempDir(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	for _, team := range []string{"team_a", "team_b"} {
		if _, err := st.CreateTeam(ctx, store.Team{ID: team, Name: team}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []store.Project{
		{ID: "proj_001", TeamID: "team_a", Name: "Web shop"},
		{ID: "proj_002", TeamID: "team_a", Name: "Batch"},
		{ID: "proj_003", TeamID: "team_b", Name: "Other"},
	} {
		if _, err := st.CreateProject(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	s := &service{teamAProject: []string{"proj_001", "proj_002"}}
	if s.tokenA, _, err = st.CreateToken(ctx, "team_a", "member", "grafana"); err != nil {
		t.Fatal(err)
	}
	if s.tokenB, _, err = st.CreateToken(ctx, "team_b", "member", "grafana"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Options{
		AuthDeps:  api.AuthDeps{Tokens: api.StoreTokens(st)},
		UsageDeps: api.UsageDeps{Usage: engine, UsageProjects: st},
		PromDeps:  api.PromDeps{PromStorage: db, PromProjects: st},
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// writeSim appends, as the collector does, every series' exact per-minute amount of every
// simulated service, stamped at the end of its minute.
func writeSim(t testing.TB, db *tsdb.DB, sim *simaws.Sim, from, to time.Time) {
	t.Helper()
	app := db.Appender(context.Background())
	for _, svc := range sim.Services() {
		for _, name := range series.Usage {
			ls := labels.FromStrings(labels.MetricName, name, series.LabelProject, svc.Project,
				series.LabelDeployment, svc.Deployment, series.LabelCluster, svc.Cluster, series.LabelRegion, "us-east-1")
			for m := from; m.Before(to); m = m.Add(time.Minute) {
				if _, err := app.Append(0, ls, m.Add(time.Minute).UnixMilli(), sim.Truth(svc, name, m, m.Add(time.Minute))); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
}

// get calls the service directly, as the reference for what the plugin must show.
func (s *service) get(t testing.TB, token, path string, params url.Values, out any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.url+path+"?"+params.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// pluginClient is the built plugin binary, started and spoken to exactly as Grafana does.
type pluginClient struct {
	data        grpcplugin.DataClient
	diagnostics grpcplugin.DiagnosticsClient
	resource    grpcplugin.ResourceClient
}

func startPlugin(t testing.TB) *pluginClient {
	t.Helper()
	bin := filepath.Join(t.TempDir(), fmt.Sprintf("gpx_usage_%s_%s", runtime.GOOS, runtime.GOARCH))
	build := exec.Command("go", "build", "-o", bin, "github.com/cygni/usage/grafana-plugin/cmd/gpx_usage")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the plugin: %v\n%s", err, out)
	}
	plugins := goplugin.PluginSet{
		"diagnostics": &grpcplugin.DiagnosticsGRPCPlugin{},
		"resource":    &grpcplugin.ResourceGRPCPlugin{},
		"data":        &grpcplugin.DataGRPCPlugin{},
	}
	c := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig: goplugin.HandshakeConfig{
			ProtocolVersion:  grpcplugin.ProtocolVersion,
			MagicCookieKey:   grpcplugin.MagicCookieKey,
			MagicCookieValue: grpcplugin.MagicCookieValue,
		},
		VersionedPlugins: map[int]goplugin.PluginSet{grpcplugin.ProtocolVersion: plugins},
		Cmd:              exec.Command(bin),
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Logger:           hclog.New(&hclog.LoggerOptions{Output: io.Discard, Level: hclog.Error}),
		SyncStdout:       io.Discard,
		SyncStderr:       io.Discard,
	})
	t.Cleanup(c.Kill)
	rpc, err := c.Client()
	if err != nil {
		t.Fatalf("start the plugin: %v", err)
	}
	dispense := func(name string) any {
		raw, err := rpc.Dispense(name)
		if err != nil {
			t.Fatalf("dispense %s: %v", name, err)
		}
		return raw
	}
	return &pluginClient{
		data:        dispense("data").(grpcplugin.DataClient),
		diagnostics: dispense("diagnostics").(grpcplugin.DiagnosticsClient),
		resource:    dispense("resource").(grpcplugin.ResourceClient),
	}
}

func pluginContext(rawURL, token string) backend.PluginContext {
	return backend.PluginContext{
		OrgID:    1,
		PluginID: "cygni-usage-datasource",
		DataSourceInstanceSettings: &backend.DataSourceInstanceSettings{
			UID: "cygni-" + token + "-" + rawURL, Name: "Cygni usage", URL: rawURL, JSONData: []byte(`{}`),
			DecryptedSecureJSONData: map[string]string{"apiToken": token},
			Updated:                 time.Unix(1, 0),
		},
	}
}

func (p *pluginClient) checkHealth(t testing.TB, pc backend.PluginContext) *backend.CheckHealthResult {
	t.Helper()
	resp, err := p.diagnostics.CheckHealth(context.Background(), &pluginv2.CheckHealthRequest{PluginContext: backend.ToProto().PluginContext(pc)})
	if err != nil {
		t.Fatal(err)
	}
	return backend.FromProto().CheckHealthResponse(resp)
}

func (p *pluginClient) query(t testing.TB, pc backend.PluginContext, headers map[string]string, from, to time.Time, q map[string]any) backend.DataResponse {
	t.Helper()
	raw, _ := json.Marshal(q)
	req := &backend.QueryDataRequest{
		PluginContext: pc,
		Headers:       headers,
		Queries:       []backend.DataQuery{{RefID: "A", JSON: raw, TimeRange: backend.TimeRange{From: from, To: to}, Interval: time.Hour, MaxDataPoints: 1000}},
	}
	resp, err := p.data.QueryData(context.Background(), backend.ToProto().QueryDataRequest(req))
	if err != nil {
		t.Fatal(err)
	}
	out, err := backend.FromProto().QueryDataResponse(resp)
	if err != nil {
		t.Fatal(err)
	}
	return out.Responses["A"]
}

func (p *pluginClient) resourceCall(t testing.TB, pc backend.PluginContext, path string) (int, []byte) {
	t.Helper()
	stream, err := p.resource.CallResource(context.Background(), backend.ToProto().CallResourceRequest(&backend.CallResourceRequest{
		PluginContext: pc, Path: path, Method: http.MethodGet, URL: path,
	}))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	return int(msg.Code), msg.Body
}

// TestPluginOverGRPC drives the built plugin binary over gRPC against a running service and
// checks that every frame carries the analytics, budget and PromQL APIs' exact numbers.
func TestPluginOverGRPC(t *testing.T) {
	svc := startService(t)
	plug := startPlugin(t)
	pcA := pluginContext(svc.url, svc.tokenA)
	from, to := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), now

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

	t.Run("usage frames carry the analytics numbers", func(t *testing.T) {
		for _, tc := range []struct{ metric, groupBy, project string }{
			{"cpuHours", "hour", ""},
			{"cost.total", "day", ""},
			{"egressGB", "hour", "proj_002"},
			{"requests", "day", "proj_001"},
		} {
			t.Run(tc.metric+"/"+tc.groupBy+"/"+tc.project, func(t *testing.T) {
				params := url.Values{"startDate": {from.Format(time.RFC3339)}, "endDate": {to.Format(time.RFC3339)}, "groupBy": {tc.groupBy}}
				if tc.project != "" {
					params.Set("projectId", tc.project)
				}
				var want struct {
					Projects []struct {
						ProjectID string           `json:"projectId"`
						Data      []map[string]any `json:"data"`
					} `json:"projects"`
				}
				svc.get(t, svc.tokenA, "/api/usage/analytics", params, &want)
				res := plug.query(t, pcA, nil, from, to, map[string]any{"queryType": "usage", "metric": tc.metric, "groupBy": tc.groupBy, "project": tc.project})
				if res.Error != nil {
					t.Fatal(res.Error)
				}
				if len(res.Frames) != len(want.Projects) || len(want.Projects) == 0 {
					t.Fatalf("%d frames for %d projects", len(res.Frames), len(want.Projects))
				}
				alert := plug.query(t, pcA, map[string]string{"FromAlert": "true"}, from, to, map[string]any{"queryType": "usage", "metric": tc.metric, "groupBy": tc.groupBy, "project": tc.project})
				if alert.Error != nil {
					t.Fatal(alert.Error)
				}
				for i, p := range want.Projects {
					f := res.Frames[i]
					if f.Meta == nil || f.Meta.Type != data.FrameTypeTimeSeriesMulti || len(f.Fields) != 2 {
						t.Fatalf("frame %d: not a time-series multi frame: %+v", i, f)
					}
					if got := f.Fields[1].Labels["project"]; got != p.ProjectID {
						t.Fatalf("frame %d is of %q, want %q", i, got, p.ProjectID)
					}
					if f.Rows() != len(p.Data) {
						t.Fatalf("%s: %d rows for %d buckets", p.ProjectID, f.Rows(), len(p.Data))
					}
					sum := decimal.Zero
					for r, b := range p.Data {
						raw := bucketValue(t, b, tc.metric)
						wantV, _ := strconv.ParseFloat(raw, 64)
						sum = sum.Add(decimal.RequireFromString(raw))
						start, _ := time.Parse(time.RFC3339, b["start"].(string))
						if got := f.Fields[1].At(r).(float64); got != wantV {
							t.Errorf("%s bucket %d: %v, want %v (%s)", p.ProjectID, r, got, wantV, raw)
						}
						if got := f.Fields[0].At(r).(time.Time); !got.Equal(start) {
							t.Errorf("%s bucket %d at %v, want %v", p.ProjectID, r, got, start)
						}
					}
					af := alert.Frames[i]
					wantSum, _ := sum.Float64()
					if af.Meta == nil || af.Meta.Type != data.FrameTypeNumericMulti || af.Rows() != 1 || af.Fields[0].At(0).(float64) != wantSum {
						t.Errorf("%s: alert frame %+v, want numeric %v", p.ProjectID, af, wantSum)
					}
				}
			})
		}
	})

	t.Run("budget", func(t *testing.T) {
		res := plug.query(t, pcA, nil, from, to, map[string]any{"queryType": "budget"})
		if res.Error != nil {
			t.Fatal(res.Error)
		}
		if len(res.Frames) != 1 || res.Frames[0].Meta.Type != data.FrameTypeNumericWide {
			t.Fatalf("frames %+v", res.Frames)
		}
		got := map[string]float64{}
		for _, f := range res.Frames[0].Fields {
			got[f.Labels["project"]+"/"+f.Name] = f.At(0).(float64)
		}
		if len(got) != 2*5 {
			t.Errorf("fields %v, want 5 for each of team A's 2 projects", got)
		}
		for _, p := range svc.teamAProject {
			var b map[string]any
			svc.get(t, svc.tokenA, "/api/projects/"+p+"/budget", nil, &b)
			for _, name := range []string{"used", "limit", "remaining", "percentUsed", "forecast"} {
				want, _ := strconv.ParseFloat(string(b[name].(json.Number)), 64)
				if got[p+"/"+name] != want {
					t.Errorf("%s %s = %v, want %v", p, name, got[p+"/"+name], want)
				}
			}
		}
	})

	t.Run("promql", func(t *testing.T) {
		expr := `sum by (project) (sum_over_time(cygni_cpu_seconds[1h]))`
		res := plug.query(t, pcA, nil, from, to, map[string]any{"queryType": "promql", "expr": expr, "step": "1h"})
		if res.Error != nil {
			t.Fatal(res.Error)
		}
		var want struct {
			Data struct {
				Result []struct {
					Metric map[string]string `json:"metric"`
					Values [][2]any          `json:"values"`
				} `json:"result"`
			} `json:"data"`
		}
		svc.get(t, svc.tokenA, "/api/v1/query_range", url.Values{"query": {expr}, "start": {strconv.FormatInt(from.Unix(), 10)}, "end": {strconv.FormatInt(to.Unix(), 10)}, "step": {"3600"}}, &want)
		if len(res.Frames) != 2 || len(want.Data.Result) != 2 {
			t.Fatalf("%d frames, %d series", len(res.Frames), len(want.Data.Result))
		}
		for i, s := range want.Data.Result {
			f := res.Frames[i]
			if f.Fields[1].Labels["project"] != s.Metric["project"] || f.Rows() != len(s.Values) {
				t.Fatalf("frame %d: %v with %d rows, want %v with %d", i, f.Fields[1].Labels, f.Rows(), s.Metric, len(s.Values))
			}
			for r, v := range s.Values {
				wantV, _ := strconv.ParseFloat(v[1].(string), 64)
				if got := f.Fields[1].At(r).(float64); got != wantV {
					t.Errorf("%s row %d: %v, want %v", s.Metric["project"], r, got, wantV)
				}
			}
		}
		// Team B's plugin instance sees only proj_003, even when it asks for team A's.
		pcB := pluginContext(svc.url, svc.tokenB)
		res = plug.query(t, pcB, nil, from, to, map[string]any{"queryType": "promql", "expr": `sum by (project) (cygni_cpu_seconds{project=~"proj_00[12]"}) or sum by (project) (cygni_cpu_seconds)`})
		if res.Error != nil || len(res.Frames) != 1 || res.Frames[0].Fields[1].Labels["project"] != "proj_003" {
			t.Errorf("team B sees %v (%v)", res.Frames, res.Error)
		}
		alert := plug.query(t, pcA, map[string]string{"FromAlert": "true"}, from, to, map[string]any{"queryType": "promql", "expr": `sum(cygni_requests)`})
		if alert.Error != nil || len(alert.Frames) != 1 || alert.Frames[0].Meta.Type != data.FrameTypeNumericMulti {
			t.Errorf("alert frames %v (%v)", alert.Frames, alert.Error)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			pc     backend.PluginContext
			q      map[string]any
			status backend.Status
		}{
			{"unknown metric", pcA, map[string]any{"queryType": "usage", "metric": "bogus"}, backend.StatusBadRequest},
			{"unknown type", pcA, map[string]any{"queryType": "sql"}, backend.StatusBadRequest},
			{"bad PromQL", pcA, map[string]any{"queryType": "promql", "expr": "sum("}, backend.StatusBadRequest},
			{"other team's budget", pcA, map[string]any{"queryType": "budget", "project": "proj_003"}, backend.StatusNotFound},
			{"wrong token", pluginContext(svc.url, "cyg_wrong"), map[string]any{"queryType": "usage"}, backend.StatusUnauthorized},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res := plug.query(t, tc.pc, nil, from, to, tc.q)
				if res.Error == nil || res.Status != tc.status {
					t.Errorf("status %v error %v, want %v", res.Status, res.Error, tc.status)
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

// TestPluginImportsNoServerPackage keeps the plugin a pure HTTP client of the service.
func TestPluginImportsNoServerPackage(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/cygni/usage/grafana-plugin/cmd/gpx_usage").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/cygni/usage/") && !strings.HasPrefix(pkg, "github.com/cygni/usage/grafana-plugin/") {
			t.Errorf("the plugin imports %s", pkg)
		}
	}
}
