package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// getJSON GETs url with the bearer token and decodes the answer; any status but 200 fails.
func getJSON(t *testing.T, url, token string, v any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, res.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v\n%s", url, err, b)
	}
}

// waitBanner waits for the demo's banner on stdout.
func waitBanner(t *testing.T, p *Proc) string {
	t.Helper()
	expired := timeout(3 * time.Minute)
	for !expired() {
		if out := p.Stdout(); strings.Contains(out, "Press Ctrl-C to stop") {
			return out
		}
		select {
		case <-p.done:
			t.Fatalf("demo exited: %v\n%s", p.err, tail(p.Stderr(), 4000))
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("no banner:\n%s\n%s", p.Stdout(), tail(p.Stderr(), 4000))
	return ""
}

// The demo a newcomer reads: the library logs stay below info, the backfill reports once on a
// line of its own, the banner comes last with the console URL, the tokens, a curl and the truth
// URL on the fixed --sim-addr; the seeded fleet has a project over its budget, one at 80 %, an
// oversized deployment, and notifications within a minute; a restart keeps the budgets.
func TestDemoForANewcomer(t *testing.T) {
	dataDir := t.TempDir()
	simAddr := FreeAddr(t)
	p := Start(t, ProcOptions{Args: []string{"demo", "--sim-addr", simAddr}, DataDir: dataDir})
	banner := waitBanner(t, p)
	stderr := p.Stderr()

	for _, bad := range []string{"component=tsdb", "SDK ", "failed to discard", "\r"} {
		if strings.Contains(stderr, bad) {
			t.Errorf("stderr shows %q:\n%s", bad, tail(stderr, 3000))
		}
	}
	if n := strings.Count(stderr, "backfill done: "); n != 1 || !regexp.MustCompile(`(?m)^backfill done: [0-9,]+ samples in [0-9.]+m?s \(`).MatchString(stderr) {
		t.Errorf("want one line \"backfill done: N samples in T\", got %d:\n%s", n, tail(stderr, 3000))
	}
	if strings.Contains(banner, "level=") {
		t.Errorf("log lines on stdout:\n%s", banner)
	}
	if i := strings.Index(banner, "Cygni Usage demo is ready."); i < 0 || strings.TrimSpace(banner[:i]) != "" {
		t.Errorf("the banner is not all of stdout:\n%s", banner)
	}
	m := regexp.MustCompile(`Console:\s+(\S+)`).FindStringSubmatch(banner)
	if m == nil || m[1] != p.URL()+"/" {
		t.Fatalf("console URL %v, want %s/:\n%s", m, p.URL(), banner)
	}
	tok := map[string]string{}
	for _, label := range []string{"Admin token (Acme, operator)", "Member token (Acme)", "Admin token (Globex)"} {
		m := regexp.MustCompile(regexp.QuoteMeta(label) + `:\s+(cyg_\S+)`).FindStringSubmatch(banner)
		if m == nil {
			t.Fatalf("no %s in the banner:\n%s", label, banner)
		}
		tok[label] = m[1]
	}
	admin := tok["Admin token (Acme, operator)"]
	if !strings.Contains(banner, `curl -H "Authorization: Bearer `+admin+`" `+p.URL()+"/api/projects/proj_002/budget") {
		t.Errorf("no ready-to-paste curl in the banner:\n%s", banner)
	}
	truth := regexp.MustCompile(`Ground truth:\s+(\S+)`).FindStringSubmatch(banner)
	if truth == nil || !strings.HasPrefix(truth[1], "http://"+simAddr+"/_sim/truth?") {
		t.Fatalf("truth URL %v, want one on --sim-addr %s", truth, simAddr)
	}
	var tv struct{ Value float64 }
	getJSON(t, truth[1], "", &tv)
	if tv.Value <= 0 {
		t.Errorf("truth %s = %v, want usage", truth[1], tv.Value)
	}

	// The console is at the printed URL.
	res, err := http.Get(p.URL() + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(page), "<title>Cygni Usage</title>") || res.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("GET / = %d, CSP %q:\n%.300s", res.StatusCode, res.Header.Get("Content-Security-Policy"), page)
	}

	// The seeded statuses hold at the pinned instant.
	type budget struct {
		Used, Limit, PercentUsed, Forecast float64
		Status                             string
		PeriodEnd                          time.Time
	}
	var b1, b2 budget
	getJSON(t, p.URL()+"/api/projects/proj_001/budget", admin, &b1)
	getJSON(t, p.URL()+"/api/projects/proj_002/budget", admin, &b2)
	if b2.Status != "exceeded" || b2.Used < b2.Limit {
		t.Errorf("proj_002 = %+v, want over its budget", b2)
	}
	// proj_001 crosses 80 % within minutes: at the forecast's rate (the last 24 hours'), the
	// rest of the way to 80 % takes at most a quarter of an hour.
	perMinute := (b1.Forecast - b1.Used) / b1.PeriodEnd.Sub(Clock(t)()).Minutes()
	if toGo := (0.8*b1.Limit - b1.Used) / perMinute; b1.Status == "exceeded" || perMinute <= 0 || toGo > 15 {
		t.Errorf("proj_001 = %+v: %.1f minutes to 80 %% at $%.4f a minute, want at most 15", b1, toGo, perMinute)
	}
	var recs struct {
		Recommendations []struct{ ProjectID, Deployment string }
	}
	getJSON(t, p.URL()+"/api/usage/recommendations", admin, &recs)
	found := false
	for _, r := range recs.Recommendations {
		found = found || (r.ProjectID == "proj_001" && r.Deployment == "web")
	}
	if !found {
		t.Errorf("recommendations %+v, want proj_001's oversized web deployment", recs)
	}
	var n struct {
		Notifications []struct{ ProjectID, Type string }
	}
	for expired := timeout(90 * time.Second); ; {
		getJSON(t, p.URL()+"/api/usage/notifications", admin, &n)
		exceeded := false
		for _, x := range n.Notifications {
			exceeded = exceeded || (x.ProjectID == "proj_002" && x.Type == "budget_exceeded")
		}
		if exceeded {
			break
		}
		if expired() {
			t.Fatalf("no budget_exceeded notification for proj_002: %+v", n)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// `unmapped` without a token reads the TSDB beside the running server, without a word about
	// its lock file.
	out, err := Run(t, time.Minute, []string{clockEnv(t)}, "--data-dir", dataDir, "unmapped")
	if err != nil || !strings.Contains(out, "legacy-untagged-1") || strings.Contains(strings.ToLower(out), "lock") {
		t.Errorf("unmapped while the demo runs: %v\n%s", err, out)
	}

	// A restart continues: same budgets, fresh tokens, no second backfill of the whole period.
	p.Stop(60 * time.Second) // shutting down writes the heads of an 18-day backfill into blocks
	p2 := Start(t, ProcOptions{Args: []string{"demo", "--sim-addr", simAddr}, DataDir: dataDir})
	banner2 := waitBanner(t, p2)
	admin2 := regexp.MustCompile(`Admin token \(Acme, operator\):\s+(cyg_\S+)`).FindStringSubmatch(banner2)
	if admin2 == nil || admin2[1] == admin {
		t.Fatalf("no fresh admin token after the restart:\n%s", banner2)
	}
	var again budget
	getJSON(t, p2.URL()+"/api/projects/proj_002/budget", admin2[1], &again)
	if again.Limit != b2.Limit {
		t.Errorf("proj_002's budget after a restart = %v, want the seeded %v", again.Limit, b2.Limit)
	}
}

// --version tells the build: the module version and, when the binary was built from a checkout
// with VCS stamping, the revision — exactly what `go version -m` reads from the binary.
func TestVersion(t *testing.T) {
	out, err := Run(t, 30*time.Second, nil, "--version")
	if err != nil {
		t.Fatalf("--version: %v\n%s", err, out)
	}
	info, err := exec.Command("go", "version", "-m", Binary(t)).Output()
	if err != nil {
		t.Fatal(err)
	}
	var modVersion, rev, goVersion string
	for i, line := range strings.Split(string(info), "\n") {
		f := strings.Fields(line)
		switch {
		case i == 0 && len(f) == 2:
			goVersion = f[1]
		case len(f) >= 3 && f[0] == "mod":
			modVersion = f[2]
		case len(f) == 2 && f[0] == "build" && strings.HasPrefix(f[1], "vcs.revision="):
			rev = strings.TrimPrefix(f[1], "vcs.revision=")[:12]
		}
	}
	want := "cygni-usage " + modVersion
	if !strings.HasPrefix(out, want) || !strings.Contains(out, goVersion) || (rev != "" && !strings.Contains(out, "revision "+rev)) {
		t.Errorf("--version = %q, want %q with revision %q and %s", out, want, rev, goVersion)
	}
	if strings.Contains(out, "dev\n") || out == "dev" {
		t.Errorf("--version = %q", out)
	}
}
