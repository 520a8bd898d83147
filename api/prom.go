package api

// The Prometheus HTTP API under /api/v1/, so that Grafana's built-in Prometheus data source and
// promtool work against cygni-usage unchanged. Every request is scoped to the token's team: the
// queryable handed to the PromQL engine and to series/labels/label values adds the matcher
// project=~"<the team's project ids>" to every selector (prom_scope.go); a team without
// projects sees nothing. Query evaluation is Prometheus' own (web/api/v1 in prom_v1.go).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"

	"github.com/cygni/usage/series"
	"github.com/cygni/usage/store"
)

// PromProjectLister lists a team's projects: the Prometheus API's scope. The store implements it.
type PromProjectLister interface {
	ListProjects(ctx context.Context, teamID string) ([]store.Project, error)
}

// PromDeps are the dependencies of the Prometheus HTTP API.
type PromDeps struct {
	// PromStorage is the TSDB the API reads (*tsdb.DB). Nil leaves /api/v1/ unrouted.
	PromStorage storage.SampleAndChunkQueryable
	// PromProjects gives each request's scope. Nil: every team sees no series.
	PromProjects PromProjectLister
	// PromEngine evaluates PromQL; nil builds one with NewPromEngine (unregistered metrics).
	PromEngine promql.QueryEngine
	// PromRuleGroups returns the alerting engine's rule groups (rules.Manager.RuleGroups); nil
	// serves no groups and no alerts.
	PromRuleGroups func() []*rules.Group
	// PromRuleDirs are the rule directories /api/v1/rules shows files relative to.
	PromRuleDirs []string
}

// PromLookbackDelta is how far back an instant selector looks for a sample. Usage samples come
// once a period (60 s), so Prometheus' default of 5 minutes bridges a few missing periods.
const PromLookbackDelta = 5 * time.Minute

// NewPromEngine returns the PromQL engine of the Prometheus API with DefaultLimits; its metrics
// go to reg (may be nil).
func NewPromEngine(logger *slog.Logger, reg prometheus.Registerer) *promql.Engine {
	return NewLimitedPromEngine(logger, reg, DefaultLimits())
}

// NewLimitedPromEngine returns the PromQL engine with l's samples limit and timeout.
func NewLimitedPromEngine(logger *slog.Logger, reg prometheus.Registerer, l Limits) *promql.Engine {
	l = l.withDefaults()
	return promql.NewEngine(promql.EngineOpts{
		Logger:                   logger,
		Reg:                      reg,
		MaxSamples:               l.MaxSamples,
		Timeout:                  l.QueryTimeout,
		LookbackDelta:            PromLookbackDelta,
		NoStepSubqueryIntervalFn: func(int64) int64 { return promSubqueryDefaultStep.Milliseconds() },
		EnableAtModifier:         true,
		EnableNegativeOffset:     true,
	})
}

func (s *Server) registerProm(r *mux.Router) {
	d := s.opts.PromDeps
	if d.PromStorage == nil {
		return
	}
	engine := d.PromEngine
	if engine == nil {
		engine = NewLimitedPromEngine(s.logger, nil, s.lim)
	}
	// The guard runs before the project lookup: a refusal costs no store query.
	upstream := s.promGuard(s.promScoped(newPromV1(s.logger, engine, scopedQueryable{d.PromStorage}, PromLookbackDelta)))
	member := func(h http.Handler) http.Handler { return s.promCORS(s.promAuthed(RoleMember, h)) }
	getPost := []string{http.MethodGet, http.MethodPost}
	for _, path := range []string{"query", "query_range", "query_exemplars", "format_query", "series", "labels"} {
		r.Handle("/api/v1/"+path, member(upstream)).Methods(getPost...)
	}
	r.Handle("/api/v1/label/{name}/values", member(upstream)).Methods(http.MethodGet)
	r.Handle("/api/v1/status/buildinfo", member(upstream)).Methods(http.MethodGet)
	r.Handle("/api/v1/metadata", member(http.HandlerFunc(s.promMetadata))).Methods(getPost...)
	r.Handle("/api/v1/rules", member(s.promScoped(http.HandlerFunc(s.promRules)))).Methods(getPost...)
	r.Handle("/api/v1/alerts", member(s.promScoped(http.HandlerFunc(s.promAlerts)))).Methods(getPost...)
	r.PathPrefix("/api/v1/").Methods(http.MethodOptions).Handler(s.promCORS(http.HandlerFunc(promPreflight)))
}

