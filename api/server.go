// Package api is the HTTP surface of cygni-usage: the seed's REST endpoints, the
// Prometheus-compatible query API, health and self-metrics. Handlers depend on small interfaces
// defined here (consumer side); errors are typed kinds mapped to status codes in one place
// (errors.go) and rendered as {"error": {"code", "message"}}.
package api

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/VictoriaMetrics/metrics"
	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// ReadyFunc reports whether the service can answer (nil) or why not.
type ReadyFunc func() error

// Options are the server's dependencies. Each group of endpoints adds its own embedded struct,
// defined beside its handlers.
type Options struct {
	Logger   *slog.Logger
	Gatherer prometheus.Gatherer // client_golang registry (TSDB, rules, HTTP)
	Metrics  *metrics.Set        // VictoriaMetrics set of our own counters
	Ready    ReadyFunc           // nil: always ready
	// ReadyDetails add fields to the body of a ready /readyz (name, value), e.g. the loaded
	// rule files.
	ReadyDetails []func() (string, any)
	// OperatorTeams may use the operator endpoints (with an admin token): they act across
	// every team. Empty: nobody.
	OperatorTeams []string
	// Console, if set, serves the web console at GET / and /assets/... (package web); every
	// other path stays the API's.
	Console http.Handler
	// Limits bound requests and teams; zero fields take DefaultLimits' values.
	Limits Limits

	AuthDeps
	NotificationDeps
	UsageDeps
	PromDeps
	BillingDeps
	AlertingDeps
	BudgetDeps
	PriceDeps
}

// Server routes requests to handlers.
type Server struct {
	opts      Options
	logger    *slog.Logger
	router    *mux.Router
	lim       Limits
	promSlots *teamLimiter // the Prometheus API's queries, per team
	restSlots *teamLimiter // the REST endpoints' requests, per team
}

// New builds the router. It starts nothing.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.NewSet()
	}
	l := opts.Limits.withDefaults()
	s := &Server{
		opts: opts, logger: opts.Logger.With("component", "api"), router: mux.NewRouter(), lim: l,
		promSlots: newTeamLimiter("limits.query", l.MaxConcurrentPerTeam, l.MaxQueuedPerTeam, l.QueueTimeout),
		restSlots: newTeamLimiter("limits.rest", l.RESTMaxConcurrentPerTeam, l.RESTMaxQueuedPerTeam, l.RESTQueueTimeout),
	}
	s.routes()
	return s
}

// ServeHTTP implements http.Handler. Every answer says nosniff; every body is capped at
// limits.request_body_bytes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, s.lim.RequestBodyBytes)
	}
	s.router.ServeHTTP(w, r)
}

// isPromPath reports whether path is the Prometheus API's, whose errors use its envelope.
func isPromPath(path string) bool { return strings.HasPrefix(path, "/api/v1/") }

// allowedMethods lists the methods some route serves at r's path, for a 405's Allow header.
func (s *Server) allowedMethods(r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
		probe := r.Clone(r.Context())
		probe.Method = m
		var match mux.RouteMatch
		if s.router.Match(probe, &match) && match.MatchErr == nil {
			out = append(out, m)
		}
	}
	return out
}

func (s *Server) routes() {
	r := s.router
	r.HandleFunc("/healthz", s.healthz).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/readyz", s.readyz).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/metrics", s.metrics).Methods(http.MethodGet)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := NotFound("no route %s %s", r.Method, r.URL.Path)
		if isPromPath(r.URL.Path) {
			writePromAPIError(w, err)
			return
		}
		WriteError(w, err)
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		allow := s.allowedMethods(r)
		if len(allow) == 1 && allow[0] == http.MethodOptions { // only the CORS preflight
			s.router.NotFoundHandler.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		err := &Error{Kind: KindMethodNotAllowed, Code: "method_not_allowed", Message: "method " + r.Method + " is not allowed on " + r.URL.Path}
		if isPromPath(r.URL.Path) {
			writePromAPIError(w, err)
			return
		}
		WriteError(w, err)
	})

	if s.opts.Console != nil {
		r.Handle("/", s.opts.Console).Methods(http.MethodGet, http.MethodHead)
		r.PathPrefix("/assets/").Handler(s.opts.Console).Methods(http.MethodGet, http.MethodHead)
	}
	s.registerWhoami(r)
	s.registerNotifications(r)
	s.registerUsage(r)
	s.registerProm(r)
	s.registerBilling(r)
	s.registerAlerting(r)
	s.registerBudgets(r)
	s.registerPrices(r)
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if s.opts.Ready != nil {
		if err := s.opts.Ready(); err != nil {
			WriteError(w, &Error{Kind: KindUnavailable, Code: "not_ready", Message: err.Error()})
			return
		}
	}
	body := map[string]any{"status": "ready"}
	for _, d := range s.opts.ReadyDetails {
		k, v := d()
		body[k] = v
	}
	WriteJSON(w, http.StatusOK, body)
}

// metrics writes the client_golang registry and then our VictoriaMetrics set, in the
// Prometheus text format, as one response.
func (s *Server) metrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	if s.opts.Gatherer != nil {
		mfs, err := s.opts.Gatherer.Gather()
		if err != nil {
			s.logger.Warn("gather metrics; writing what was gathered", "err", err)
		}
		enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				s.logger.Warn("encode metrics; response cut short", "err", err)
				return
			}
		}
	}
	s.opts.Metrics.WritePrometheus(w)
}
