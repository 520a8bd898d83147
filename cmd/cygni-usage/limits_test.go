package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cygni/usage/api"
	"github.com/cygni/usage/config"
)

// The configuration's default limits are the API's defaults, and a 0 queue in the file means
// no queue.
func TestAPILimitsFromConfig(t *testing.T) {
	c := config.Default()
	got := apiLimits(c)
	want := api.DefaultLimits()
	// 0 (cores-based) in the file takes the API's computed default.
	if c.Limits.Query.MaxConcurrentPerTeam != 0 || c.Limits.REST.MaxConcurrentPerTeam != 0 {
		t.Fatalf("config defaults %+v", c.Limits)
	}
	got.MaxConcurrentPerTeam, got.RESTMaxConcurrentPerTeam = want.MaxConcurrentPerTeam, want.RESTMaxConcurrentPerTeam
	if !reflect.DeepEqual(got, want) {
		t.Errorf("apiLimits(config.Default()) = %+v\nwant api.DefaultLimits() = %+v", got, want)
	}
	c.Limits.Query.MaxQueuedPerTeam = 0
	if q := apiLimits(c).MaxQueuedPerTeam; q >= 0 {
		t.Errorf("max_queued_per_team: 0 maps to %d, want a negative (no queue)", q)
	}
}

func TestPromRuleDirs(t *testing.T) {
	got := promRuleDirs("/data/rules/shipped", []string{"/etc/cygni/rules/*.yml", "team/a.yml", "x/**/[ab].yml"})
	want := []string{"/data/rules/shipped", "/etc/cygni/rules", "team", "x"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("promRuleDirs = %q, want %q", got, want)
	}
}

// A client that sends its body slowly is cut off at limits.http.read_timeout instead of
// holding the connection.
func TestHTTPServerReadTimeout(t *testing.T) {
	c := config.Default()
	c.Limits.HTTP.ReadTimeout = config.Duration(300 * time.Millisecond)
	srv := newHTTPServer(c, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, "read: "+err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	if srv.ReadHeaderTimeout != 10*time.Second || srv.WriteTimeout != 3*time.Minute || srv.IdleTimeout != 2*time.Minute {
		t.Fatalf("timeouts %v %v %v", srv.ReadHeaderTimeout, srv.WriteTimeout, srv.IdleTimeout)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Headers promise 1000 bytes; only a few come, and then nothing.
	if _, err := io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc"); err != nil {
		t.Fatal(err)
	}
	// A bound for a loaded machine, far above the timeout: the read ends when the server closes
	// the connection, or when this closes it.
	bound := time.AfterFunc(30*time.Second, func() { conn.Close() })
	defer bound.Stop()
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil && err != io.EOF {
		t.Fatalf("the server kept the slow connection: %v", err)
	}
	if strings.Contains(status, "204") {
		t.Fatalf("a truncated body was accepted: %q", status)
	}
}
