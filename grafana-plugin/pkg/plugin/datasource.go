// Package plugin is the backend of the Cygni usage Grafana data source (cygni-usage-datasource).
//
// It talks to cygni-usage over HTTP only, with the team's API token kept in Grafana's secure
// JSON data, and imports no server package. Query types:
//
//   - "usage": GET /api/usage/analytics, one time series per project (or, for alert rules, one
//     number per project: the exact decimal sum of the range);
//   - "budget": GET /api/usage/limits and GET /api/projects/{id}/budget, one value per project;
//   - "promql": POST /api/v1/query_range (or /api/v1/query for alert rules), aligned to the step
//     as Grafana's Prometheus data source aligns it;
//   - "notifications": GET /api/usage/notifications, the notification history as a table that is
//     also an annotation source (time, title, text, tags);
//   - "variable": the projects, deployments or metrics for a dashboard variable.
//
// Amounts arrive as exact decimal strings; a frame value is the float64 nearest to the API's
// number, and sums for alert rules are computed in exact decimals before that conversion.
//
// Every frame meant for alert rules and server-side expressions holds one value per distinct
// label set: Grafana refuses results it cannot tell apart by labels.
package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/instancemgmt"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"
)

// ID is the plugin id of plugin.json.
const ID = "cygni-usage-datasource"

// Query types.
const (
	QueryTypeUsage         = "usage"
	QueryTypeBudget        = "budget"
	QueryTypePromQL        = "promql"
	QueryTypeNotifications = "notifications"
	QueryTypeVariable      = "variable"
)

// Settings are the data source's JSON data (the token is in secure JSON data as apiToken).
type Settings struct {
	// URL of cygni-usage when the data source's own URL field is empty.
	URL string `json:"url"`
	// TimeoutSeconds bounds each call to cygni-usage (default 30).
	TimeoutSeconds int `json:"timeoutSeconds"`
}

// Query is one panel, variable, annotation or alert query, as the frontend writes it.
type Query struct {
	QueryType string `json:"queryType"`
	// Metric of a usage query: a field of the analytics buckets (cpuHours, memoryGbHours,
	// egressGB, requests, containerInstances, storageGbHours, cpuSeconds) or a cost
	// ("cost.total", "cost.compute", "cost.memory", "cost.bandwidth", "cost.requests", "cost.storage").
	Metric string `json:"metric"`
	// Project selects the projects of usage, budget, notifications and deployments-variable
	// queries: one id, several ("proj_a,proj_b", "{proj_a,proj_b}", "(proj_a|proj_b)"), or every
	// project of the team ("", "$__all", ".*", "All"). See parseProjects.
	Project string `json:"project"`
	// GroupBy is the analytics bucket: auto (the default: the finest of hour, day, week, month
	// at least as coarse as the panel's interval that the API answers for the range), hour, day,
	// week or month.
	GroupBy string `json:"groupBy"`
	// TZ is the IANA time zone of the buckets (and of PromQL step alignment); default UTC.
	TZ string `json:"tz"`
	// Field is the budget quantity: used, limit, remaining, percentUsed or forecast; empty for
	// the table of all five (dashboards only: alert rules need one).
	Field string `json:"field"`
	// Expr, Step (a Prometheus duration, default the panel interval) and LegendFormat
	// ("{{project}} reserved") of a PromQL query.
	Expr         string `json:"expr"`
	Step         string `json:"step"`
	LegendFormat string `json:"legendFormat"`
	// Types restricts a notifications query to these notification types (budget_warning,
	// budget_exceeded, forecast_exceeded, usage_anomaly, alert_resolved, …); empty for all.
	Types []string `json:"types"`
	// Variable is what a variable query lists: projects, deployments or metrics.
	Variable string `json:"variable"`
	// Numeric asks for numeric frames (one value per series) as alert rules need; queries
	// from Grafana's alerting get them without asking.
	Numeric bool `json:"numeric"`
}

// Datasource is one configured instance of the data source.
type Datasource struct {
	api *client
}

var (
	_ backend.QueryDataHandler      = (*Datasource)(nil)
	_ backend.CheckHealthHandler    = (*Datasource)(nil)
	_ backend.CallResourceHandler   = (*Datasource)(nil)
	_ instancemgmt.InstanceDisposer = (*Datasource)(nil)
)

// NewDatasource builds an instance from Grafana's settings. A missing URL or token is not an
// error here: CheckHealth and every query report it in words the user can act on.
func NewDatasource(_ context.Context, s backend.DataSourceInstanceSettings) (instancemgmt.Instance, error) {
	var js Settings
	if len(s.JSONData) > 0 {
		if err := json.Unmarshal(s.JSONData, &js); err != nil {
			return nil, fmt.Errorf("read the data source's JSON settings: %w", err)
		}
	}
	rawURL := s.URL
	if rawURL == "" {
		rawURL = js.URL
	}
	timeout := 30 * time.Second
	if js.TimeoutSeconds > 0 {
		timeout = time.Duration(js.TimeoutSeconds) * time.Second
	}
	c, err := newClient(rawURL, s.DecryptedSecureJSONData["apiToken"], timeout)
	if err != nil {
		// Not fatal: CheckHealth and every query then say what to fix.
		log.DefaultLogger.Warn("data source not usable until its URL is fixed", "err", err)
		c = &client{base: &url.URL{}, http: &http.Client{Timeout: timeout}}
	}
	return &Datasource{api: c}, nil
}

