package api

import (
	"log/slog"
	"net/http"

	"github.com/VictoriaMetrics/metrics"
	"github.com/gorilla/mux"
)

// NewOps returns the operations endpoints alone — /healthz, /readyz and /metrics, as the full
// API serves them — for a process that runs no API part (a collector shard, billing, a rule
// evaluation of its own): probes and metrics without the REST or Prometheus APIs. Only
// opts.Logger, Gatherer, Metrics, Ready and ReadyDetails are used.
func NewOps(opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.NewSet()
	}
	s := &Server{opts: opts, logger: opts.Logger.With("component", "ops")}
	r := mux.NewRouter()
	r.HandleFunc("/healthz", s.healthz).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/readyz", s.readyz).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/metrics", s.metrics).Methods(http.MethodGet)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		r.ServeHTTP(w, req)
	})
}
