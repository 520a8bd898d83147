package deploy_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// k8sObject is the part of a Kubernetes object the checks read (decoded without Kubernetes'
// own libraries: there is no cluster here, the checks are about what the manifests say).
type k8sObject struct {
	File       string
	Kind       string `yaml:"kind"`
	APIVersion string `yaml:"apiVersion"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Replicas *int             `yaml:"replicas"`
		Selector k8sSelector      `yaml:"selector"` // Deployment, PodDisruptionBudget
		Ports    []k8sServicePort `yaml:"ports"`    // Service
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				ServiceAccountName string         `yaml:"serviceAccountName"`
				Containers         []k8sContainer `yaml:"containers"`
				Volumes            []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
					EmptyDir any `yaml:"emptyDir"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
		MinAvailable *int `yaml:"minAvailable"`
	} `yaml:"spec"`
	StringData map[string]string `yaml:"stringData"`
}

// k8sSelector is a Deployment's or PDB's selector ({matchLabels: …}) or a Service's (a map).
type k8sSelector struct {
	MatchLabels map[string]string
}

func (s *k8sSelector) UnmarshalYAML(n *yaml.Node) error {
	var withMatch struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	if err := n.Decode(&withMatch); err == nil && withMatch.MatchLabels != nil {
		s.MatchLabels = withMatch.MatchLabels
		return nil
	}
	return n.Decode(&s.MatchLabels)
}

