package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/shopspring/decimal"
)

// Metric is one choice of the usage query's metric drop-down.
type Metric struct {
	Value       string `json:"value"`
	Label       string `json:"label"`
	Description string `json:"description"`
	Unit        string `json:"unit"` // Grafana unit id
}

// Metrics are the analytics API's quantities and costs, in the order of the drop-down.
var Metrics = []Metric{
	{"cost.total", "Cost (total)", "Cost of all resources in USD", "currencyUSD"},
	{"cost.compute", "Cost: compute", "Cost of reserved vCPU in USD", "currencyUSD"},
	{"cost.memory", "Cost: memory", "Cost of reserved memory in USD", "currencyUSD"},
	{"cost.bandwidth", "Cost: bandwidth", "Cost of egress in USD", "currencyUSD"},
	{"cost.requests", "Cost: requests", "Cost of load-balancer requests in USD", "currencyUSD"},
	{"cost.storage", "Cost: storage", "Cost of storage in USD (coming soon)", "currencyUSD"},
	{"cpuHours", "CPU hours", "vCPU-hours reserved", "none"},
	{"cpuSeconds", "CPU seconds", "vCPU-seconds reserved", "s"},
	{"memoryGbHours", "Memory GB-hours", "GB-hours reserved (GB = 2^30 bytes)", "none"},
	{"containerInstances", "Container instances", "Mean running tasks", "none"},
	{"egressGB", "Egress GB", "GB sent out (GB = 2^30 bytes)", "none"},
	{"requests", "Requests", "HTTP(S) requests through the load balancer", "short"},
	{"storageGbHours", "Storage GB-hours", "EBS/EFS GB-hours (coming soon)", "none"},
}

func metricByValue(v string) (Metric, bool) {
	for _, m := range Metrics {
		if m.Value == v {
			return m, true
		}
	}
	return Metric{}, false
}

// ---- usage ----

type analyticsBucket map[string]any

type analyticsJSON struct {
	Data     []analyticsBucket `json:"data"`
	Projects []struct {
		ProjectID   string            `json:"projectId"`
		ProjectName string            `json:"projectName"`
		Data        []analyticsBucket `json:"data"`
	} `json:"projects"`
}

// value returns the bucket's amount of metric as the API wrote it (a decimal string).
func (b analyticsBucket) value(metric string) (string, error) {
	var v any = map[string]any(b)
	for part := range strings.SplitSeq(metric, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return "", fmt.Errorf("the analytics answer has no %q", metric)
		}
		if v, ok = m[part]; !ok {
			return "", fmt.Errorf("the analytics answer has no %q", metric)
		}
	}
	switch v := v.(type) {
	case json.Number:
		return v.String(), nil
	case string:
		return v, nil
	}
	return "", fmt.Errorf("the analytics answer's %q is %T, not a number", metric, v)
}

