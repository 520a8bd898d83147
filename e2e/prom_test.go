package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cygni/usage/series"
	"github.com/cygni/usage/simaws"
)

// promtool returns the path of promtool (installed by scripts/test.sh). Outside CI a missing
// promtool skips the test; under CI=true it fails it.
func promtool(t testing.TB) string {
	t.Helper()
	candidates := []string{}
	if gopath, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		candidates = append(candidates, filepath.Join(strings.TrimSpace(string(gopath)), "bin", "promtool"))
	}
	if p, err := exec.LookPath("promtool"); err == nil {
		candidates = append(candidates, p)
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return c
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("promtool is not installed (scripts/test.sh installs it)")
	}
	t.Skip("promtool is not installed; run scripts/test.sh once")
	return ""
}

// adminToken runs the admin commands that create a team with projects and returns a member
// token of it.
func memberToken(t testing.TB, dataDir, team string, projects ...string) string {
	t.Helper()
	run := func(args ...string) string {
		out, err := Run(t, time.Minute, nil, append([]string{"--data-dir", dataDir}, args...)...)
		if err != nil {
			t.Fatalf("cygni-usage %v: %v\n%s", args, err, out)
		}
		return out
	}
	run("team", "create", team, "--id", team)
	for _, p := range projects {
		run("project", "create", team, "--id", p)
	}
	out := run("token", "create", team, "--role", "member", "--name", "grafana")
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, "cyg_") {
			return f
		}
	}
	t.Fatalf("no token in %q", out)
	return ""
}

// TestPromtoolAgainstPromAPI runs the real binary (collector and API over the simulated AWS)
// and queries it with promtool, unchanged, with each team's bearer token.
func TestPromtoolAgainstPromAPI(t *testing.T) {
	tool := promtool(t)
	sim := simaws.New(simaws.Options{Projects: 3, ServicesPerProject: 1, Untagged: -1, Now: Clock(t)})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)

	dataDir := t.TempDir()
	tokens := map[string]string{
		"team_a": memberToken(t, dataDir, "team_a", "proj_001", "proj_002"),
		"team_b": memberToken(t, dataDir, "team_b", "proj_003"),
	}
	owned := map[string][]string{"team_a": {"proj_001", "proj_002"}, "team_b": {"proj_003"}}
	p := Start(t, ProcOptions{
		Args:    []string{"serve", "--only", "collector,api"},
		DataDir: dataDir,
		Config:  "collector:\n  backfill: 12h\n  chunk: 6h\n  interval: 1h\n",
		Env:     AWSEnv(t, srv.URL),
	})
	p.WaitReady(120 * time.Second)

	// The newest whole hour of the backfill in which every project has usage (the simulated
	// fleet scales some services to zero for hours), so that each team must see all of its
	// projects, with the simulator's exact sums.
	var start, end time.Time
	var truth map[string]float64
	for end = Clock(t)().UTC().Truncate(time.Hour).Add(-time.Hour); ; end = end.Add(-time.Hour) {
		start = end.Add(-time.Hour)
		if end.Before(Clock(t)().Add(-11 * time.Hour)) {
			t.Fatalf("no hour of the 12-hour backfill before %s in which every project has usage", end)
		}
		truth = map[string]float64{}
		for _, svc := range sim.Services() {
			truth[svc.Project] += sim.Truth(svc, series.CPUSeconds, start, end)
		}
		if truth["proj_001"] > 0 && truth["proj_002"] > 0 && truth["proj_003"] > 0 {
			break
		}
	}
	t.Logf("querying %s .. %s: %v", start, end, truth)

	query := func(t *testing.T, team string, args ...string) string {
		t.Helper()
		httpCfg := filepath.Join(t.TempDir(), "http.yml")
		if err := os.WriteFile(httpCfg, []byte("authorization:\n  type: Bearer\n  credentials: "+tokens[team]+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		full := append([]string{"query", args[0], "--http.config.file", httpCfg}, args[1:]...)
		out, err := exec.Command(tool, full...).CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %v: %v\n%s", full, err, out)
		}
		return string(out)
	}

	for team, projects := range owned {
		t.Run(team, func(t *testing.T) {
			t.Run("instant", func(t *testing.T) {
				out := query(t, team, "instant", "-o", "json", "--time", end.Format(time.RFC3339), p.URL(),
					`sum by (project) (sum_over_time({__name__="cygni_cpu_seconds", project=~".+"}[1h]))`)
				var vec []struct {
					Metric map[string]string `json:"metric"`
					Value  [2]any            `json:"value"`
				}
				if err := json.Unmarshal([]byte(out), &vec); err != nil {
					t.Fatalf("%v: %s", err, out)
				}
				var got []string
				for _, s := range vec {
					proj := s.Metric["project"]
					got = append(got, proj)
					v, _ := strconv.ParseFloat(s.Value[1].(string), 64)
					if want := truth[proj]; math.Abs(v-want) > 1e-9*math.Abs(want) {
						t.Errorf("%s: %v vCPU-seconds in the hour, simulator says %v", proj, v, want)
					}
				}
				slices.Sort(got)
				if !slices.Equal(got, projects) {
					t.Errorf("projects %v, want %v", got, projects)
				}
			})
			t.Run("range", func(t *testing.T) {
				out := query(t, team, "range", "-o", "json", "--start", start.Format(time.RFC3339), "--end", end.Format(time.RFC3339),
					"--step", "30m", p.URL(), `sum by (project) (sum_over_time(cygni_cpu_seconds[30m]))`)
				var mat []struct {
					Metric map[string]string `json:"metric"`
					Values [][2]any          `json:"values"`
				}
				if err := json.Unmarshal([]byte(out), &mat); err != nil {
					t.Fatalf("%v: %s", err, out)
				}
				if len(mat) != len(projects) {
					t.Fatalf("%d series, want %d: %s", len(mat), len(projects), out)
				}
				for _, s := range mat {
					// Points at start+30m and end cover the hour: their sum is its total.
					var sum float64
					for _, v := range s.Values[1:] {
						f, _ := strconv.ParseFloat(v[1].(string), 64)
						sum += f
					}
					if want := truth[s.Metric["project"]]; math.Abs(sum-want) > 1e-9*math.Abs(want) {
						t.Errorf("%s: %v, want %v", s.Metric["project"], sum, want)
					}
				}
			})
			t.Run("series", func(t *testing.T) {
				out := query(t, team, "series", "--match", `{__name__=~".+"}`, "--match", `{project="proj_003"}`,
					"--start", start.Format(time.RFC3339), "--end", end.Format(time.RFC3339), p.URL())
				for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
					if !slices.ContainsFunc(projects, func(p string) bool { return strings.Contains(line, fmt.Sprintf(`project="%s"`, p)) }) {
						t.Errorf("series of another team: %s", line)
					}
				}
				if !strings.Contains(out, series.CPUSeconds) {
					t.Errorf("no %s series: %s", series.CPUSeconds, out)
				}
			})
			t.Run("labels", func(t *testing.T) {
				out := query(t, team, "labels", p.URL(), "project")
				if got := strings.Fields(out); !slices.Equal(got, projects) {
					t.Errorf("project values %v, want %v", got, projects)
				}
			})
		})
	}
}