// promScoped resolves the caller's projects and puts the scope into the request's context.
func (s *Server) promScoped(h http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := PrincipalFrom(r.Context())
		var ids []string
		if s.opts.PromProjects != nil && p.TeamID != "" {
			projects, err := s.opts.PromProjects.ListProjects(r.Context(), p.TeamID)
			if err != nil {
				s.logger.Error("list the team's projects; answering 500", "team", p.TeamID, "err", err)
				writePromError(w, http.StatusInternalServerError, "internal", "list the team's projects")
				return
			}
			for _, pr := range projects {
				if pr.TeamID == "" || pr.TeamID == p.TeamID {
					ids = append(ids, pr.ID)
				}
			}
		}
		ctx, err := withPromScope(r.Context(), ids)
		if err != nil {
			s.logger.Error("build the project matcher; answering 500", "team", p.TeamID, "err", err)
			writePromError(w, http.StatusInternalServerError, "internal", "build the project matcher")
			return
		}
		h.ServeHTTP(w, r.WithContext(ctx))
	}
}

// visibleTo reports whether a series or alert with these labels belongs to the request's scope.
func visibleTo(ctx context.Context) func(labels.Labels) bool {
	sc, _ := ctx.Value(promScopeKey{}).(promScope)
	return func(ls labels.Labels) bool {
		return sc.matcher != nil && sc.matcher.Matches(ls.Get(series.LabelProject))
	}
}

// PromMetricMetadata is one entry of /api/v1/metadata.
type PromMetricMetadata struct {
	Type string `json:"type"`
	Help string `json:"help"`
	Unit string `json:"unit"`
}

// promMetadata is the metadata of every series Cygni writes. Usage series are per-period amounts
// (gauges, not counters: sum_over_time, never rate or increase, gives exact totals).
var promMetadata = map[string]PromMetricMetadata{
	series.CPUSeconds:                {"gauge", "vCPU-seconds reserved (billed) in the collection period ending at the sample.", "seconds"},
	series.CPUUsedSeconds:            {"gauge", "vCPU-seconds used in the collection period ending at the sample.", "seconds"},
	series.MemoryGBHours:             {"gauge", "Memory reserved (billed) in the collection period ending at the sample, in GB-hours (GB = 2^30 bytes).", "gigabyte_hours"},
	series.MemoryUsedGBHours:         {"gauge", "Memory used in the collection period ending at the sample, in GB-hours (GB = 2^30 bytes).", "gigabyte_hours"},
	series.RunningTasks:              {"gauge", "Mean number of running tasks in the collection period ending at the sample.", ""},
	series.EgressBytes:               {"gauge", "Bytes sent out in the collection period ending at the sample.", "bytes"},
	series.Requests:                  {"gauge", "HTTP(S) requests through the load balancer in the collection period ending at the sample.", "requests"},
	series.StorageGBHours:            {"gauge", "Block and file storage (EBS/EFS) in the collection period ending at the sample, in GB-hours (coming soon).", "gigabyte_hours"},
	series.ObjectStorageGBHrs:        {"gauge", "Object storage (S3) in the collection period ending at the sample, in GB-hours (coming soon).", "gigabyte_hours"},
	series.ProjectBudgetUSD:          {"gauge", "The project's monthly budget limit in US dollars.", "usd"},
	series.ProjectCostUSD:            {"gauge", "The project's cost in the hour ending at the sample, by resource, in US dollars.", "usd"},
	series.ProjectCostMonthToDateUSD: {"gauge", "The project's cost in the billing period so far, in US dollars.", "usd"},
	series.ProjectCostForecastUSD:    {"gauge", "The project's forecast cost at the end of the billing period, in US dollars.", "usd"},
	series.ProjectBudgetUsedPercent:  {"gauge", "Percent of the project's budget used in the billing period, floored to 0.1 (as the API shows it).", "percent"},
}

// promMetadata answers /api/v1/metadata (parameters metric, limit, limit_per_metric).
func (s *Server) promMetadata(w http.ResponseWriter, r *http.Request) {
	limit, err := promLimitParam(r, "limit")
	if err != nil {
		writePromError(w, http.StatusBadRequest, "bad_data", err.Error())
		return
	}
	if _, err := promLimitParam(r, "limit_per_metric"); err != nil {
		writePromError(w, http.StatusBadRequest, "bad_data", err.Error())
		return
	}
	metric := r.FormValue("metric")
	out := map[string][]PromMetricMetadata{}
	for name, md := range promMetadata {
		if metric != "" && name != metric {
			continue
		}
		out[name] = []PromMetricMetadata{md}
	}
	if limit > 0 && len(out) > limit {
		names := make([]string, 0, len(out))
		for n := range out {
			names = append(names, n)
		}
		// Keep a stable subset: the first limit names in sorted order.
		slices.Sort(names)
		for _, n := range names[limit:] {
			delete(out, n)
		}
	}
	writePromData(w, out)
}