func (d *Datasource) usage(ctx context.Context, q Query, dq backend.DataQuery) (backend.DataResponse, error) {
	if q.Metric == "" {
		q.Metric = "cost.total"
	}
	metric, ok := metricByValue(q.Metric)
	if !ok {
		return backend.DataResponse{}, queryError(fmt.Sprintf("unknown metric %q", q.Metric))
	}
	if q.GroupBy == "" {
		q.GroupBy = "hour"
	}
	params := url.Values{
		"startDate": {dq.TimeRange.From.UTC().Format(time.RFC3339)},
		"endDate":   {dq.TimeRange.To.UTC().Format(time.RFC3339)},
		"groupBy":   {q.GroupBy},
	}
	if q.Project != "" {
		params.Set("projectId", q.Project)
	}
	if q.TZ != "" {
		params.Set("tz", q.TZ)
	}
	var a analyticsJSON
	if err := d.api.get(ctx, "/api/usage/analytics", params, &a); err != nil {
		return backend.DataResponse{}, err
	}
	type seriesData struct {
		labels  data.Labels
		buckets []analyticsBucket
	}
	var all []seriesData
	for _, p := range a.Projects {
		all = append(all, seriesData{data.Labels{"project": p.ProjectID, "project_name": p.ProjectName}, p.Data})
	}
	if len(a.Projects) == 0 {
		project := q.Project
		if project == "" {
			project = "all"
		}
		all = append(all, seriesData{data.Labels{"project": project}, a.Data})
	}
	var res backend.DataResponse
	for _, s := range all {
		if q.Numeric {
			total, err := aggregate(s.buckets, metric.Value)
			if err != nil {
				return res, err
			}
			res.Frames = append(res.Frames, numericFrame(metric.Value, s.labels, total, metric.Unit))
			continue
		}
		times := make([]time.Time, 0, len(s.buckets))
		values := make([]float64, 0, len(s.buckets))
		for _, b := range s.buckets {
			start, _ := b["start"].(string)
			ts, err := time.Parse(time.RFC3339, start)
			if err != nil {
				return res, fmt.Errorf("the analytics answer's bucket start %q: %w", start, err)
			}
			raw, err := b.value(metric.Value)
			if err != nil {
				return res, err
			}
			v, err := strconv.ParseFloat(raw, 64)
			if err != nil {
				return res, fmt.Errorf("the analytics answer's %s %q: %w", metric.Value, raw, err)
			}
			times = append(times, ts)
			values = append(values, v)
		}
		res.Frames = append(res.Frames, timeSeriesFrame(metric.Value, s.labels, times, values, metric.Unit))
	}
	return res, nil
}

// aggregate is the value of a series for an alert rule: the exact decimal sum of the buckets,
// or their mean for containerInstances (a mean number of tasks, not an amount).
func aggregate(buckets []analyticsBucket, metric string) (float64, error) {
	sum := decimal.Zero
	for _, b := range buckets {
		raw, err := b.value(metric)
		if err != nil {
			return 0, err
		}
		v, err := decimal.NewFromString(raw)
		if err != nil {
			return 0, fmt.Errorf("the analytics answer's %s %q: %w", metric, raw, err)
		}
		sum = sum.Add(v)
	}
	if metric == "containerInstances" && len(buckets) > 0 {
		sum = sum.DivRound(decimal.NewFromInt(int64(len(buckets))), 9)
	}
	f, err := strconv.ParseFloat(sum.String(), 64)
	if err != nil {
		return 0, fmt.Errorf("convert %s: %w", sum, err)
	}
	return f, nil
}

// ---- budget ----

type limitsJSON struct {
	Projects []struct {
		ProjectID   string `json:"projectId"`
		ProjectName string `json:"projectName"`
	} `json:"projects"`
}

type budgetJSON struct {
	ProjectID   string      `json:"projectId"`
	Used        json.Number `json:"used"`
	Limit       json.Number `json:"limit"`
	Remaining   json.Number `json:"remaining"`
	PercentUsed json.Number `json:"percentUsed"`
	Forecast    json.Number `json:"forecast"`
	Status      string      `json:"status"`
}

// budget answers one numeric-wide frame: used, limit, remaining, percentUsed and forecast of
// every requested project, labelled by project, for gauges and alert rules alike.
func (d *Datasource) budget(ctx context.Context, q Query) (backend.DataResponse, error) {
	var res backend.DataResponse
	type proj struct{ id, name string }
	var projects []proj
	if q.Project != "" {
		projects = []proj{{q.Project, ""}}
	} else {
		var limits limitsJSON
		if err := d.api.get(ctx, "/api/usage/limits", nil, &limits); err != nil {
			return res, err
		}
		for _, p := range limits.Projects {
			projects = append(projects, proj{p.ProjectID, p.ProjectName})
		}
	}
	frame := data.NewFrame("budget")
	frame.Meta = &data.FrameMeta{Type: data.FrameTypeNumericWide, TypeVersion: data.FrameTypeVersion{0, 1}}
	for _, p := range projects {
		var b budgetJSON
		if err := d.api.get(ctx, "/api/projects/"+url.PathEscape(p.id)+"/budget", nil, &b); err != nil {
			return res, err
		}
		labels := data.Labels{"project": p.id, "status": b.Status}
		if p.name != "" {
			labels["project_name"] = p.name
		}
		for _, f := range []struct {
			name string
			v    json.Number
			unit string
		}{
			{"used", b.Used, "currencyUSD"}, {"limit", b.Limit, "currencyUSD"}, {"remaining", b.Remaining, "currencyUSD"},
			{"percentUsed", b.PercentUsed, "percent"}, {"forecast", b.Forecast, "currencyUSD"},
		} {
			v := math.NaN()
			if f.v != "" {
				var err error
				if v, err = strconv.ParseFloat(f.v.String(), 64); err != nil {
					return res, fmt.Errorf("the budget answer's %s %q: %w", f.name, f.v, err)
				}
			}
			field := data.NewField(f.name, labels, []float64{v})
			field.Config = &data.FieldConfig{Unit: f.unit}
			frame.Fields = append(frame.Fields, field)
		}
	}
	res.Frames = data.Frames{frame}
	return res, nil
}

