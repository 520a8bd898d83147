package api

// This is the one adapter file over Prometheus' own web/api/v1: it builds the upstream API
// (query, query_range, query_exemplars, series, labels, label values, buildinfo) over the
// team-scoped queryable, and renders rule groups and alerts in its exported JSON types.

import (
	"context"
	"log/slog"
	"net/http"
	"runtime"
	"time"

	"github.com/grafana/regexp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/route"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
	v1 "github.com/prometheus/prometheus/web/api/v1"
)

// promNoOrigin matches no origin: upstream's CORS handling must never see one (a nil regexp
// crashed every request with an Origin header), promCORS does the job before it.
var promNoOrigin = regexp.MustCompile(`^\b$`)

// PromCompatVersion is the Prometheus version the API reports in status/buildinfo: the
// release of the embedded engine (module v0.316.0 is Prometheus 3.16.0).
const PromCompatVersion = "3.16.0"

// newPromV1 returns the upstream API's router, mounted at /api/v1, over q and engine. q must
// already be scoped (scopedQueryable). Only the routes registerProm forwards are reachable.
func newPromV1(logger *slog.Logger, engine promql.QueryEngine, q storage.SampleAndChunkQueryable, lookback time.Duration) http.Handler {
	api := v1.NewAPI(
		engine,
		q,
		nil,           // appender: no remote write
		noExemplars{}, // exemplars: none are stored
		nil, nil, nil, // scrape pools, targets, alertmanagers: none
		func() config.Config { return config.DefaultConfig },
		map[string]string{},
		v1.GlobalURLOptions{},
		func(f http.HandlerFunc) http.HandlerFunc { return f }, // readiness is /readyz's business
		nil,   // TSDB admin stats: not routed
		"",    // TSDB dir
		false, // admin endpoints
		false, // search
		0,
		logger,
		nil,     // rules: rendered by promRules, per team
		0, 0, 0, // remote read limits
		false,        // agent
		promNoOrigin, // CORS: promCORS answers it and removes the Origin header
		nil,          // runtime info: not routed
		&v1.PrometheusVersion{Version: PromCompatVersion, Branch: "cygni-usage", GoVersion: runtime.Version()},
		nil, nil, // notifications
		prometheus.NewRegistry(), prometheus.NewRegistry(), // the remote-read handler's own metrics, unused
		nil,        // stats renderer: default
		false, nil, // remote write
		false, false, false, // OTLP
		lookback,
		false, false, // type-and-unit labels, metadata append
		nil, // error codes: Prometheus' own
		nil, // feature registry
		v1.OpenAPIOptions{},
		nil,   // parser: default
		false, // query cost
		0,     // query timeout: the engine's
	)
	router := route.New()
	api.Register(router.WithPrefix("/api/v1"))
	return router
}

// noExemplars is the exemplar storage: usage series carry no exemplars, so every query
// answers an empty list (not 204) as Grafana expects.
type noExemplars struct{}

func (noExemplars) ExemplarQuerier(context.Context) (storage.ExemplarQuerier, error) {
	return noExemplars{}, nil
}

func (noExemplars) Select(int64, int64, ...[]*labels.Matcher) ([]exemplar.QueryResult, error) {
	return []exemplar.QueryResult{}, nil
}

// promRuleGroups renders groups as /api/v1/rules does, keeping only the active alerts whose
// labels pass visible (the team's projects). typ is "", "alert" or "record".
func promRuleGroups(groups []*rules.Group, typ string, visible func(labels.Labels) bool) *v1.RuleDiscovery {
	out := &v1.RuleDiscovery{RuleGroups: []*v1.RuleGroup{}}
	for _, g := range groups {
		rg := &v1.RuleGroup{
			Name:           g.Name(),
			File:           g.File(),
			Rules:          []v1.Rule{},
			Interval:       g.Interval().Seconds(),
			Limit:          g.Limit(),
			EvaluationTime: g.GetEvaluationTime().Seconds(),
			LastEvaluation: g.GetLastEvaluation(),
		}
		for _, r := range g.Rules() {
			lastErr := ""
			if err := r.LastError(); err != nil {
				lastErr = err.Error()
			}
			switch r := r.(type) {
			case *rules.AlertingRule:
				if typ == "record" {
					continue
				}
				alerts := promAlerts(r.ActiveAlerts(), visible)
				state := rules.StateInactive
				for _, a := range r.ActiveAlerts() {
					if visible(a.Labels) && a.State > state {
						state = a.State
					}
				}
				rg.Rules = append(rg.Rules, v1.AlertingRule{
					State:          state.String(),
					Name:           r.Name(),
					Query:          r.Query().String(),
					Duration:       r.HoldDuration().Seconds(),
					KeepFiringFor:  r.KeepFiringFor().Seconds(),
					Labels:         r.Labels(),
					Annotations:    r.Annotations(),
					Alerts:         alerts,
					Health:         r.Health(),
					LastError:      lastErr,
					EvaluationTime: r.GetEvaluationDuration().Seconds(),
					LastEvaluation: r.GetEvaluationTimestamp(),
					Type:           "alerting",
				})
			case *rules.RecordingRule:
				if typ == "alert" {
					continue
				}
				rg.Rules = append(rg.Rules, v1.RecordingRule{
					Name:           r.Name(),
					Query:          r.Query().String(),
					Labels:         r.Labels(),
					Health:         r.Health(),
					LastError:      lastErr,
					EvaluationTime: r.GetEvaluationDuration().Seconds(),
					LastEvaluation: r.GetEvaluationTimestamp(),
					Type:           "recording",
				})
			}
		}
		if typ != "" && len(rg.Rules) == 0 {
			continue
		}
		out.RuleGroups = append(out.RuleGroups, rg)
	}
	return out
}

// promAlertList renders the visible active alerts of every alerting rule as /api/v1/alerts does.
func promAlertList(groups []*rules.Group, visible func(labels.Labels) bool) *v1.AlertDiscovery {
	out := &v1.AlertDiscovery{Alerts: []*v1.Alert{}}
	for _, g := range groups {
		for _, r := range g.AlertingRules() {
			out.Alerts = append(out.Alerts, promAlerts(r.ActiveAlerts(), visible)...)
		}
	}
	return out
}

func promAlerts(active []*rules.Alert, visible func(labels.Labels) bool) []*v1.Alert {
	out := []*v1.Alert{}
	for _, a := range active {
		if !visible(a.Labels) {
			continue
		}
		al := &v1.Alert{
			Labels:      a.Labels,
			Annotations: a.Annotations,
			State:       a.State.String(),
			ActiveAt:    &a.ActiveAt,
			Value:       formatPromFloat(a.Value),
		}
		if !a.KeepFiringSince.IsZero() {
			al.KeepFiringSince = &a.KeepFiringSince
		}
		out = append(out, al)
	}
	return out
}
