// Package storetest starts real remote series stores for tests: a VictoriaMetrics single-node
// and a Prometheus server with its remote-write receiver, each on a free loopback port with a
// data directory of its own, stopped when the test ends. A missing binary skips the test, or
// fails it when CI=true, so CI can never pass without exercising both stores.
//
// Install the binaries into $(go env GOPATH)/bin as scripts/test.sh does:
//
//	go install github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics@v1.151.0
//	go install github.com/prometheus/prometheus/cmd/prometheus@v0.316.0
package storetest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Kinds of store, the values of storage.remote.kind.
const (
	VictoriaMetrics = "victoriametrics"
	Prometheus      = "prometheus"
)

// Kinds lists the kinds in a stable order.
var Kinds = []string{VictoriaMetrics, Prometheus}

// Server is a running store.
type Server struct {
	Kind     string
	WriteURL string // remote-write endpoint
	ReadURL  string // storage.remote.read_url for Kind
	BaseURL  string // http://127.0.0.1:port

	tb      testing.TB
	bin     string
	args    []string
	dataDir string
	addr    string
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has exited; waitErr is then its exit status
	waitErr error
	logFile *os.File
}

// Binary finds name on PATH or in $(go env GOPATH)/bin.
func Binary(tb testing.TB, name string) string {
	tb.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if home, err := os.UserHomeDir(); err == nil {
			gopath = filepath.Join(home, "go")
		}
	}
	p := filepath.Join(gopath, "bin", name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s is not installed and CI=true (scripts/test.sh installs it into $(go env GOPATH)/bin)", name)
	}
	tb.Skipf("%s is not installed (go install it into $(go env GOPATH)/bin, see internal/storetest)", name)
	return ""
}

func freeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Start starts a store of kind.
func Start(tb testing.TB, kind string) *Server {
	tb.Helper()
	switch kind {
	case VictoriaMetrics:
		return StartVictoriaMetrics(tb)
	case Prometheus:
		return StartPrometheus(tb)
	}
	tb.Fatalf("unknown store kind %q", kind)
	return nil
}

// StartVictoriaMetrics starts a VictoriaMetrics single-node. Samples are kept for 100 years
// (the default month would silently drop the tests' pinned instants), and deduplication is at
// 1 ms (-dedup.minScrapeInterval=1ms): a resent sample (same timestamp, same value) is stored
// once, while a correction, written 1 ms or more away from the samples of its period, is kept.
func StartVictoriaMetrics(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{Kind: VictoriaMetrics, tb: tb, bin: Binary(tb, "victoria-metrics"), dataDir: tb.TempDir(), addr: freeAddr(tb)}
	s.BaseURL = "http://" + s.addr
	s.WriteURL = s.BaseURL + "/api/v1/write"
	s.ReadURL = s.BaseURL
	s.args = []string{
		"-storageDataPath=" + s.dataDir, "-httpListenAddr=" + s.addr, "-retentionPeriod=100y", "-futureRetention=100y",
		"-dedup.minScrapeInterval=1ms", "-loggerLevel=ERROR", "-search.disableCache",
	}
	s.Start()
	return s
}

// StartPrometheus starts a Prometheus server with --web.enable-remote-write-receiver and an
// out-of-order window of 30 days, so backfills and corrections behind the head are taken.
func StartPrometheus(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{Kind: Prometheus, tb: tb, bin: Binary(tb, "prometheus"), dataDir: tb.TempDir(), addr: freeAddr(tb)}
	s.BaseURL = "http://" + s.addr
	s.WriteURL = s.BaseURL + "/api/v1/write"
	s.ReadURL = s.BaseURL + "/api/v1/read"
	cfg := filepath.Join(tb.TempDir(), "prometheus.yml")
	if err := os.WriteFile(cfg, []byte("storage:\n  tsdb:\n    out_of_order_time_window: 30d\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
	s.args = []string{
		"--config.file=" + cfg, "--storage.tsdb.path=" + filepath.Join(s.dataDir, "data"),
		"--web.listen-address=" + s.addr, "--web.enable-remote-write-receiver",
		"--storage.tsdb.retention.time=100y", "--log.level=error",
	}
	s.Start()
	return s
}

// Start (re)starts the server on its address and data directory and waits until it is ready.
func (s *Server) Start() {
	tb := s.tb
	tb.Helper()
	if s.cmd != nil {
		tb.Fatalf("%s already running", s.Kind)
	}
	lf, err := os.OpenFile(filepath.Join(s.dataDir, "server.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		tb.Fatal(err)
	}
	s.logFile = lf
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// Linux sends Pdeathsig when the thread that forked the child ends, not the process: fork
	// and wait on a goroutine locked to its thread, so the store lives exactly as long as it is
	// waited for (or the test process dies).
	exited, started := make(chan struct{}), make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer close(exited)
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		s.waitErr = cmd.Wait()
	}()
	if err := <-started; err != nil {
		tb.Fatalf("start %s: %v", s.bin, err)
	}
	s.cmd, s.exited = cmd, exited
	tb.Cleanup(func() {
		s.Stop()
		if tb.Failed() {
			b, _ := os.ReadFile(lf.Name())
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			tb.Logf("%s log (%s):\n%s", s.Kind, s.addr, b)
		}
	})
	ready := s.BaseURL + "/health"
	if s.Kind == Prometheus {
		ready = s.BaseURL + "/-/ready"
	}
	deadline := time.Now().Add(60 * time.Second)
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	for {
		resp, err := hc.Get(ready)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(lf.Name())
			tb.Fatalf("%s did not get ready on %s: %v\n%s", s.Kind, s.addr, err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the server (SIGTERM, then SIGKILL after 10 s); Start starts it again on the same
// data. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
	_ = s.logFile.Close()
}

// String names the server for test logs.
func (s *Server) String() string { return s.Kind + "@" + s.addr + " pid " + strconv.Itoa(s.pid()) }

func (s *Server) pid() int {
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Err describes a server that is not running.
func (s *Server) Err() error {
	if s.cmd == nil {
		return fmt.Errorf("%s is stopped", s.Kind)
	}
	select {
	case <-s.exited:
		return fmt.Errorf("%s exited on its own: %v", s.Kind, s.waitErr)
	default:
	}
	return nil
}
