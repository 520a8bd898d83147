// Package deploy holds the docker-compose stack's files (provisioning, dashboards, the service's
// configuration). There is no docker engine in CI: these tests load docker-compose.yml with
// compose-go exactly as `docker compose` does and check what the stack relies on.
//
// deploy is a Go module of its own, so that compose-go is no dependency of the service. It
// imports no package of the service: the service's configuration is checked by the service's
// own binary (`cygni-usage check-config`), built from ../cmd/cygni-usage.
package deploy_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"
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
		out, err := exec.Command(serviceBinary(t), "check-config", "--config", "cygni-usage.yml").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "cygni-usage.yml: OK") {
			t.Fatalf("cygni-usage check-config: %v\n%s", err, out)
		}
		var cfg struct {
			Store   struct{ Driver, DSN string }
			Billing struct {
				Stripe struct{ URL string }
			}
			Alerting struct {
				SMTP struct{ Host string }
			}
		}
		readYAML(t, "cygni-usage.yml", &cfg)
		env := p.Services["postgres"].Environment
		want := "postgres://" + *env["POSTGRES_USER"] + ":" + *env["POSTGRES_PASSWORD"] + "@postgres:5432/" + *env["POSTGRES_DB"]
		if cfg.Store.Driver != "postgres" || !strings.HasPrefix(cfg.Store.DSN, want) {
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
	// Binaries for the platform the image is built for (BuildKit's TARGETOS/TARGETARCH), static
	// so that the plugin runs in Grafana's Alpine image, named as Grafana looks for them.
	df := string(raw)
	for _, want := range []string{
		"FROM --platform=$BUILDPLATFORM golang:",
		"ARG TARGETOS",
		"ARG TARGETARCH",
		"CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags='-s -w' -o /out/cygni-usage ./cmd/cygni-usage",
		"CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags='-s -w' -o /out/gpx_usage_${TARGETOS}_${TARGETARCH} ./cmd/gpx_usage",
		"COPY --from=build /out/gpx_usage_${TARGETOS}_${TARGETARCH} /plugin/",
	} {
		if !strings.Contains(df, want) {
			t.Errorf("the Dockerfile lacks %q", want)
		}
	}
	if strings.Contains(df, "gpx_usage_linux_amd64") {
		t.Error("the Dockerfile names a fixed platform's plugin binary")
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
	for _, m := range regexp.MustCompile(`(?mi)^FROM\s+(?:--platform=\S+\s+)?\S+\s+AS\s+(\S+)`).FindAllStringSubmatch(string(raw), -1) {
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
