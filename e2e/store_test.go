package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cygni/usage/internal/pgtest"
	"github.com/cygni/usage/simaws"
)

// storeBackend is how a test points the binary at one metadata store.
type storeBackend struct {
	name   string
	config string   // the store section of the config file
	env    []string // CYGNI_STORE_DSN for PostgreSQL
}

// storeBackends returns SQLite (in the data dir) and, when it answers, PostgreSQL in a fresh
// schema dropped at the end of the test. With CI=true an unreachable PostgreSQL fails the test.
func storeBackends(t *testing.T) []storeBackend {
	t.Helper()
	bs := []storeBackend{{name: "sqlite"}}
	dsn, ok := pgtest.TryDSN(t, "e2e")
	if !ok {
		return bs
	}
	return append(bs, storeBackend{name: "postgres", config: "store:\n  driver: postgres\n", env: []string{"CYGNI_STORE_DSN=" + dsn}})
}

// cli runs an admin command against dataDir and the backend and returns its stdout.
func cli(t testing.TB, b storeBackend, dataDir string, args ...string) string {
	t.Helper()
	full := []string{"--data-dir", dataDir}
	if b.config != "" {
		path := dataDir + "/cli.yml"
		if err := os.WriteFile(path, []byte(b.config), 0o644); err != nil {
			t.Fatal(err)
		}
		full = append(full, "--config", path)
	}
	out, err := Run(t, time.Minute, b.env, append(full, args...)...)
	if err != nil {
		t.Fatalf("cygni-usage %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// lastLine is the last non-empty line of s.
func lastLineOf(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func get(t testing.TB, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// The admin CLI works on the store while the server runs (SQLite WAL and busy timeout, or
// PostgreSQL): a token minted by the CLI works at once, a revoked one stops at once; services
// of projects unknown to the store are listed as unmapped, and mapped once the project exists.
func TestAdminCLIWhileServing(t *testing.T) {
	for _, b := range storeBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			sim := simaws.New(simaws.Options{Now: Clock(t)})
			srv := httptest.NewServer(sim.Handler())
			t.Cleanup(srv.Close)
			dataDir := t.TempDir()

			team := lastLineOf(cli(t, b, dataDir, "team", "create", "Acme", "--id", "team_acme", "--billing-email", "billing@acme.example"))
			if team != "team_acme" {
				t.Fatalf("team create printed %q", team)
			}
			cli(t, b, dataDir, "member", "add", "team_acme", "ada@acme.example", "--role", "admin")
			for _, p := range []string{"proj_001", "proj_002", "proj_003"} { // proj_004 stays unknown
				cli(t, b, dataDir, "project", "create", "team_acme", "--id", p)
			}
			admin := lastLineOf(cli(t, b, dataDir, "token", "create", "team_acme", "--role", "admin", "--name", "e2e"))

			p := Start(t, ProcOptions{Args: []string{"serve", "--only", "collector,api"}, DataDir: dataDir,
				Config: b.config + "operator_teams: [team_acme]\ncollector:\n  backfill: 2h\n  chunk: 1h\n  interval: 1h\n", Env: append(AWSEnv(t, srv.URL), b.env...)})
			p.WaitReady(90 * time.Second)

			// Minted while serving: works at once.
			member := lastLineOf(cli(t, b, dataDir, "token", "create", "team_acme", "--role", "member"))
			if status, body := get(t, p.URL()+"/api/usage/notifications", member); status != 200 || !strings.Contains(body, `"unreadCount":0`) {
				t.Fatalf("member token minted while serving: %d %s", status, body)
			}
			if status, _ := get(t, p.URL()+"/api/usage/unmapped", member); status != 403 {
				t.Fatalf("unmapped with a member token = %d, want 403", status)
			}
			status, body := get(t, p.URL()+"/api/usage/unmapped", admin)
			if status != 200 || !strings.Contains(body, `"reason":"unknown_project","project":"proj_004"`) ||
				!strings.Contains(body, `"reason":"untagged","deployment":"legacy-untagged-1"`) || strings.Contains(body, `"proj_001"`) ||
				!strings.Contains(body, `"estimatedCost":{"compute":"`) || !strings.Contains(body, `"estimatedCostUnmapped":"`) {
				t.Fatalf("unmapped: %d %s", status, body)
			}
			out := cli(t, b, dataDir, "unmapped", "--url", p.URL(), "--token", admin)
			if !strings.Contains(out, "unknown_project") || !strings.Contains(out, "proj_004") || !strings.Contains(out, "legacy-untagged-1") ||
				!strings.Contains(out, "EST. COST USD") || !strings.Contains(out, "Estimated cost not attributed to any project over 7 days: $") {
				t.Fatalf("unmapped CLI:\n%s", out)
			}
			// Creating the project while serving maps its usage.
			cli(t, b, dataDir, "project", "create", "team_acme", "--id", "proj_004")
			if _, body := get(t, p.URL()+"/api/usage/unmapped", admin); strings.Contains(body, "proj_004") {
				t.Fatalf("proj_004 still unmapped after project create: %s", body)
			}
			// Revoked while serving: stops at once.
			list := cli(t, b, dataDir, "token", "list", "team_acme")
			var memberID string
			for _, line := range strings.Split(list, "\n") {
				if f := strings.Fields(line); len(f) > 1 && f[1] == "member" {
					memberID = f[0]
				}
			}
			if memberID == "" || strings.Contains(list, member) {
				t.Fatalf("token list:\n%s", list)
			}
			cli(t, b, dataDir, "token", "revoke", "team_acme", memberID)
			if status, body := get(t, p.URL()+"/api/usage/notifications", member); status != 401 {
				t.Fatalf("revoked token = %d %s, want 401", status, body)
			}
			p.Stop(20 * time.Second)
			// With the server stopped, the CLI opens the TSDB itself.
			out = cli(t, b, dataDir, "unmapped", "--json")
			if !strings.Contains(out, `"reason": "untagged"`) || !strings.Contains(out, "legacy-untagged-1") || strings.Contains(out, "proj_004") {
				t.Fatalf("unmapped CLI on the stopped server's data:\n%s", out)
			}
		})
	}
}

// The demo seeds teams and projects for the simulated fleet and prints working tokens; a second
// start keeps the data and prints fresh tokens.
func TestDemoPrintsTokens(t *testing.T) {
	dataDir := t.TempDir()
	var prevAdmin string
	for start := range 2 {
		p := Start(t, ProcOptions{Args: []string{"demo"}, DataDir: dataDir, Config: "collector:\n  backfill: 1h\n"})
		expired := timeout(60 * time.Second)
		for !strings.Contains(p.Stdout(), "Press Ctrl-C") {
			if expired() {
				t.Fatalf("start %d: no banner after 60s\n%s\n%s", start, p.Stdout(), tail(p.Stderr(), 3000))
			}
			time.Sleep(50 * time.Millisecond)
		}
		tokens := map[string]string{}
		for _, line := range strings.Split(p.Stdout(), "\n") {
			if label, tok, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && strings.Contains(label, "token") {
				tokens[label] = strings.TrimSpace(tok)
			}
		}
		admin, member := tokens["Admin token (Acme, operator)"], tokens["Member token (Acme)"]
		if !strings.HasPrefix(admin, "cyg_") || !strings.HasPrefix(member, "cyg_") || admin == prevAdmin {
			t.Fatalf("start %d: tokens %v (previous admin %q)", start, tokens, prevAdmin)
		}
		if status, body := get(t, p.URL()+"/api/usage/notifications", member); status != 200 {
			t.Fatalf("member token: %d %s", status, body)
		}
		if status, _ := get(t, p.URL()+"/api/usage/unmapped", member); status != 403 {
			t.Fatalf("member token on an admin endpoint = %d, want 403", status)
		}
		if status, body := get(t, p.URL()+"/api/usage/unmapped", admin); status != 200 {
			t.Fatalf("admin token: %d %s", status, body)
		}
		if prevAdmin != "" { // the first start's tokens still work
			if status, _ := get(t, p.URL()+"/api/usage/notifications", prevAdmin); status != 200 {
				t.Fatalf("first start's admin token = %d after a restart", status)
			}
		}
		prevAdmin = admin
		p.Stop(20 * time.Second)
	}
	out := cli(t, storeBackend{name: "sqlite"}, dataDir, "project", "list")
	for _, want := range []string{"proj_001  team_acme", "proj_002  team_acme", "proj_003  team_globex", "proj_004  team_globex"} {
		if !strings.Contains(out, want) {
			t.Fatalf("project list after two demo starts lacks %q:\n%s", want, out)
		}
	}
}