// ---- PromQL ----

type promSeries struct {
	Metric map[string]string `json:"metric"`
	Values [][2]any          `json:"values"`
	Value  [2]any            `json:"value"`
}

type promAnswer struct {
	Status string `json:"status"`
	Data   struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// maxPoints is Prometheus' limit of points per series in a range query.
const maxPoints = 11000

func (d *Datasource) promql(ctx context.Context, q Query, dq backend.DataQuery) (backend.DataResponse, error) {
	var res backend.DataResponse
	if strings.TrimSpace(q.Expr) == "" {
		return res, queryError("the PromQL query is empty")
	}
	from, to := dq.TimeRange.From, dq.TimeRange.To
	var ans promAnswer
	if q.Numeric {
		if err := d.api.postForm(ctx, "/api/v1/query", url.Values{"query": {q.Expr}, "time": {promTime(to)}}, &ans); err != nil {
			return res, err
		}
	} else {
		step, err := promStep(q.Step, dq.Interval, to.Sub(from))
		if err != nil {
			return res, err
		}
		params := url.Values{"query": {q.Expr}, "start": {promTime(from)}, "end": {promTime(to)}, "step": {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)}}
		if err := d.api.postForm(ctx, "/api/v1/query_range", params, &ans); err != nil {
			return res, err
		}
	}
	var result []promSeries
	switch ans.Data.ResultType {
	case "matrix", "vector":
		if err := json.Unmarshal(ans.Data.Result, &result); err != nil {
			return res, fmt.Errorf("decode the PromQL %s: %w", ans.Data.ResultType, err)
		}
	case "scalar":
		var s [2]any
		if err := json.Unmarshal(ans.Data.Result, &s); err != nil {
			return res, fmt.Errorf("decode the PromQL scalar: %w", err)
		}
		result = []promSeries{{Metric: map[string]string{}, Value: s, Values: [][2]any{s}}}
	default:
		return res, fmt.Errorf("PromQL answered a %q, not a time series", ans.Data.ResultType)
	}
	for _, s := range result {
		name := s.Metric["__name__"]
		labels := data.Labels{}
		for k, v := range s.Metric {
			if k != "__name__" {
				labels[k] = v
			}
		}
		if name == "" {
			name = "value"
		}
		if q.Numeric {
			_, v, err := promSample(s.Value)
			if err != nil {
				return res, err
			}
			res.Frames = append(res.Frames, numericFrame(name, labels, v, ""))
			continue
		}
		times := make([]time.Time, 0, len(s.Values))
		values := make([]float64, 0, len(s.Values))
		for _, p := range s.Values {
			ts, v, err := promSample(p)
			if err != nil {
				return res, err
			}
			times = append(times, ts)
			values = append(values, v)
		}
		res.Frames = append(res.Frames, timeSeriesFrame(name, labels, times, values, ""))
	}
	return res, nil
}

func promTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', -1, 64)
}

// promStep is the query's step, else the panel's interval, at least a minute (the collection
// period) and coarse enough to stay under maxPoints.
func promStep(raw string, interval, span time.Duration) (time.Duration, error) {
	step := interval
	if raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil || d <= 0 {
			return 0, queryError(fmt.Sprintf("step %q is not a positive duration such as 5m or 1h", raw))
		}
		step = d
	}
	step = max(step, time.Minute)
	if minStep := span / maxPoints; step < minStep {
		step = minStep.Round(time.Second) + time.Second
	}
	return step, nil
}

