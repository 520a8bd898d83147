package api

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cygni/usage/config"
	"github.com/cygni/usage/query"
	"github.com/cygni/usage/simaws"
	"github.com/cygni/usage/store"
	"github.com/cygni/usage/tsdb"
)

// hostileDeployments are cygni:deployment tag values a customer may set: AWS tags allow
// letters, digits, spaces and _ . : / = + - @, enough for a spreadsheet formula.
var hostileDeployments = []string{`=HYPERLINK("http://evil.example","x")`, "+1+1", "-2+3", "@SUM(A1:A9)"}

// hostileProjectNames are project names with formula starts, CSV and JSON metacharacters and
// control characters (Go's %q would write \x01 and \v, which are not JSON).
var hostileProjectNames = []string{"=cmd|' /C calc'!A0", "-Tab\x01\v\x7f \t\"q\", a\\b\n</script>\u2028\rx", "@carriage\r\n"}

// TestExportHostileNames exports the simulated fleet with hostile deployment names (from ECS
// tags) and project names, and reads the files back as a spreadsheet user and a JSON parser
// would: every text cell is neutralised in CSV and exact in JSON.
func TestExportHostileNames(t *testing.T) {
	ctx := context.Background()
	sim := simaws.New(simaws.Options{Seed: 11, Projects: 3, ServicesPerProject: len(hostileDeployments), Untagged: -1,
		DeploymentNames: hostileDeployments, Now: func() time.Time { return usageNow }})
	db, err := tsdb.Open(nil, nil, tsdb.Options{Dir: t.TempDir(), OutOfOrderWindow: 400 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	from, to := time.Date(2024, 1, 19, 0, 0, 0, 0, time.UTC), time.Date(2024, 1, 19, 3, 0, 0, 0, time.UTC)
	usageWriteSim(t, db, sim, from, to)
	engine, err := query.New(nil, nil, query.Options{Storage: db, Prices: query.NewPrices(config.Default().Pricing), Now: func() time.Time { return usageNow }})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, nil, store.Options{DataDir: t.TempDir(), Now: func() time.Time { return usageNow }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if _, err := st.CreateTeam(ctx, store.Team{ID: "team_a", Name: "Team A"}); err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for i, name := range hostileProjectNames {
		id := []string{"proj_001", "proj_002", "proj_003"}[i]
		p, err := st.CreateProject(ctx, store.Project{ID: id, TeamID: "team_a", Name: name})
		if err != nil {
			t.Fatal(err)
		}
		names[id] = p.Name // as the store keeps it (trimmed)
	}
	tok, _, err := st.CreateToken(ctx, "team_a", "member", "test")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(Options{AuthDeps: AuthDeps{Tokens: StoreTokens(st)}, UsageDeps: UsageDeps{Usage: engine, UsageProjects: st}}))
	t.Cleanup(srv.Close)
	f := &usageFixture{srv: srv}
	path := "/api/usage/export?startDate=" + from.Format(time.RFC3339) + "&endDate=" + to.Format(time.RFC3339)

	wantDeps := map[string]bool{}
	for _, d := range hostileDeployments {
		wantDeps[d] = true
	}
	t.Run("csv", func(t *testing.T) {
		code, body, _ := f.do(t, "GET", tok, path+"&format=csv", "")
		if code != 200 {
			t.Fatalf("%d %s", code, body)
		}
		recs, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
		if err != nil {
			t.Fatalf("%v: %q", err, body)
		}
		seen := map[string]bool{}
		for _, r := range recs[1:] {
			for i, cell := range r {
				if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
					t.Fatalf("column %s: cell %q would run as a formula", exportColumns[i], cell)
				}
			}
			if want := "'" + names[r[1]]; r[2] != want {
				t.Errorf("projectName %q, want %q", r[2], want)
			}
			dep, ok := strings.CutPrefix(r[3], "'")
			if !ok || !wantDeps[dep] {
				t.Errorf("deployment %q is not a neutralised hostile name", r[3])
			}
			seen[dep] = true
		}
		if len(seen) != len(hostileDeployments) {
			t.Errorf("deployments seen %v, want all of %v", seen, hostileDeployments)
		}
	})
	t.Run("json", func(t *testing.T) {
		code, body, _ := f.do(t, "GET", tok, path+"&format=json", "")
		if code != 200 {
			t.Fatalf("%d %s", code, body)
		}
		if strings.Contains(string(body), `\x`) || strings.Contains(string(body), `\v`) {
			t.Fatalf("Go escapes in JSON: %s", body)
		}
		dec := json.NewDecoder(strings.NewReader(string(body)))
		var rows []map[string]any
		if err := dec.Decode(&rows); err != nil {
			t.Fatalf("%v: %q", err, body)
		}
		if len(rows) == 0 {
			t.Fatal("no rows")
		}
		seen := map[string]bool{}
		for _, r := range rows {
			if r["projectName"] != names[r["projectId"].(string)] {
				t.Errorf("projectName %q, want %q exactly", r["projectName"], names[r["projectId"].(string)])
			}
			dep := r["deployment"].(string)
			if !wantDeps[dep] {
				t.Errorf("deployment %q, want one of %q exactly", dep, hostileDeployments)
			}
			seen[dep] = true
		}
		if len(seen) != len(hostileDeployments) {
			t.Errorf("deployments seen %v", seen)
		}
	})
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range append(append([]string{"", "web", "proj_001", "2024-01-02T00:00:00Z", "Ä", "\xff\xfe", "a&b<c>"}, hostileProjectNames...), hostileDeployments...) {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, []byte(s)); string(got) != string(want) {
			t.Errorf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	}
}

func TestCSVNeutral(t *testing.T) {
	for in, want := range map[string]string{
		"": "", "web": "web", "=1+1": "'=1+1", "+1": "'+1", "-1": "'-1", "@x": "'@x",
		"\tx": "'\tx", "\rx": "'\rx", "a=b": "a=b", "'quoted": "'quoted",
	} {
		if got := csvNeutral(in); got != want {
			t.Errorf("csvNeutral(%q) = %q, want %q", in, got, want)
		}
	}
}
