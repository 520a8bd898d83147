package api_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cygni/usage/api"
	"github.com/cygni/usage/series"
)

// rawCall sends a request and returns the status, the headers and the decoded Prometheus
// envelope; the body must be JSON whatever the status.
func (f *promFixture) rawCall(t *testing.T, method, token, path string, body io.Reader, hdr map[string]string) (int, http.Header, promResponse) {
	t.Helper()
	req, err := http.NewRequest(method, f.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var pr promResponse
	if resp.StatusCode != http.StatusNoContent {
		if err := json.Unmarshal(b, &pr); err != nil {
			t.Fatalf("%s %s: %d, body %.300q is not JSON: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode, resp.Header, pr
}

// wantRefusal checks a refusal in Prometheus' envelope naming the limit.
func wantRefusal(t *testing.T, code int, pr promResponse, wantCode int, limit string) {
	t.Helper()
	if code != wantCode || pr.Status != "error" || pr.ErrorType == "" || !strings.Contains(pr.Error, limit) {
		t.Fatalf("got %d %+v, want %d in the Prometheus envelope naming %s", code, pr, wantCode, limit)
	}
}

func TestPromCORS(t *testing.T) {
	q := "/api/v1/query?query=" + url.QueryEscape("vector(1)") + "&time=1705276800"
	t.Run("off by default", func(t *testing.T) {
		f := newPromFixture(t)
		code, h, pr := f.rawCall(t, http.MethodGet, "tok-a", q, nil, map[string]string{"Origin": "https://grafana.example"})
		if code != http.StatusOK || pr.Status != "success" {
			t.Fatalf("with an Origin header: %d %+v", code, pr)
		}
		if v := h.Get("Access-Control-Allow-Origin"); v != "" {
			t.Fatalf("CORS is off but Access-Control-Allow-Origin is %q", v)
		}
	})
	t.Run("allowed origins", func(t *testing.T) {
		f := newPromFixtureLimits(t, api.Limits{CORSAllowedOrigins: []string{"https://grafana.example"}})
		code, h, _ := f.rawCall(t, http.MethodGet, "tok-a", q, nil, map[string]string{"Origin": "https://grafana.example"})
		if code != http.StatusOK || h.Get("Access-Control-Allow-Origin") != "https://grafana.example" {
			t.Fatalf("allowed origin: %d, Access-Control-Allow-Origin %q", code, h.Get("Access-Control-Allow-Origin"))
		}
		code, h, _ = f.rawCall(t, http.MethodGet, "tok-a", q, nil, map[string]string{"Origin": "https://evil.example"})
		if code != http.StatusOK || h.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("other origin: %d, Access-Control-Allow-Origin %q", code, h.Get("Access-Control-Allow-Origin"))
		}
		// A browser's preflight carries no token.
		code, h, _ = f.rawCall(t, http.MethodOptions, "", "/api/v1/query", nil, map[string]string{"Origin": "https://grafana.example", "Access-Control-Request-Method": "POST"})
		if code != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "https://grafana.example" || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Fatalf("preflight: %d %v", code, h)
		}
		// A 401 still carries the headers, so the script can read the error.
		code, h, pr := f.rawCall(t, http.MethodGet, "", q, nil, map[string]string{"Origin": "https://grafana.example"})
		if code != http.StatusUnauthorized || pr.Status != "error" || h.Get("Access-Control-Allow-Origin") != "https://grafana.example" {
			t.Fatalf("401: %d %+v %v", code, pr, h)
		}
	})
}

func TestPromAuthErrorsInPromEnvelope(t *testing.T) {
	f := newPromFixture(t)
	for _, tok := range []string{"", "tok-unknown"} {
		code, h, pr := f.rawCall(t, http.MethodGet, tok, "/api/v1/query?query=vector(1)", nil, nil)
		if code != http.StatusUnauthorized || pr.Status != "error" || pr.ErrorType != "unauthorized" || pr.Error == "" {
			t.Fatalf("token %q: %d %+v", tok, code, pr)
		}
		if h.Get("WWW-Authenticate") == "" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("headers %v", h)
		}
	}
	code, h, pr := f.rawCall(t, http.MethodDelete, "tok-a", "/api/v1/query", nil, nil)
	if code != http.StatusMethodNotAllowed || pr.Status != "error" || h.Get("Allow") != "GET, POST, OPTIONS" {
		t.Fatalf("DELETE: %d %+v Allow %q", code, pr, h.Get("Allow"))
	}
	code, _, pr = f.rawCall(t, http.MethodGet, "tok-a", "/api/v1/nope", nil, nil)
	if code != http.StatusNotFound || pr.Status != "error" || pr.ErrorType != "not_found" {
		t.Fatalf("unknown path: %d %+v", code, pr)
	}
}

func TestPromQueryLimits(t *testing.T) {
	f := newPromFixtureLimits(t, api.Limits{MaxSeries: 3, MaxResponseBytes: 2048})
	end := f.from.Add(time.Duration(f.hours*60-1) * time.Minute)
	at := fmt.Sprint(end.Unix())
	get := func(path string, v url.Values) (int, promResponse) {
		// identity: the limit counts the bytes sent, and gzip would shrink this small answer.
		code, _, pr := f.rawCall(t, http.MethodGet, "tok-a", path+"?"+v.Encode(), nil, map[string]string{"Accept-Encoding": "identity"})
		return code, pr
	}
	cases := []struct {
		name  string
		path  string
		v     url.Values
		limit string
	}{
		{"step under the minimum", "/api/v1/query_range", url.Values{"query": {"vector(1)"}, "start": {at}, "end": {at}, "step": {"0.0001"}}, "limits.query.min_step"},
		{"too many points", "/api/v1/query_range", url.Values{"query": {"vector(1)"}, "start": {"0"}, "end": {at}, "step": {"60"}}, "limits.query.max_points_per_series"},
		{"fine subquery", "/api/v1/query", url.Values{"query": {`{__name__=~"cygni_.*"}[30d:1s]`}, "time": {at}}, "limits.query.min_subquery_step"},
		{"long subquery", "/api/v1/query", url.Values{"query": {`max_over_time(cygni_cpu_seconds[400d:10s])`}, "time": {at}}, "limits.query.max_subquery_points"},
		{"nested subquery", "/api/v1/query", url.Values{"query": {`sum(rate(cygni_cpu_seconds[5m:1ms]))`}, "time": {at}}, "limits.query.min_subquery_step"},
		{"deep nesting", "/api/v1/query", url.Values{"query": {strings.Repeat("(", 65) + "1" + strings.Repeat(")", 65)}, "time": {at}}, "limits.query.max_nesting_depth"},
		{"long query", "/api/v1/query", url.Values{"query": {strings.Repeat("1+", 9000) + "1"}, "time": {at}}, "limits.query.max_query_length"},
		{"long selector", "/api/v1/series", url.Values{"match[]": {`{project=~"` + strings.Repeat("a", 17000) + `"}`}}, "limits.query.max_query_length"},
		{"too many series", "/api/v1/query", url.Values{"query": {`{__name__=~"cygni_.*"}`}, "time": {at}}, "limits.query.max_series"},
		{"too many series (series API)", "/api/v1/series", url.Values{"match[]": {`{__name__=~"cygni_.*"}`}}, "limits.query.max_series"},
		{"answer too large", "/api/v1/query_range", url.Values{"query": {series.CPUSeconds + `{project="proj_a1"}`}, "start": {fmt.Sprint(f.from.Unix())}, "end": {at}, "step": {"60"}}, "limits.query.max_response_bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, pr := get(c.path, c.v)
			wantRefusal(t, code, pr, http.StatusUnprocessableEntity, c.limit)
		})
	}
	t.Run("too many samples", func(t *testing.T) {
		fs := newPromFixtureLimits(t, api.Limits{MaxSamples: 100})
		code, _, pr := fs.rawCall(t, http.MethodGet, "tok-a", "/api/v1/query?"+url.Values{"query": {series.CPUSeconds + `{project="proj_a1"}[2h]`}, "time": {at}}.Encode(), nil, nil)
		wantRefusal(t, code, pr, http.StatusUnprocessableEntity, "too many samples")
	})
	// Within the limits the same kinds of query answer.
	var d vectorData
	f.ok(t, http.MethodGet, "tok-a", "/api/v1/query", url.Values{"query": {`sum(max_over_time(` + series.CPUSeconds + `[1h:1m]))`}, "time": {at}}, &d)
	if len(d.Result) != 1 {
		t.Fatalf("subquery within the limits: %+v", d)
	}
}

