package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
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
	i := slices.IndexFunc(Metrics, func(m Metric) bool { return m.Value == v })
	if i < 0 {
		return Metric{}, false
	}
	return Metrics[i], true
}

// The analytics API's limits (query.MaxHourlyRange of the service): groupBy=hour covers at
// most 31 days. Longer ranges are answered by day or coarser.
const maxHourlyRange = 31 * 24 * time.Hour

// GroupBy values.
const (
	groupAuto  = "auto"
	groupHour  = "hour"
	groupDay   = "day"
	groupWeek  = "week"
	groupMonth = "month"
)

// autoGroupBy is the finest bucket at least as coarse as the panel's interval that the API
// answers for a range of span: a 7-day panel a thousand points wide gets hours, "Last 90 days"
// days, a panel with a 1w minimum interval weeks.
func autoGroupBy(interval, span time.Duration) string {
	switch {
	case interval >= 28*24*time.Hour:
		return groupMonth
	case interval >= 7*24*time.Hour:
		return groupWeek
	case interval >= 24*time.Hour || span > maxHourlyRange:
		return groupDay
	}
	return groupHour
}

// floorBucket is the start of the bucket of groupBy g that holds t, in loc: the hour, the day,
// the ISO week (Monday) or the month, as the analytics API's calendar buckets are.
func floorBucket(t time.Time, g string, loc *time.Location) time.Time {
	l := t.In(loc)
	y, m, d := l.Date()
	switch g {
	case groupHour:
		return time.Date(y, m, d, l.Hour(), 0, 0, 0, loc)
	case groupDay:
		return time.Date(y, m, d, 0, 0, 0, 0, loc)
	case groupWeek:
		back := (int(l.Weekday()) + 6) % 7 // days since Monday
		return time.Date(y, m, d-back, 0, 0, 0, 0, loc)
	case groupMonth:
		return time.Date(y, m, 1, 0, 0, 0, 0, loc)
	}
	return t
}

func loadTZ(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, queryError(fmt.Sprintf("tz %q is not an IANA time zone name (e.g. Europe/Stockholm)", name))
	}
	return loc, nil
}

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

// perProjectCalls is the most projects a usage query asks for one by one; a longer selection
// reads the whole team in one call and keeps the selected projects.
const perProjectCalls = 20

// usageSeries is the buckets of one project (or of the team, when no project has usage).
type usageSeries struct {
	labels  data.Labels
	buckets []analyticsBucket
}

// usage answers a usage query: per selected project, a time series of the metric's buckets, or
// for alert rules a number, the exact sum of the range (the mean for containerInstances).
//
// Time series start at the beginning of the bucket holding the range's start, so that the first
// point of a relative range ("now-7d") is a whole hour or day, not the minutes left of it; alert
// sums cover exactly the range asked for.
func (d *Datasource) usage(ctx context.Context, q Query, dq backend.DataQuery) (backend.DataResponse, error) {
	var res backend.DataResponse
	if q.Metric == "" {
		q.Metric = "cost.total"
	}
	metric, ok := metricByValue(q.Metric)
	if !ok {
		return res, queryError(fmt.Sprintf("unknown metric %q", q.Metric))
	}
	ids, err := parseProjects(q.Project)
	if err != nil {
		return res, err
	}
	loc, err := loadTZ(q.TZ)
	if err != nil {
		return res, err
	}
	from, to := dq.TimeRange.From, dq.TimeRange.To
	g := q.GroupBy
	switch g {
	case "", groupAuto:
		g = autoGroupBy(dq.Interval, to.Sub(from))
	case groupHour, groupDay, groupWeek, groupMonth:
	default:
		return res, queryError(fmt.Sprintf("groupBy %q is not one of auto, hour, day, week, month", q.GroupBy))
	}
	if !q.Numeric {
		from = floorBucket(from, g, loc)
	}
	params := url.Values{
		"startDate": {from.UTC().Format(time.RFC3339)},
		"endDate":   {to.UTC().Format(time.RFC3339)},
		"groupBy":   {g},
	}
	if q.TZ != "" {
		params.Set("tz", q.TZ)
	}
	var all []usageSeries
	read := func(projectID string) error {
		p := params
		if projectID != "" {
			p = url.Values{}
			for k, v := range params {
				p[k] = v
			}
			p.Set("projectId", projectID)
		}
		var a analyticsJSON
		if err := d.api.get(ctx, "/api/usage/analytics", p, &a); err != nil {
			return err
		}
		for _, pr := range a.Projects {
			if ids == nil || slices.Contains(ids, pr.ProjectID) {
				all = append(all, usageSeries{projectLabels(project{pr.ProjectID, pr.ProjectName}), pr.Data})
			}
		}
		if len(a.Projects) == 0 && projectID == "" && ids == nil {
			all = append(all, usageSeries{data.Labels{"project": "all"}, a.Data})
		}
		return nil
	}
	if ids == nil || len(ids) > perProjectCalls {
		err = read("")
	} else {
		for _, id := range ids {
			if err = read(id); err != nil {
				break
			}
		}
	}
	if err != nil {
		return res, err
	}
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
