// Package deploy holds the docker-compose stack's files (provisioning, dashboards, the service's
// configuration). There is no docker engine in CI: these tests load docker-compose.yml with
// compose-go exactly as `docker compose` does and check what the stack relies on.
package deploy_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"

	"github.com/cygni/usage/config"
)

const root = ".."

func loadCompose(t testing.TB) *types.Project {
	t.Helper()
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "docker-compose.yml")}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("cygni-usage", true) })
	if err != nil {
		t.Fatalf("load docker-compose.yml: %v", err)
	}
	return p
}

func TestComposeServices(t *testing.T) {
	p := loadCompose(t)
	want := []string{"cygni-usage", "grafana", "grafana-plugin", "mailpit", "postgres", "stripe-mock"}
	if got := p.ServiceNames(); !slices.Equal(sorted(got), want) {
		t.Fatalf("services %v, want %v", got, want)
	}
	ports := map[string][]uint32{
		"cygni-usage": {8080},
		"grafana":     {3000},
		"stripe-mock": {12111},
		"postgres":    {5432},
		"mailpit":     {8025, 1025},
	}
	for name, targets := range ports {
		t.Run("ports of "+name, func(t *testing.T) {
			s := p.Services[name]
			var got []uint32
			for _, port := range s.Ports {
				got = append(got, port.Target)
				if port.Published == "" {
					t.Errorf("port %d is not published", port.Target)
				}
			}
			for _, want := range targets {
				if !slices.Contains(got, want) {
					t.Errorf("ports %v lack %d", got, want)
				}
			}
		})
	}
	t.Run("grafana loads the unsigned plugin from the plugin volume", func(t *testing.T) {
		g := p.Services["grafana"]
		if v := g.Environment["GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS"]; v == nil || *v != pluginID(t) {
			t.Errorf("GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS = %v, want %s", v, pluginID(t))
		}
		mount := volumeAt(t, g, "/var/lib/grafana/plugins/"+pluginID(t))
		if mount.Type != types.VolumeTypeVolume {
			t.Fatalf("plugin mount %+v is not a named volume", mount)
		}
		writer := volumeAt(t, p.Services["grafana-plugin"], "/out")
		if writer.Source != mount.Source {
			t.Errorf("grafana-plugin writes volume %q, grafana mounts %q", writer.Source, mount.Source)
		}
		if d, ok := g.DependsOn["grafana-plugin"]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("grafana does not wait for the plugin build: %+v", g.DependsOn)
		}
		if volumeAt(t, g, "/etc/grafana/provisioning").Type != types.VolumeTypeBind || volumeAt(t, g, "/var/lib/grafana/dashboards").Type != types.VolumeTypeBind {
			t.Error("provisioning and dashboards are not bind-mounted")
		}
	})
	t.Run("persistent data is in named volumes", func(t *testing.T) {
		for svc, target := range map[string]string{"cygni-usage": "/var/lib/cygni-usage", "postgres": "/var/lib/postgresql/data", "grafana": "/var/lib/grafana"} {
			if v := volumeAt(t, p.Services[svc], target); v.Type != types.VolumeTypeVolume {
				t.Errorf("%s: %s is a %s mount", svc, target, v.Type)
			}
		}
		for _, s := range p.Services {
			for _, v := range s.Volumes {
				if v.Type == types.VolumeTypeVolume {
					if _, ok := p.Volumes[v.Source]; !ok {
						t.Errorf("%s mounts undeclared volume %q", s.Name, v.Source)
					}
				}
			}
		}
	})
	t.Run("every referenced file exists", func(t *testing.T) {
		for _, s := range p.Services {
			for _, v := range s.Volumes {
				if v.Type == types.VolumeTypeBind {
					if _, err := os.Stat(v.Source); err != nil {
						t.Errorf("%s mounts %s: %v", s.Name, v.Source, err)
					}
				}
			}
			if s.Build != nil {
				df := filepath.Join(s.Build.Context, s.Build.Dockerfile)
				if _, err := os.Stat(df); err != nil {
					t.Errorf("%s builds %s: %v", s.Name, df, err)
				}
				if !slices.Contains(dockerfileStages(t, df), s.Build.Target) {
					t.Errorf("%s builds target %q, not a stage of %s", s.Name, s.Build.Target, df)
				}
			}
		}
	})
	t.Run("postgres DSN of the service matches the postgres service", func(t *testing.T) {
		cfg, err := config.Load(filepath.Join("cygni-usage.yml"))
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		env := p.Services["postgres"].Environment
		want := "postgres://" + *env["POSTGRES_USER"] + ":" + *env["POSTGRES_PASSWORD"] + "@postgres:5432/" + *env["POSTGRES_DB"]
		if cfg.Store.Driver != "postgres" || !strings.HasPrefix(string(cfg.Store.DSN), want) {
			t.Errorf("store %s %q, want a DSN starting %q", cfg.Store.Driver, cfg.Store.DSN, want)
		}
		if !strings.Contains(cfg.Billing.Stripe.URL, "stripe-mock:12111") || cfg.Alerting.SMTP.Host != "mailpit" {
			t.Errorf("stripe %q, smtp %q", cfg.Billing.Stripe.URL, cfg.Alerting.SMTP.Host)
		}
	})
}