// A 2,000,000-bracket expression in a 4 MB body is refused before anything parses it.
func TestPromHugeBodyRefusedQuickly(t *testing.T) {
	f := newPromFixture(t)
	q := strings.Repeat("(", 2_000_000) + "1" + strings.Repeat(")", 2_000_000)
	body := "query=" + q
	expired := time.After(20 * time.Second) // a generous bound for a loaded machine; parsing took minutes
	code, _, pr := f.rawCall(t, http.MethodPost, "tok-a", "/api/v1/query", strings.NewReader(body), nil)
	wantRefusal(t, code, pr, http.StatusRequestEntityTooLarge, "limits.request_body_bytes")
	// Well within the body limit, the nesting check refuses it too, before parsing.
	q = strings.Repeat("(", 200_000) + "1" + strings.Repeat(")", 200_000)
	code, _, pr = f.rawCall(t, http.MethodPost, "tok-a", "/api/v1/query", strings.NewReader("query="+q), nil)
	wantRefusal(t, code, pr, http.StatusUnprocessableEntity, "limits.query.max_query_length")
	select {
	case <-expired:
		t.Fatal("refusing took more than 20 s")
	default:
	}
}

func TestPromQueryTimeoutNamesTheLimit(t *testing.T) {
	f := newPromFixtureLimits(t, api.Limits{QueryTimeout: time.Nanosecond})
	code, _, pr := f.rawCall(t, http.MethodGet, "tok-a", "/api/v1/query?query=vector(1)", nil, nil)
	wantRefusal(t, code, pr, http.StatusUnprocessableEntity, "limits.query.timeout")
}

func TestMethodNotAllowedHasAllow(t *testing.T) {
	f := newPromFixture(t)
	for _, c := range []struct{ method, path, allow string }{
		{http.MethodPost, "/api/usage/analytics", "GET"},
		{http.MethodDelete, "/api/usage/limits", "GET, POST"},
		{http.MethodPost, "/healthz", "GET, HEAD"},
		{http.MethodPut, "/api/v1/label/project/values", "GET, OPTIONS"},
	} {
		req, _ := http.NewRequest(c.method, f.url+c.path, nil)
		req.Header.Set("Authorization", "Bearer tok-a")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != c.allow || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s %s: %d Allow %q nosniff %q: %s", c.method, c.path, resp.StatusCode, resp.Header.Get("Allow"), resp.Header.Get("X-Content-Type-Options"), b)
		}
		if !json.Valid(b) {
			t.Errorf("%s %s: body %q is not JSON", c.method, c.path, b)
		}
	}
}