// promRules answers /api/v1/rules: the rule definitions, with only the team's active alerts,
// filtered and paginated as Prometheus does; files are shown relative to the rules directory.
func (s *Server) promRules(w http.ResponseWriter, r *http.Request) {
	f, err := s.promRuleFilter(r)
	if err != nil {
		writePromError(w, http.StatusBadRequest, "bad_data", err.Error())
		return
	}
	var groups []*rules.Group
	if s.opts.PromRuleGroups != nil {
		groups = s.opts.PromRuleGroups()
	}
	out, err := promRuleGroups(groups, f, visibleTo(r.Context()))
	if err != nil {
		writePromError(w, http.StatusBadRequest, "bad_data", err.Error())
		return
	}
	writePromData(w, out)
}

func (s *Server) promRuleFilter(r *http.Request) (promRuleFilter, error) {
	if err := r.ParseForm(); err != nil {
		if isMaxBytes(err) {
			return promRuleFilter{}, bodyTooLarge(s.lim.RequestBodyBytes)
		}
		return promRuleFilter{}, fmt.Errorf("the form cannot be read: %w", err)
	}
	set := func(vs []string) map[string]bool {
		m := map[string]bool{}
		for _, v := range vs {
			m[v] = true
		}
		return m
	}
	f := promRuleFilter{
		typ:       r.FormValue("type"),
		ruleNames: set(r.Form["rule_name[]"]),
		groups:    set(r.Form["rule_group[]"]),
		files:     set(r.Form["file[]"]),
		nextToken: r.FormValue("group_next_token"),
		fileName:  s.promRuleFileName,
	}
	if f.typ != "" && f.typ != "alert" && f.typ != "record" {
		return f, fmt.Errorf("invalid query parameter type=%q: must be alert or record", f.typ)
	}
	for _, m := range r.Form["match[]"] {
		if le := checkPromSize("match[]", m, s.lim); le != nil {
			return f, le
		}
		ms, err := parser.NewParser(parser.Options{}).ParseMetricSelector(m)
		if err != nil {
			return f, fmt.Errorf("invalid parameter match[]=%q: %w", m, err)
		}
		f.matchers = append(f.matchers, ms)
	}
	if v := r.FormValue("exclude_alerts"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return f, fmt.Errorf("invalid parameter exclude_alerts=%q: want true or false", v)
		}
		f.excludeAlerts = b
	}
	if v := r.FormValue("group_limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return f, fmt.Errorf("invalid parameter group_limit=%q: want a positive integer", v)
		}
		f.groupLimit = n
	} else if f.nextToken != "" {
		return f, errors.New("invalid parameter group_next_token: group_limit is needed to paginate over the groups")
	}
	return f, nil
}

// promRuleFileName shows a rule file relative to the first of PromRuleDirs that holds it, else
// by its base name: never the server's absolute paths.
func (s *Server) promRuleFileName(file string) string {
	for _, d := range s.opts.PromRuleDirs {
		if rel, err := filepath.Rel(d, file); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel) {
			return filepath.ToSlash(rel)
		}
	}
	return filepath.Base(file)
}

// promAlerts answers /api/v1/alerts: the team's pending and firing alerts.
func (s *Server) promAlerts(w http.ResponseWriter, r *http.Request) {
	var groups []*rules.Group
	if s.opts.PromRuleGroups != nil {
		groups = s.opts.PromRuleGroups()
	}
	writePromData(w, promAlertList(groups, visibleTo(r.Context())))
}

func promLimitParam(r *http.Request, name string) (int, error) {
	v := r.FormValue(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("invalid parameter %q: %q is not an integer", name, v)
	}
	return n, nil
}

// writePromData writes Prometheus' success envelope.
func writePromData(w http.ResponseWriter, data any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(struct {
		Status string `json:"status"`
		Data   any    `json:"data"`
	}{"success", data})
}

// writePromError writes Prometheus' error envelope.
func writePromError(w http.ResponseWriter, status int, errType, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
	}{"error", errType, msg})
}

// formatPromFloat formats a sample value as Prometheus' API does.
func formatPromFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case math.IsNaN(f):
		return "NaN"
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}
