package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/gtime"
	"github.com/grafana/grafana-plugin-sdk-go/data"
)

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

// minStep is the finest step worth asking for: the collection period.
const minStep = time.Minute

// promql answers a PromQL query: a range query over the panel's range, or for alert rules an
// instant query at its end. Series keep every label, __name__ included (as Grafana's Prometheus
// data source keeps them), so that two series never share a label set.
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
		loc, err := loadTZ(q.TZ)
		if err != nil {
			return res, err
		}
		step, err := promStep(q.Step, dq.Interval, to.Sub(from))
		if err != nil {
			return res, err
		}
		start, end := alignRange(from, to, step, loc)
		params := url.Values{"query": {q.Expr}, "start": {promTime(start)}, "end": {promTime(end)}, "step": {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)}}
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
		labels := data.Labels(s.Metric)
		if labels == nil {
			labels = data.Labels{}
		}
		var f *data.Frame
		if q.Numeric {
			_, v, err := promSample(s.Value)
			if err != nil {
				return res, err
			}
			f = numericFrame("Value", labels, v, "")
		} else {
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
			f = timeSeriesFrame("Value", labels, times, values, "")
		}
		f.Name = s.Metric["__name__"]
		if q.LegendFormat != "" {
			value := f.Fields[len(f.Fields)-1]
			if value.Config == nil {
				value.Config = &data.FieldConfig{}
			}
			value.Config.DisplayNameFromDS = legend(q.LegendFormat, s.Metric)
		}
		res.Frames = append(res.Frames, f)
	}
	return res, nil
}

// alignRange aligns start and end down to multiples of step, counted from midnight in loc, as
// Grafana's Prometheus data source does: every point of a panel then sits on the same instants
// whatever the moment of the request (17:00, not 17:55:18), and hourly steps on hour boundaries,
// where sum_over_time over the step is the exact amount of the period.
func alignRange(from, to time.Time, step time.Duration, loc *time.Location) (time.Time, time.Time) {
	_, offset := to.In(loc).Zone()
	off := time.Duration(offset) * time.Second
	align := func(t time.Time) time.Time {
		n := t.Add(off).UnixNano()
		s := step.Nanoseconds()
		q := n / s
		if n%s < 0 {
			q--
		}
		return time.Unix(0, q*s).Add(-off).UTC()
	}
	return align(from), align(to)
}

var legendLabel = regexp.MustCompile(`\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)

// legend renders a legend format ("{{project}} reserved") with a series' labels.
func legend(format string, labels map[string]string) string {
	return legendLabel.ReplaceAllStringFunc(format, func(m string) string {
		return labels[legendLabel.FindStringSubmatch(m)[1]]
	})
}

func promTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', -1, 64)
}

// promStep is the query's step, else the panel's interval, at least a minute (the collection
// period) and coarse enough to stay under maxPoints, rounded up to whole seconds.
func promStep(raw string, interval, span time.Duration) (time.Duration, error) {
	step := interval
	if raw != "" {
		d, err := gtime.ParseDuration(raw)
		if err != nil || d <= 0 {
			return 0, queryError(fmt.Sprintf("step %q is not a positive duration such as 5m, 1h or 1d", raw))
		}
		step = d
	}
	step = max(step, minStep)
	if safe := span / maxPoints; step <= safe {
		step = safe + 1
	}
	return step.Truncate(time.Second) + ceilSecond(step), nil
}

// ceilSecond is what rounds d up to a whole second: 0 when it is one, else 1s.
func ceilSecond(d time.Duration) time.Duration {
	if d%time.Second == 0 {
		return 0
	}
	return time.Second
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