func promSample(p [2]any) (time.Time, float64, error) {
	var ts float64
	switch t := p[0].(type) {
	case float64:
		ts = t
	case json.Number:
		var err error
		if ts, err = t.Float64(); err != nil {
			return time.Time{}, 0, fmt.Errorf("sample time %v: %w", t, err)
		}
	default:
		return time.Time{}, 0, fmt.Errorf("sample time %v is not a number", p[0])
	}
	s, _ := p[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("sample value %v: %w", p[1], err)
	}
	return time.UnixMilli(int64(math.Round(ts * 1000))).UTC(), v, nil
}

// ---- frames ----

// timeSeriesFrame is one series of Grafana's time-series multi format.
func timeSeriesFrame(name string, labels data.Labels, times []time.Time, values []float64, unit string) *data.Frame {
	value := data.NewField(name, labels, values)
	if unit != "" {
		value.Config = &data.FieldConfig{Unit: unit}
	}
	f := data.NewFrame(name, data.NewField("time", nil, times), value)
	f.Meta = &data.FrameMeta{Type: data.FrameTypeTimeSeriesMulti, TypeVersion: data.FrameTypeVersion{0, 1}}
	return f
}

// numericFrame is one series of Grafana's numeric multi format (one number, labels), the shape
// alert rules reduce and compare.
func numericFrame(name string, labels data.Labels, v float64, unit string) *data.Frame {
	value := data.NewField(name, labels, []float64{v})
	if unit != "" {
		value.Config = &data.FieldConfig{Unit: unit}
	}
	f := data.NewFrame(name, value)
	f.Meta = &data.FrameMeta{Type: data.FrameTypeNumericMulti, TypeVersion: data.FrameTypeVersion{0, 1}}
	return f
}

// ---- resources ----

// ResourceOption is one entry of a drop-down list served by CallResource.
type ResourceOption struct {
	Value       string `json:"value"`
	Label       string `json:"label"`
	Description string `json:"description,omitempty"`
}

// CallResource serves the editors' drop-downs: GET projects (the team's projects) and GET
// metrics (the usage query's metrics).
func (d *Datasource) CallResource(ctx context.Context, req *backend.CallResourceRequest, sender backend.CallResourceResponseSender) error {
	send := func(status int, v any) error {
		body, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode the resource answer: %w", err)
		}
		return sender.Send(&backend.CallResourceResponse{Status: status, Headers: map[string][]string{"Content-Type": {"application/json"}}, Body: body})
	}
	type errBody struct {
		Message string `json:"message"`
	}
	switch strings.Trim(req.Path, "/") {
	case "metrics":
		out := make([]ResourceOption, 0, len(Metrics))
		for _, m := range Metrics {
			out = append(out, ResourceOption{Value: m.Value, Label: m.Label, Description: m.Description})
		}
		return send(http.StatusOK, out)
	case "projects":
		if err := d.usable(); err != nil {
			return send(http.StatusBadRequest, errBody{err.Error()})
		}
		var limits limitsJSON
		if err := d.api.get(ctx, "/api/usage/limits", nil, &limits); err != nil {
			status := http.StatusBadGateway
			if ae := (*apiError)(nil); errors.As(err, &ae) && ae.Status/100 == 4 {
				status = ae.Status
			}
			return send(status, errBody{err.Error()})
		}
		out := make([]ResourceOption, 0, len(limits.Projects))
		for _, p := range limits.Projects {
			label := p.ProjectID
			if p.ProjectName != "" {
				label = p.ProjectName + " (" + p.ProjectID + ")"
			}
			out = append(out, ResourceOption{Value: p.ProjectID, Label: label})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Label < out[j].Label })
		return send(http.StatusOK, out)
	}
	return send(http.StatusNotFound, errBody{fmt.Sprintf("no resource %q: use projects or metrics", req.Path)})
}
