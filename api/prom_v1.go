package api

// This is the one adapter file over Prometheus' own web/api/v1: it builds the upstream API
// (query, query_range, query_exemplars, series, labels, label values, buildinfo) over the
// team-scoped queryable, and renders rule groups and alerts in its exported JSON types.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
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

// promRuleFilter is what a /api/v1/rules request asks for (Prometheus' parameters type,
// rule_name[], rule_group[], file[], match[], exclude_alerts, group_limit, group_next_token).
type promRuleFilter struct {
	typ           string // "", "alert" or "record"
	ruleNames     map[string]bool
	groups        map[string]bool
	files         map[string]bool // file names as shown (relative to the rules directory)
	matchers      [][]*labels.Matcher
	excludeAlerts bool
	groupLimit    int    // 0: all
	nextToken     string // the first group of this page
	// fileName shows a group's file without the server's directories.
	fileName func(string) string
}

func (f *promRuleFilter) filtered() bool {
	return f.typ != "" || len(f.ruleNames) > 0 || len(f.matchers) > 0
}

// promRuleGroupToken is the group_next_token of a group, as Prometheus computes it (over the
// file name as shown).
func promRuleGroupToken(file, group string) string {
	h := sha256.Sum256([]byte(file + ";" + group))
	return hex.EncodeToString(h[:])
}

// promRuleGroups renders groups as /api/v1/rules does, keeping only the active alerts whose
// labels pass visible (the team's projects). An unknown group_next_token is an error.
func promRuleGroups(groups []*rules.Group, f promRuleFilter, visible func(labels.Labels) bool) (*v1.RuleDiscovery, error) {
	out := &v1.RuleDiscovery{RuleGroups: []*v1.RuleGroup{}}
	if f.fileName == nil {
		f.fileName = filepath.Base
	}
	foundToken := f.nextToken == ""
	for _, g := range groups {
		file := f.fileName(g.File())
		if !foundToken {
			if promRuleGroupToken(file, g.Name()) != f.nextToken {
				continue
			}
			foundToken = true
		}
		if len(f.groups) > 0 && !f.groups[g.Name()] || len(f.files) > 0 && !f.files[file] {
			continue
		}
		rg := &v1.RuleGroup{
			Name:           g.Name(),
			File:           file,
			Rules:          []v1.Rule{},
			Interval:       g.Interval().Seconds(),
			Limit:          g.Limit(),
			EvaluationTime: g.GetEvaluationTime().Seconds(),
			LastEvaluation: g.GetLastEvaluation(),
		}
		for _, r := range g.Rules(f.matchers...) {
			if len(f.ruleNames) > 0 && !f.ruleNames[r.Name()] {
				continue
			}
			lastErr := ""
			if err := r.LastError(); err != nil {
				lastErr = err.Error()
			}
			switch r := r.(type) {
			case *rules.AlertingRule:
				if f.typ == "record" {
					continue
				}
				var alerts []*v1.Alert
				if !f.excludeAlerts {
					alerts = promAlerts(r.ActiveAlerts(), visible)
				}
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
				if f.typ == "alert" {
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
		if f.filtered() && len(rg.Rules) == 0 {
			continue
		}
		if f.groupLimit > 0 && len(out.RuleGroups) == f.groupLimit {
			out.GroupNextToken = promRuleGroupToken(file, g.Name())
			break
		}
		out.RuleGroups = append(out.RuleGroups, rg)
	}
	if !foundToken {
		return nil, fmt.Errorf("invalid group_next_token %q: the rule groups changed", f.nextToken)
	}
	return out, nil
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