// TestDockerfile checks the service image runs as a non-root user.
func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	stages := strings.Split(string(raw), "\nFROM ")
	final := stages[len(stages)-1]
	user := regexp.MustCompile(`(?m)^USER (\S+)`).FindStringSubmatch(final)
	if user == nil || strings.HasPrefix(user[1], "root") || strings.HasPrefix(user[1], "0") {
		t.Errorf("the final stage's USER is %v, want a non-root user", user)
	}
	if len(stages) < 3 {
		t.Errorf("%d stages, want a multi-stage build", len(stages))
	}
}

func TestProvisioning(t *testing.T) {
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

	var providers struct {
		Providers []struct {
			Options struct{ Path string }
		}
	}
	readYAML(t, "grafana/provisioning/dashboards/cygni.yml", &providers)
	if len(providers.Providers) != 1 || providers.Providers[0].Options.Path != "/var/lib/grafana/dashboards" {
		t.Errorf("dashboard providers %+v", providers)
	}

	raw, err := os.ReadFile("dashboards/cygni-usage.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string
		Panels []struct {
			Title      string
			Type       string
			Datasource *struct{ Type, UID string }
			Targets    []map[string]any
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	if dash.Title != "Cygni usage" {
		t.Errorf("title %q", dash.Title)
	}
	seen := map[string]bool{}
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || uids[p.Datasource.UID] != p.Datasource.Type {
			t.Errorf("panel %q uses data source %+v, not a provisioned one", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			if qt, ok := q["queryType"].(string); ok {
				seen[qt] = true
			}
		}
		seen[p.Type] = true
	}
	// Cost by project, usage by metric, budget gauges and notifications.
	for _, want := range []string{"usage", "budget", "gauge", "timeseries", "table"} {
		if !seen[want] {
			t.Errorf("the dashboard has no %s panel or query", want)
		}
	}
}

func TestPluginJSON(t *testing.T) {
	var p struct {
		ID, Type, Executable string
		Backend, Alerting    bool
	}
	raw, err := os.ReadFile(filepath.Join(root, "grafana-plugin/src/plugin.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	if p.ID != "cygni-usage-datasource" || p.Type != "datasource" || !p.Backend || !p.Alerting || p.Executable != "gpx_usage" {
		t.Errorf("plugin.json %+v", p)
	}
}

func pluginID(t testing.TB) string {
	t.Helper()
	return "cygni-usage-datasource"
}

func volumeAt(t testing.TB, s types.ServiceConfig, target string) types.ServiceVolumeConfig {
	t.Helper()
	for _, v := range s.Volumes {
		if v.Target == target {
			return v
		}
	}
	t.Fatalf("%s mounts nothing at %s", s.Name, target)
	return types.ServiceVolumeConfig{}
}

func dockerfileStages(t testing.TB, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile(`(?mi)^FROM\s+\S+\s+AS\s+(\S+)`).FindAllStringSubmatch(string(raw), -1) {
		out = append(out, m[1])
	}
	return out
}

func readYAML(t testing.TB, path string, out any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
