package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// CollectorConfig configures collection from CloudWatch.
type CollectorConfig struct {
	// Interval between collection runs (default 5m).
	Interval Duration `yaml:"interval"`
	// Lookback is how far behind the watermark each run re-reads, for late CloudWatch data (default 15m).
	Lookback Duration `yaml:"lookback"`
	// Backfill is how much history the first run reads when there is no watermark (default 168h).
	Backfill Duration `yaml:"backfill"`
	// Chunk is the span of one unit of work: fetched, committed, then the watermark advances
	// (default 6h). It shrinks automatically for very large fleets to bound memory.
	Chunk Duration `yaml:"chunk"`
	// Concurrency is the number of GetMetricData calls in flight (default 4).
	Concurrency int `yaml:"concurrency"`
	// MaxQueriesPerCall is the number of metric queries per GetMetricData call, 1..500 (default 500).
	MaxQueriesPerCall int `yaml:"max_queries_per_call"`
	// RetryMaxElapsed bounds the back-off around one failing AWS call before the cycle gives up
	// and retries at the next interval (default 2m).
	RetryMaxElapsed Duration `yaml:"retry_max_elapsed"`
	// RightSizingInterval is how often the right-sizing metrics, priced by nothing (CpuUtilized,
	// MemoryUtilized), are read — still at 1-minute periods (default 1h; at or below interval,
	// every cycle).
	RightSizingInterval Duration `yaml:"right_sizing_interval"`
	// DiscoveryInterval is how long one ECS discovery (ListServices, DescribeServices) is reused
	// (default 10m); at most lookback, so a new service's first minutes are still re-read.
	DiscoveryInterval Duration `yaml:"discovery_interval"`
	// LateDataHold is how long the watermark waits for minutes CloudWatch has not published yet
	// while ECS reports running tasks (default 6h); later, they are counted as abandoned.
	LateDataHold Duration `yaml:"late_data_hold"`
	// CloudWatchPricePer1000Metrics is GetMetricData's price per 1,000 metrics requested (USD,
	// default 0.01), for the collector's estimated-cost counter.
	CloudWatchPricePer1000Metrics float64 `yaml:"cloudwatch_price_per_1000_metrics"`
	// Shard is "i/n": this collector reads the services whose hash of cluster and service name
	// is i modulo n, so n collectors (each with its own i) share a fleet. Empty: the whole fleet.
	Shard string `yaml:"shard"`
}

// ShardOf returns the shard index and count of Shard (0, 1 when empty). Call after validation.
func (c *CollectorConfig) ShardOf() (i, n int) {
	i, n, _ = parseShard(c.Shard)
	return i, n
}

func parseShard(s string) (i, n int, err error) {
	if s == "" {
		return 0, 1, nil
	}
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return 0, 1, fmt.Errorf("'collector.shard' is %q; want i/n with 0 <= i < n, such as 0/2", s)
	}
	return i, n, nil
}

func (c *CollectorConfig) setDefaults() {
	c.Interval = Duration(5 * time.Minute)
	c.Lookback = Duration(15 * time.Minute)
	c.Backfill = Duration(7 * 24 * time.Hour)
	c.Chunk = Duration(6 * time.Hour)
	c.Concurrency = 4
	c.MaxQueriesPerCall = 500
	c.RetryMaxElapsed = Duration(2 * time.Minute)
	c.RightSizingInterval = Duration(time.Hour)
	c.DiscoveryInterval = Duration(10 * time.Minute)
	c.LateDataHold = Duration(6 * time.Hour)
	c.CloudWatchPricePer1000Metrics = 0.01
}

func (c *CollectorConfig) validate() error {
	for _, d := range []struct {
		key string
		v   Duration
	}{
		{"collector.interval", c.Interval},
		{"collector.lookback", c.Lookback},
		{"collector.backfill", c.Backfill},
		{"collector.chunk", c.Chunk},
		{"collector.retry_max_elapsed", c.RetryMaxElapsed},
		{"collector.right_sizing_interval", c.RightSizingInterval},
		{"collector.discovery_interval", c.DiscoveryInterval},
		{"collector.late_data_hold", c.LateDataHold},
	} {
		if err := positive(d.key, d.v); err != nil {
			return err
		}
	}
	if c.Chunk.D() < time.Minute || c.Chunk.D()%time.Minute != 0 {
		return fmt.Errorf("'collector.chunk' is %s; it must be a whole number of minutes, at least 1m", c.Chunk.D())
	}
	if c.DiscoveryInterval.D() > c.Lookback.D() {
		return fmt.Errorf("'collector.discovery_interval' is %s, longer than 'collector.lookback' (%s): the first minutes of a service created just after a discovery would never be read",
			c.DiscoveryInterval.D(), c.Lookback.D())
	}
	if c.CloudWatchPricePer1000Metrics < 0 {
		return fmt.Errorf("'collector.cloudwatch_price_per_1000_metrics' is %g; it must not be negative", c.CloudWatchPricePer1000Metrics)
	}
	if c.Concurrency < 1 || c.Concurrency > 64 {
		return fmt.Errorf("'collector.concurrency' is %d; want 1..64", c.Concurrency)
	}
	if _, _, err := parseShard(c.Shard); err != nil {
		return err
	}
	if c.MaxQueriesPerCall < 1 || c.MaxQueriesPerCall > 500 {
		return fmt.Errorf("'collector.max_queries_per_call' is %d; want 1..500 (CloudWatch's limit)", c.MaxQueriesPerCall)
	}
	return nil
}
