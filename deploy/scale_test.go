package deploy_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// The scale compose project (deploy/compose.scale.yml) loads as docker compose loads it, and
// its processes are configured as docs/scale-out.md requires: VictoriaMetrics with 1 ms
// deduplication and a retention covering the product's, every product service in remote mode
// on it and on the postgres service, two collector shards covering the fleet, two API replicas.
func TestScaleCompose(t *testing.T) {
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  ".",
		ConfigFiles: []types.ConfigFile{{Filename: "compose.scale.yml"}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("cygni-usage-scale", true) })
	if err != nil {
		t.Fatalf("load compose.scale.yml: %v", err)
	}
	want := []string{"api", "billing", "collector-0", "collector-1", "mailpit", "postgres", "stripe-mock", "victoriametrics"}
	if got := sorted(p.ServiceNames()); !slices.Equal(got, want) {
		t.Fatalf("services %v, want %v", got, want)
	}
	vm := p.Services["victoriametrics"]
	for _, flag := range []string{"-dedup.minScrapeInterval=1ms", "-retentionPeriod=400d"} {
		if !slices.Contains(vm.Command, flag) {
			t.Errorf("victoriametrics command %v lacks %s", vm.Command, flag)
		}
	}
	if r := p.Services["api"].Deploy; r == nil || r.Replicas == nil || *r.Replicas != 2 {
		t.Errorf("api replicas = %+v, want 2", r)
	}
	type cfg struct {
		Store   struct{ Driver, DSN string }
		Storage struct {
			Mode   string
			Remote struct {
				Kind     string
				WriteURL string `yaml:"write_url"`
				ReadURL  string `yaml:"read_url"`
			}
		}
		Collector struct{ Shard string }
	}
	shards := map[string]bool{}
	for _, name := range []string{"api", "billing", "collector-0", "collector-1"} {
		s := p.Services[name]
		if s.Build == nil || s.Build.Target != "service" {
			t.Errorf("%s does not build the service image", name)
		}
		if _, ok := s.DependsOn["victoriametrics"]; !ok {
			t.Errorf("%s does not depend on victoriametrics", name)
		}
		if d, ok := s.DependsOn["postgres"]; !ok || d.Condition != types.ServiceConditionHealthy {
			t.Errorf("%s does not wait for a healthy postgres", name)
		}
		file := volumeAt(t, s, "/etc/cygni-usage/config.yml").Source
		out, err := exec.Command(serviceBinary(t), "check-config", "--config", file).CombinedOutput()
		if err != nil || !strings.Contains(string(out), ": OK") {
			t.Errorf("%s: cygni-usage check-config %s: %v\n%s", name, file, err, out)
		}
		var c cfg
		readYAML(t, file, &c)
		if c.Storage.Mode != "remote" || c.Storage.Remote.Kind != "victoriametrics" ||
			c.Storage.Remote.WriteURL != "http://victoriametrics:8428/api/v1/write" || c.Storage.Remote.ReadURL != "http://victoriametrics:8428" {
			t.Errorf("%s: storage %+v, want remote on the victoriametrics service", name, c.Storage)
		}
		if c.Store.Driver != "postgres" || !strings.Contains(c.Store.DSN, "@postgres:5432/cygni") {
			t.Errorf("%s: store %s %q, want the postgres service", name, c.Store.Driver, c.Store.DSN)
		}
		if strings.HasPrefix(name, "collector-") {
			if !slices.Contains(s.Command, "collector") {
				t.Errorf("%s runs %v", name, s.Command)
			}
			shards[c.Collector.Shard] = true
		}
		if filepath.Dir(file) != "scale" && !strings.HasSuffix(filepath.Dir(file), "/scale") {
			t.Errorf("%s mounts %s, not a file of deploy/scale", name, file)
		}
	}
	if !shards["0/2"] || !shards["1/2"] || len(shards) != 2 {
		t.Errorf("collector shards %v, want 0/2 and 1/2", shards)
	}
}
