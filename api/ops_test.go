package api

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
)

// The operations handler of a process without the API part answers the probes and the metrics
// as the full API does, and nothing else.
func TestOpsEndpoints(t *testing.T) {
	set := metrics.NewSet()
	set.NewCounter(`cygni_remote_write_samples_sent_total`).Add(7)
	var notReady error = errors.New("collector: first cycle not done")
	srv := httptest.NewServer(NewOps(Options{Metrics: set, Ready: func() error { return notReady }}))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := get("/healthz"); status != 200 || !strings.Contains(body, `"status":"ok"`) {
		t.Errorf("/healthz: %d %s", status, body)
	}
	if status, body := get("/readyz"); status != 503 || !strings.Contains(body, "first cycle not done") {
		t.Errorf("/readyz before ready: %d %s", status, body)
	}
	notReady = nil
	if status, body := get("/readyz"); status != 200 || !strings.Contains(body, `"status":"ready"`) {
		t.Errorf("/readyz: %d %s", status, body)
	}
	if status, body := get("/metrics"); status != 200 || !strings.Contains(body, "cygni_remote_write_samples_sent_total 7\n") {
		t.Errorf("/metrics: %d %s", status, body)
	}
	for _, path := range []string{"/api/usage", "/api/v1/query", "/"} {
		if status, _ := get(path); status != 404 {
			t.Errorf("%s: %d, want 404 (no API without the api part)", path, status)
		}
	}
}
