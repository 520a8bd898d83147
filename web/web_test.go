package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func serve(t *testing.T, h http.Handler, method, path string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

// The embedded console is served with its CSP, ETag and gzip; nothing else is.
func TestHandler(t *testing.T) {
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	res := serve(t, h, http.MethodGet, "/", nil)
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") ||
		!bytes.Contains(body, []byte(`<script type="module" src="/assets/app.js"></script>`)) {
		t.Fatalf("GET / = %d %s:\n%s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	if got := res.Header.Get("Content-Security-Policy"); got != ContentSecurityPolicy || strings.Contains(got, "unsafe") {
		t.Errorf("CSP = %q", got)
	}
	if bytes.Contains(body, []byte("http://")) || bytes.Contains(body, []byte("https://")) {
		t.Errorf("the page refers to another origin:\n%s", body)
	}
	etag := res.Header.Get("ETag")
	if res := serve(t, h, http.MethodGet, "/", map[string]string{"If-None-Match": etag}); res.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation with the ETag = %d, want 304", res.StatusCode)
	}

	plain := serve(t, h, http.MethodGet, "/assets/app.js", nil)
	js, _ := io.ReadAll(plain.Body)
	if plain.StatusCode != http.StatusOK || plain.Header.Get("Content-Type") != "text/javascript; charset=utf-8" || len(js) < 1000 {
		t.Fatalf("GET /assets/app.js = %d %q, %d bytes", plain.StatusCode, plain.Header.Get("Content-Type"), len(js))
	}
	zipped := serve(t, h, http.MethodGet, "/assets/app.js", map[string]string{"Accept-Encoding": "br, gzip"})
	if zipped.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("no gzip for a client that takes it: %v", zipped.Header)
	}
	zr, err := gzip.NewReader(zipped.Body)
	if err != nil {
		t.Fatal(err)
	}
	unzipped, _ := io.ReadAll(zr)
	if !bytes.Equal(unzipped, js) {
		t.Error("the gzip body is not the file")
	}
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/assets/nothing.js", http.StatusNotFound},
		{http.MethodGet, "/index.html", http.StatusNotFound},
		{http.MethodPost, "/", http.StatusMethodNotAllowed},
		{http.MethodHead, "/assets/app.css", http.StatusOK},
	} {
		if res := serve(t, h, tc.method, tc.path, nil); res.StatusCode != tc.want {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, res.StatusCode, tc.want)
		}
	}
}
