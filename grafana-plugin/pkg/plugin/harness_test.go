package plugin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/grpcplugin"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
)

// The tests run the two programs a user runs: cygni-usage (built from ../cmd/cygni-usage of the
// repository, started as a process and spoken to over HTTP only) and this plugin's backend
// (built static, CGO_ENABLED=0, as Grafana's Alpine image needs it, and driven over go-plugin's
// gRPC exactly as Grafana drives it).

// envTestNow pins the clock of cygni-usage (and of these tests) to one instant, as the rest of
// the suite does; defaultTestNow is the suite's instant when it is not set.
const (
	envTestNow     = "CYGNI_TEST_NOW"
	defaultTestNow = "2026-11-18T09:30:00Z"
)

// testNow is the pinned instant of the run.
func testNow(t testing.TB) time.Time {
	t.Helper()
	v := os.Getenv(envTestNow)
	if v == "" {
		v = defaultTestNow
	}
	now, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		t.Fatalf("%s=%q: %v", envTestNow, v, err)
	}
	return now.UTC()
}

var (
	binDirOnce sync.Once
	binDir     string
	binDirErr  error
	builds     sync.Map // output name -> *build
)

type build struct {
	once sync.Once
	path string
	err  error
}

// repoRoot is the repository's root (the server's module), two levels above this module.
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// goBuild builds pkg of the module in dir into a temporary directory once per test run.
func goBuild(t testing.TB, dir, pkg, out string, env ...string) string {
	t.Helper()
	binDirOnce.Do(func() { binDir, binDirErr = os.MkdirTemp("", "cygni-plugin-test-") })
	if binDirErr != nil {
		t.Fatal(binDirErr)
	}
	v, _ := builds.LoadOrStore(out, &build{})
	b := v.(*build)
	b.once.Do(func() {
		b.path = filepath.Join(binDir, out)
		cmd := exec.Command("go", "build", "-o", b.path, pkg)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		if o, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("build %s: %v\n%s", pkg, err, o)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// serviceBinary is cygni-usage, built from the repository's ../cmd/cygni-usage.
func serviceBinary(t testing.TB) string {
	return goBuild(t, repoRoot(t), "./cmd/cygni-usage", "cygni-usage")
}

// pluginBinary is this plugin's backend for the host, built static as `make plugin` builds it.
func pluginBinary(t testing.TB) string {
	return goBuild(t, filepath.Join(repoRoot(t), "grafana-plugin"), "./cmd/gpx_usage", pluginExecutable(runtime.GOOS, runtime.GOARCH), "CGO_ENABLED=0")
}

// pluginExecutable is the name Grafana looks for in dist/ (plugin.json's executable gpx_usage).
func pluginExecutable(goos, goarch string) string {
	name := "gpx_usage_" + goos + "_" + goarch
	if goos == "windows" {
		name += ".exe"
	}
	return name
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// service is a running cygni-usage (`serve --only collector,api,alerting` on the built-in
// simulated AWS, real TSDB and SQLite store, the shipped rule files): team A owns proj_001
// ("Web shop", a $1 budget and a 50 % threshold, so that its budget alerts fire) and proj_002 ("Batch"); team B
// owns proj_003 ("Other").
type service struct {
	url            string
	tokenA, tokenB string
	// from and to are the collector's first backfill, as the process logged it: whole hours
	// inside it are collected completely before /readyz answers 200.
	from, to time.Time
	stderr   *syncBuffer
	// now is the pinned instant the process started at, started when (by the test's monotonic
	// clock) it was started: its clock reads about now + time.Since(started).
	now, started time.Time
}

// clock is the service's clock, read from the test's side: the pinned instant plus the time
// elapsed since the process started. It runs a little ahead of the process's own reading.
func (s *service) clock() time.Time {
	return s.now.Add(time.Since(s.started))
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startService(t testing.TB) *service {
	t.Helper()
	bin := serviceBinary(t)
	root := repoRoot(t)
	now := testNow(t)
	dataDir := t.TempDir()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), envTestNow + "=" + now.Format(time.RFC3339Nano)}
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"--data-dir", dataDir}, args...)...)
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("cygni-usage %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return strings.TrimSpace(string(out))
	}
	// A billing period that began at least two days before now, so that month-to-date costs
	// (and with them the $1 budget's alerts) exist at any pinned instant, a month's first day
	// included.
	anchor := "1"
	if now.Day() < 3 {
		anchor = "28"
	}
	cli("team", "create", "Team A", "--id", "team_a", "--anchor-day", anchor, "--default-limit", "100000")
	cli("team", "create", "Team B", "--id", "team_b", "--anchor-day", anchor)
	cli("project", "create", "team_a", "--id", "proj_001", "--name", "Web shop", "--limit", "1")
	cli("project", "create", "team_a", "--id", "proj_002", "--name", "Batch")
	cli("project", "create", "team_b", "--id", "proj_003", "--name", "Other")
	// A customer's own threshold (50 % of the actual cost) on proj_001, reached with its $1 budget:
	// the shipped ProjectBudgetThreshold and its Grafana rule both hold for it.
	cli("thresholds", "set", "team_a", `[{"percent":50,"basis":"actual","recipients":{"billingContact":true}}]`, "--project", "proj_001")
	s := &service{tokenA: cli("token", "create", "team_a", "--role", "member", "--name", "grafana"), tokenB: cli("token", "create", "team_b", "--role", "member")}

	config := filepath.Join(t.TempDir(), "cygni-usage.yml")
	rules := filepath.Join(root, "alerting", "rules", "*.yml")
	if err := os.WriteFile(config, []byte("aws:\n  simulated: true\ncollector:\n  backfill: 50h\nalerting:\n  evaluation_interval: 1s\n  rule_files: ["+fmt.Sprintf("%q", rules)+"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(bin, "--data-dir", dataDir, "--listen", addr, "--config", config, "serve", "--only", "collector,api,alerting")
	cmd.Env = env
	s.stderr = &syncBuffer{}
	cmd.Stdout, cmd.Stderr = io.Discard, s.stderr
	s.now, s.started = now, time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("cygni-usage stderr (tail):\n%s", tail(s.stderr.String(), 4000))
		}
	})
	s.url = "http://" + addr
	deadline := time.Now().Add(3 * time.Minute)
	for {
		select {
		case err := <-done:
			t.Fatalf("cygni-usage exited: %v\n%s", err, tail(s.stderr.String(), 4000))
		default:
		}
		if resp, err := http.Get(s.url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("cygni-usage not ready after 3m\n%s", tail(s.stderr.String(), 4000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	var err error
	if s.from, err = time.Parse(time.RFC3339Nano, logValue(s.stderr.String(), "no watermark; backfilling", "from")); err != nil {
		t.Fatalf("the backfill's start is not logged: %v", err)
	}
	if s.to, err = time.Parse(time.RFC3339Nano, logValue(s.stderr.String(), "no watermark; backfilling", "to")); err != nil {
		t.Fatalf("the backfill's end is not logged: %v", err)
	}
	return s
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// logValue returns the value of key in the first slog text line of s containing msg.
func logValue(s, msg, key string) string {
	for line := range strings.SplitSeq(s, "\n") {
		if !strings.Contains(line, msg) {
			continue
		}
		if _, rest, ok := strings.Cut(line, " "+key+"="); ok {
			v, _, _ := strings.Cut(rest, " ")
			return strings.Trim(v, `"`)
		}
	}
	return ""
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
		t.Fatalf("GET %s?%s: %d %s", path, params.Encode(), resp.StatusCode, body)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// post calls the service with a JSON body.
func (s *service) post(t testing.TB, token, path, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
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
	bin := pluginBinary(t)
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

// request is one query as Grafana sends it: the time range, the panel's interval, and whether
// it comes from an alert rule.
type request struct {
	from, to  time.Time
	interval  time.Duration
	fromAlert bool
}

func (p *pluginClient) query(t testing.TB, pc backend.PluginContext, r request, q map[string]any) backend.DataResponse {
	t.Helper()
	raw, _ := json.Marshal(q)
	if r.interval == 0 {
		r.interval = time.Hour
	}
	req := &backend.QueryDataRequest{
		PluginContext: pc,
		Queries:       []backend.DataQuery{{RefID: "A", JSON: raw, TimeRange: backend.TimeRange{From: r.from, To: r.to}, Interval: r.interval, MaxDataPoints: 1000}},
	}
	if r.fromAlert {
		req.Headers = map[string]string{"FromAlert": "true"}
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
