// Package web is cygni-usage's web console: a single page built from web/src (npm packages
// pinned by web/package-lock.json, bundled with esbuild by `npm run build`) into web/dist, which
// is committed and embedded here, so the binary serves it with no npm, CDN or network at run
// time. The page talks to the server only through the public REST API, with the user's token.
//
// Handler serves GET/HEAD "/" (the page) and "/assets/..." (its script, styles and icon) with a
// strict Content-Security-Policy (scripts, styles and connections from this origin only, no
// inline code), ETags and gzip. The suite checks that web/dist matches a fresh build of web/src.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

//go:embed dist
var dist embed.FS

// ContentSecurityPolicy is sent with every console response: nothing but this origin's own
// files, no inline scripts or styles, no framing.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

type asset struct {
	body, gz    []byte
	contentType string
	etag        string
}

// Handler serves the embedded console.
type Handler struct {
	assets map[string]*asset // by URL path: "/", "/assets/app.js", ...
}

// New reads the embedded files. It fails only when the binary was built without them.
func New() (*Handler, error) {
	h := &Handler{assets: map[string]*asset{}}
	err := fs.WalkDir(dist, "dist", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := dist.ReadFile(p)
		if err != nil {
			return fmt.Errorf("read the embedded %s: %w", p, err)
		}
		urlPath := strings.TrimPrefix(p, "dist")
		if urlPath == "/index.html" {
			urlPath = "/"
		}
		sum := sha256.Sum256(body)
		a := &asset{body: body, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, contentType: mime.TypeByExtension(path.Ext(p))}
		if a.contentType == "" {
			a.contentType = "application/octet-stream"
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(body)
		if err := zw.Close(); err != nil {
			return fmt.Errorf("compress %s: %w", p, err)
		}
		if buf.Len() < len(body) {
			a.gz = buf.Bytes()
		}
		h.assets[urlPath] = a
		return nil
	})
	if err != nil {
		return nil, err
	}
	if h.assets["/"] == nil {
		return nil, fmt.Errorf("the web console is not embedded: web/dist/index.html is missing (run: cd web && npm ci && npm run build)")
	}
	return h, nil
}

// ServeHTTP serves one embedded file; anything else is a 404.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Frame-Options", "DENY")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	a := h.assets[r.URL.Path]
	if a == nil {
		http.NotFound(w, r)
		return
	}
	hdr.Set("Content-Type", a.contentType)
	hdr.Set("ETag", a.etag)
	hdr.Set("Cache-Control", "no-cache") // revalidate: a new binary may bring a new console
	hdr.Set("Vary", "Accept-Encoding")
	if r.Header.Get("If-None-Match") == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := a.body
	if a.gz != nil && acceptsGzip(r) {
		hdr.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	hdr.Set("Content-Length", fmt.Sprint(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}
