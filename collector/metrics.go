package collector

import (
	"errors"
	"fmt"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/aws/smithy-go"
)

// collectorMetrics are the collector's own cygni_collector_* metrics.
type collectorMetrics struct {
	set         *metrics.Set
	appended    *metrics.Counter
	corrections *metrics.Counter
	rejected    *metrics.Counter
	retries     *metrics.Counter
	untagged    *metrics.Gauge
	services    *metrics.Gauge
	lastSuccess *metrics.Gauge
	// requestedMetrics counts the metrics of every GetMetricData call (what CloudWatch bills);
	// cygni_collector_cloudwatch_estimated_cost_usd_total is derived from it at read time (one
	// multiplication of the integer count, no float running sum).
	requestedMetrics *metrics.Counter
	// abandoned counts minutes the watermark passed without CloudWatch data (LateDataHold).
	abandoned *metrics.Counter
}

func newCollectorMetrics(set *metrics.Set, c *Collector) *collectorMetrics {
	m := &collectorMetrics{
		set:         set,
		appended:    set.GetOrCreateCounter("cygni_collector_samples_appended_total"),
		corrections: set.GetOrCreateCounter("cygni_collector_corrections_appended_total"),
		rejected:    set.GetOrCreateCounter("cygni_collector_samples_rejected_total"),
		retries:     set.GetOrCreateCounter("cygni_collector_retries_total"),
		untagged:    set.GetOrCreateGauge("cygni_collector_untagged_services", nil),
		services:    set.GetOrCreateGauge("cygni_collector_services", nil),
		lastSuccess: set.GetOrCreateGauge("cygni_collector_last_success_timestamp_seconds", nil),

		requestedMetrics: set.GetOrCreateCounter("cygni_collector_cloudwatch_metrics_requested_total"),
		abandoned:        set.GetOrCreateCounter("cygni_collector_abandoned_minutes_total"),
	}
	set.GetOrCreateGauge("cygni_collector_cloudwatch_estimated_cost_usd_total", func() float64 {
		return float64(m.requestedMetrics.Get()) * c.opts.CloudWatchPricePer1000 / 1000
	})
	set.GetOrCreateGauge("cygni_collector_cloudwatch_behind_seconds", func() float64 {
		ms := c.published.Load()
		if ms == 0 {
			return 0
		}
		return c.opts.Now().Sub(time.UnixMilli(ms)).Seconds()
	})
	set.GetOrCreateGauge("cygni_collector_lag_seconds", func() float64 {
		wm, ok := c.Watermark()
		if !ok {
			return 0
		}
		return c.opts.Now().Sub(wm).Seconds()
	})
	return m
}

// requested counts the n metrics of one GetMetricData call.
func (m *collectorMetrics) requested(n int) { m.requestedMetrics.Add(n) }

// call counts one AWS API call by service and operation, and its error by code.
func (m *collectorMetrics) call(service, op string, err error) {
	m.set.GetOrCreateCounter(fmt.Sprintf(`cygni_collector_aws_calls_total{service=%q,operation=%q}`, service, op)).Inc()
	if err == nil {
		return
	}
	m.set.GetOrCreateCounter(fmt.Sprintf(`cygni_collector_aws_errors_total{service=%q,operation=%q,code=%q}`, service, op, errorCode(err))).Inc()
}

// errorCode is the AWS error code of err ("Throttling", "InvalidClientTokenId", …), or a coarse
// class for errors without one.
func errorCode(err error) string {
	var ae smithy.APIError
	switch {
	case errors.As(err, &ae):
		return ae.ErrorCode()
	case errors.Is(err, errPartial):
		return "PartialData"
	case isTimeout(err):
		return "Timeout"
	default:
		return "Transport"
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