type k8sServicePort struct {
	Name       string `yaml:"name"`
	Port       int    `yaml:"port"`
	TargetPort string `yaml:"targetPort"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

type k8sContainer struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	EnvFrom []struct {
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	VolumeMounts   []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
	} `yaml:"volumeMounts"`
}

func loadManifests(t *testing.T) []k8sObject {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/kubernetes: %v", err)
	}
	var out []k8sObject
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		for {
			var o k8sObject
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			o.File = f
			out = append(out, o)
		}
	}
	return out
}

// The Kubernetes manifests (deploy/kubernetes) decode, and what they run is what the binary
// takes: every container's command line uses only flags of `cygni-usage serve` and parts it
// knows, its --config file is a ConfigMap key mounted there, each such file passes the real
// `check-config` in remote mode on PostgreSQL, the collector shards cover the fleet once, the
// probes are the API's /readyz and /healthz on a declared port, and the Service and the
// PodDisruptionBudgets select the pods they are for.
func TestKubernetesManifests(t *testing.T) {
	objs := loadManifests(t)
	byKind := map[string][]k8sObject{}
	for _, o := range objs {
		byKind[o.Kind] = append(byKind[o.Kind], o)
	}
	var deployments []string
	for _, d := range byKind["Deployment"] {
		deployments = append(deployments, d.Metadata.Name)
	}
	slices.Sort(deployments)
	if want := []string{"cygni-usage-api", "cygni-usage-billing", "cygni-usage-collector-0", "cygni-usage-collector-1"}; !slices.Equal(deployments, want) {
		t.Fatalf("Deployments %v, want %v", deployments, want)
	}
	if len(byKind["ConfigMap"]) != 1 || len(byKind["Service"]) != 1 || len(byKind["Secret"]) != 1 {
		t.Fatalf("want one ConfigMap, one Service and one example Secret: %d, %d, %d", len(byKind["ConfigMap"]), len(byKind["Service"]), len(byKind["Secret"]))
	}
	cm, svc, secret := byKind["ConfigMap"][0], byKind["Service"][0], byKind["Secret"][0]

	bin := serviceBinary(t)
	help, err := exec.Command(bin, "serve", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("serve --help: %v\n%s", err, help)
	}
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`--(?:\[no-\])?([a-z][a-z-]*)`).FindAllStringSubmatch(string(help), -1) {
		flags[m[1]] = true
	}
	parts := map[string]bool{"collector": true, "api": true, "alerting": true, "billing": true}

	// Every ConfigMap file passes check-config, with the DSN from the Secret's environment.
	dir := t.TempDir()
	type cfg struct {
		Listen  string
		DataDir string `yaml:"data_dir"`
		Store   struct{ Driver string }
		Storage struct {
			Mode   string
			Remote struct{ Kind string }
		}
		Collector struct{ Shard string }
	}
	configs := map[string]cfg{}
	for key, body := range cm.Data {
		path := filepath.Join(dir, key)
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "check-config", "--config", path)
		cmd.Env = append(os.Environ(), "CYGNI_STORE_DSN="+secret.StringData["CYGNI_STORE_DSN"])
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), ": OK") {
			t.Errorf("ConfigMap key %s: check-config: %v\n%s", key, err, out)
		}
		var c cfg
		if err := yaml.Unmarshal([]byte(body), &c); err != nil {
			t.Fatal(err)
		}
		if c.Storage.Mode != "remote" || c.Store.Driver != "postgres" {
			t.Errorf("ConfigMap key %s: storage.mode %q, store.driver %q; want remote on postgres", key, c.Storage.Mode, c.Store.Driver)
		}
		configs[key] = c
	}
	for _, k := range []string{"CYGNI_STORE_DSN", "CYGNI_STRIPE_API_KEY", "CYGNI_SMTP_PASSWORD"} {
		if secret.StringData[k] == "" {
			t.Errorf("the example Secret lacks %s", k)
		}
	}

	shards := map[string]string{}
	podLabels := map[string]map[string]string{}
	for _, d := range byKind["Deployment"] {
		name := d.Metadata.Name
		spec := d.Spec
		podLabels[name] = spec.Template.Metadata.Labels
		for k, v := range spec.Selector.MatchLabels {
			if spec.Template.Metadata.Labels[k] != v {
				t.Errorf("%s: selector %s=%s does not match its pods' labels %v", name, k, v, spec.Template.Metadata.Labels)
			}
		}
		if spec.Replicas == nil || *spec.Replicas < 2 {
			t.Errorf("%s: replicas %v; want at least 2 (a standby or a second replica)", name, spec.Replicas)
		}
		if len(spec.Template.Spec.Containers) != 1 {
			t.Fatalf("%s: %d containers", name, len(spec.Template.Spec.Containers))
		}
		c := spec.Template.Spec.Containers[0]
		if len(c.Args) == 0 || c.Args[0] != "serve" {
			t.Fatalf("%s: args %v; want serve …", name, c.Args)
		}
		var only, config string
		for i := 1; i < len(c.Args); i++ {
			a := c.Args[i]
			if !strings.HasPrefix(a, "--") {
				t.Errorf("%s: argument %q is not a flag", name, a)
				continue
			}
			flag, val, hasVal := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			if !flags[flag] {
				t.Errorf("%s: serve has no flag --%s (serve --help:\n%s)", name, flag, help)
			}
			if !hasVal && i+1 < len(c.Args) {
				i++
				val = c.Args[i]
			}
			switch flag {
			case "only":
				only = val
			case "config":
				config = val
			}
		}
		for p := range strings.SplitSeq(only, ",") {
			if !parts[p] {
				t.Errorf("%s: --only names %q; the parts are collector, api, alerting, billing", name, p)
			}
		}
		// --config is a file of the ConfigMap, mounted there.
		key := ""
		for _, m := range c.VolumeMounts {
			if m.MountPath == config {
				key = m.SubPath
				found := false
				for _, v := range spec.Template.Spec.Volumes {
					if v.Name == m.Name && v.ConfigMap != nil && v.ConfigMap.Name == cm.Metadata.Name {
						found = true
					}
				}
				if !found {
					t.Errorf("%s: %s is not mounted from the ConfigMap %s", name, config, cm.Metadata.Name)
				}
			}
		}
		conf, ok := configs[key]
		if !ok {
			t.Errorf("%s: --config %q is not a mounted key of the ConfigMap (key %q)", name, config, key)
			continue
		}
		dataMounted := false
		for _, m := range c.VolumeMounts {
			dataMounted = dataMounted || m.MountPath == conf.DataDir
		}
		if !dataMounted {
			t.Errorf("%s: data_dir %s (its remote-write queue) is not a mounted volume", name, conf.DataDir)
		}
		if len(c.EnvFrom) == 0 || c.EnvFrom[0].SecretRef == nil || c.EnvFrom[0].SecretRef.Name != secret.Metadata.Name {
			t.Errorf("%s: does not take its environment from the Secret %s", name, secret.Metadata.Name)
		}
		if strings.Contains(only, "collector") {
			if only != "collector" {
				t.Errorf("%s: a collector Deployment runs %q; one shard per Deployment", name, only)
			}
			if prev, dup := shards[conf.Collector.Shard]; dup {
				t.Errorf("%s and %s both run shard %q", prev, name, conf.Collector.Shard)
			}
			shards[conf.Collector.Shard] = name
			if spec.Template.Spec.ServiceAccountName == "" {
				t.Errorf("%s: no service account for its AWS role", name)
			}
		}
		// Every process serves /readyz and /healthz (without the api part: those and /metrics
		// alone) on listen's port.
		ports := map[string]bool{}
		for _, p := range c.Ports {
			ports[p.Name] = true
			if _, port, _ := strings.Cut(conf.Listen, ":"); port != "" && port != strconv.Itoa(p.ContainerPort) {
				t.Errorf("%s: containerPort %d, but listen is %s", name, p.ContainerPort, conf.Listen)
			}
		}
		for what, pr := range map[string]*k8sProbe{"readinessProbe /readyz": c.ReadinessProbe, "livenessProbe /healthz": c.LivenessProbe} {
			switch {
			case pr == nil || pr.HTTPGet == nil:
				t.Errorf("%s: no %s", name, what)
			case !strings.HasSuffix(what, pr.HTTPGet.Path) || !ports[pr.HTTPGet.Port]:
				t.Errorf("%s: %s is %s on port %q", name, what, pr.HTTPGet.Path, pr.HTTPGet.Port)
			}
		}
	}
	if len(shards) != 2 || shards["0/2"] == "" || shards["1/2"] == "" {
		t.Errorf("collector shards %v; want 0/2 and 1/2", shards)
	}

	// The Service selects the API pods and targets their named port.
	if !selects(svc.Spec.Selector.MatchLabels, podLabels["cygni-usage-api"]) {
		t.Errorf("the Service selects %v, not the API pods %v", svc.Spec.Selector.MatchLabels, podLabels["cygni-usage-api"])
	}
	for name, labels := range podLabels {
		if name != "cygni-usage-api" && selects(svc.Spec.Selector.MatchLabels, labels) {
			t.Errorf("the Service also selects the pods of %s", name)
		}
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort != "http" {
		t.Errorf("Service ports %+v; want one, to the pods' http port", svc.Spec.Ports)
	}
	// Each Deployment has a PodDisruptionBudget that keeps one of its pods.
	for name, labels := range podLabels {
		n := 0
		for _, pdb := range byKind["PodDisruptionBudget"] {
			if selects(pdb.Spec.Selector.MatchLabels, labels) {
				n++
				if pdb.Spec.MinAvailable == nil || *pdb.Spec.MinAvailable != 1 {
					t.Errorf("PodDisruptionBudget %s: minAvailable %v, want 1", pdb.Metadata.Name, pdb.Spec.MinAvailable)
				}
			}
		}
		if n != 1 {
			t.Errorf("%s: %d PodDisruptionBudgets select its pods, want 1", name, n)
		}
	}
}

func selects(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}
