// Package e2e drives the real cygni-usage binary: it is built once per test run, started with
// its own data dir, config file and listen port, and talked to over HTTP, as a user would.
//
// No test reads the wall clock to decide what it expects. Each test has one clock (Clock): it
// starts at the suite's pinned instant (CYGNI_TEST_NOW, or clocktest.Default) and advances in
// real time; the simulated AWS of the test reads it, and every process the test starts is
// pinned to it through CYGNI_TEST_NOW, so a restarted process resumes where the killed one was.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cygni/usage/internal/clock"
	"github.com/cygni/usage/internal/clock/clocktest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error

	clocks sync.Map // root test name → clock.Func
)

// Clock returns the test's clock, shared by its subtests: it reads the suite's pinned instant
// when the test first asks for it, and advances in real time from there.
func Clock(t testing.TB) clock.Func {
	t.Helper()
	root, _, _ := strings.Cut(t.Name(), "/")
	if c, ok := clocks.Load(root); ok {
		return c.(clock.Func)
	}
	c, _ := clocks.LoadOrStore(root, clocktest.Clock(t))
	return c.(clock.Func)
}

// timeout returns a function that reports whether d has passed since the call: a bound on a
// test's own waiting, on the monotonic clock; it decides nothing about the data.
func timeout(d time.Duration) func() bool {
	expired := time.After(d)
	done := false
	return func() bool {
		if !done {
			select {
			case <-expired:
				done = true
			default:
			}
		}
		return done
	}
}

// clockEnv pins a child process to the test's clock as it reads now.
func clockEnv(t testing.TB) string {
	return clock.EnvTestNow + "=" + Clock(t)().UTC().Format(time.RFC3339Nano)
}

// Binary builds ./cmd/cygni-usage once per test run and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cygni-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "cygni-usage")
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Dir(filepath.Dir(file))
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/cygni-usage")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// FreeAddr returns a loopback address that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reading test.
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

// Proc is a running cygni-usage process.
type Proc struct {
	t       testing.TB
	cmd     *exec.Cmd
	Addr    string // the --listen address
	DataDir string
	stdout  syncBuffer
	stderr  syncBuffer
	done    chan struct{}
	err     error
}

// ProcOptions start a process.
type ProcOptions struct {
	Args    []string // the subcommand and its flags, e.g. "serve", "--only", "collector,api"
	DataDir string   // --data-dir; a new temp dir when empty
	Config  string   // contents of the --config file; none when empty
	Addr    string   // --listen; a free port when empty
	Env     []string // added to a minimal environment (PATH, HOME)
}

// Start starts the binary. The process is SIGKILLed at the end of the test if still running.
func Start(t testing.TB, o ProcOptions) *Proc {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	if o.Addr == "" {
		o.Addr = FreeAddr(t)
	}
	args := []string{"--data-dir", o.DataDir, "--listen", o.Addr}
	if o.Config != "" {
		path := filepath.Join(t.TempDir(), "cygni-usage.yml")
		if err := os.WriteFile(path, []byte(o.Config), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", path)
	}
	p := &Proc{t: t, Addr: o.Addr, DataDir: o.DataDir, done: make(chan struct{})}
	p.cmd = exec.Command(Binary(t), append(args, o.Args...)...)
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), clockEnv(t)}, o.Env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("stderr of %v:\n%s", o.Args, tail(p.Stderr(), 4000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// Stdout and Stderr return what the process wrote so far.
func (p *Proc) Stdout() string { return p.stdout.String() }
func (p *Proc) Stderr() string { return p.stderr.String() }

// URL is the process's base URL.
func (p *Proc) URL() string { return "http://" + p.Addr }

// WaitReady polls /readyz until it answers 200, the process exits, or the timeout passes.
func (p *Proc) WaitReady(limit time.Duration) {
	p.t.Helper()
	for expired := timeout(limit); !expired(); {
		select {
		case <-p.done:
			p.t.Fatalf("process exited before ready: %v\n%s", p.err, tail(p.Stderr(), 4000))
		default:
		}
		resp, err := http.Get(p.URL() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("not ready after %s\n%s", limit, tail(p.Stderr(), 4000))
}

// Kill sends SIGKILL and waits for the exit.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits for the exit; it fails the test if that takes over timeout or
// the exit is not clean.
func (p *Proc) Stop(timeout time.Duration) {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			p.t.Errorf("exit after SIGTERM: %v\n%s", p.err, tail(p.Stderr(), 4000))
		}
	case <-time.After(timeout):
		p.t.Errorf("no exit %s after SIGTERM", timeout)
		p.Kill()
	}
}

// Wait waits for the process to exit by itself and returns its error (nil on exit status 0).
func (p *Proc) Wait(timeout time.Duration) error {
	p.t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.Kill()
		p.t.Fatalf("still running after %s", timeout)
		return nil
	}
}

// Run runs the binary to completion and returns its combined output and error.
func Run(t testing.TB, timeout time.Duration, env []string, args ...string) (string, error) {
	t.Helper()
	bin := Binary(t) // build first: the timeout is for the run
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), clockEnv(t)}, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// AWSEnv points the AWS SDK of a child process at url with the simulated endpoint's
// credentials, ignoring any AWS configuration of the machine.
func AWSEnv(t testing.TB, url string) []string {
	t.Helper()
	none := filepath.Join(t.TempDir(), "none")
	return []string{
		"AWS_ENDPOINT_URL=" + url,
		"AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=AKIDSIMULATED",
		"AWS_SECRET_ACCESS_KEY=simulated-secret",
		"AWS_CONFIG_FILE=" + none,
		"AWS_SHARED_CREDENTIALS_FILE=" + none,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// LogValue returns the value of key in the first slog text line of s containing msg.
func LogValue(s, msg, key string) string {
	for line := range strings.SplitSeq(s, "\n") {
		if !strings.Contains(line, msg) {
			continue
		}
		_, rest, ok := strings.Cut(line, " "+key+"=")
		if !ok {
			continue
		}
		v, _, _ := strings.Cut(rest, " ")
		return strings.Trim(v, `"`)
	}
	return ""
}