// Dispose is called when the settings change; the instance holds nothing to release.
func (d *Datasource) Dispose() {}

// usable returns why the instance cannot call cygni-usage, or nil.
func (d *Datasource) usable() error {
	if d.api.base.Host == "" {
		return errors.New("the data source has no valid URL: set it to the cygni-usage address, e.g. http://cygni-usage:8080")
	}
	if d.api.token == "" {
		return errors.New("the data source has no API token: create one with `cygni-usage token create <team> --role member` and paste it into the data source settings")
	}
	return nil
}

// CheckHealth checks the URL (GET /healthz) and then the token (GET /api/usage/limits) and
// says which of the two is wrong.
func (d *Datasource) CheckHealth(ctx context.Context, _ *backend.CheckHealthRequest) (*backend.CheckHealthResult, error) {
	fail := func(msg string) (*backend.CheckHealthResult, error) {
		return &backend.CheckHealthResult{Status: backend.HealthStatusError, Message: msg}, nil
	}
	if d.api.base.Host == "" {
		return fail("The data source has no valid URL: set it to the cygni-usage address, e.g. http://cygni-usage:8080.")
	}
	var health struct {
		Status string `json:"status"`
	}
	if err := d.api.get(ctx, "/healthz", nil, &health); err != nil || health.Status != "ok" {
		if err == nil {
			err = fmt.Errorf("unexpected answer %+v", health)
		}
		return fail(fmt.Sprintf("Cannot reach cygni-usage at %s (GET /healthz): %v. Check the URL.", d.api.base, err))
	}
	if d.api.token == "" {
		return fail("cygni-usage is reachable, but no API token is set: paste a team token into the data source settings.")
	}
	var limits limitsJSON
	if err := d.api.get(ctx, "/api/usage/limits", nil, &limits); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden) {
			return fail(fmt.Sprintf("cygni-usage at %s rejected the API token (%d: %s). Check the token.", d.api.base, ae.Status, ae.Message))
		}
		return fail(fmt.Sprintf("cygni-usage at %s is reachable, but GET /api/usage/limits failed: %v", d.api.base, err))
	}
	return &backend.CheckHealthResult{
		Status:  backend.HealthStatusOk,
		Message: fmt.Sprintf("Connected to cygni-usage; the token's team has %d project(s).", len(limits.Projects)),
	}, nil
}

// QueryData answers every query of the request independently; one failing query does not fail
// the others.
func (d *Datasource) QueryData(ctx context.Context, req *backend.QueryDataRequest) (*backend.QueryDataResponse, error) {
	resp := backend.NewQueryDataResponse()
	fromAlert := req.Headers["FromAlert"] == "true"
	for _, q := range req.Queries {
		resp.Responses[q.RefID] = d.query(ctx, q, fromAlert)
	}
	return resp, nil
}

func (d *Datasource) query(ctx context.Context, dq backend.DataQuery, fromAlert bool) backend.DataResponse {
	var q Query
	if err := json.Unmarshal(dq.JSON, &q); err != nil {
		return backend.ErrDataResponse(backend.StatusBadRequest, fmt.Sprintf("read the query: %v", err))
	}
	if q.QueryType == "" {
		q.QueryType = dq.QueryType
	}
	if q.QueryType == "" {
		q.QueryType = QueryTypeUsage
	}
	q.Numeric = q.Numeric || fromAlert
	if err := d.usable(); err != nil {
		return backend.ErrDataResponse(backend.StatusBadRequest, err.Error())
	}
	var (
		res backend.DataResponse
		err error
	)
	switch q.QueryType {
	case QueryTypeUsage:
		res, err = d.usage(ctx, q, dq)
	case QueryTypeBudget:
		res, err = d.budget(ctx, q, fromAlert)
	case QueryTypePromQL:
		res, err = d.promql(ctx, q, dq)
	case QueryTypeNotifications:
		res, err = d.notifications(ctx, q, dq)
	case QueryTypeVariable:
		res, err = d.variable(ctx, q, dq)
	default:
		return backend.ErrDataResponse(backend.StatusBadRequest, fmt.Sprintf("unknown query type %q: use usage, budget, promql, notifications or variable", q.QueryType))
	}
	if err != nil {
		return errorResponse(err)
	}
	return res
}

// errorResponse maps an error to a response whose status says whose fault it is.
func errorResponse(err error) backend.DataResponse {
	var ae *apiError
	if errors.As(err, &ae) {
		switch {
		case ae.Status == http.StatusUnauthorized:
			return backend.ErrDataResponseWithSource(backend.StatusUnauthorized, backend.ErrorSourceDownstream, err.Error())
		case ae.Status == http.StatusNotFound:
			return backend.ErrDataResponseWithSource(backend.StatusNotFound, backend.ErrorSourceDownstream, err.Error())
		case ae.Status/100 == 4:
			return backend.ErrDataResponseWithSource(backend.StatusBadRequest, backend.ErrorSourceDownstream, err.Error())
		}
	}
	var qe queryError
	if errors.As(err, &qe) {
		return backend.ErrDataResponse(backend.StatusBadRequest, err.Error())
	}
	return backend.ErrDataResponseWithSource(backend.StatusBadGateway, backend.ErrorSourceDownstream, err.Error())
}

// queryError is a query the user must fix.
type queryError string

func (e queryError) Error() string { return string(e) }
