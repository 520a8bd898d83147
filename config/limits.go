package config

import (
	"fmt"
	"net/url"
	"time"
)

// HTTPConfig configures the HTTP server beyond its listen address.
type HTTPConfig struct {
	// CORSAllowedOrigins are the origins (scheme://host[:port]) whose browser scripts may call
	// the Prometheus API (/api/v1/). Empty (the default): no cross-origin access.
	CORSAllowedOrigins []string `yaml:"cors_allowed_origins"`
}

func (c *HTTPConfig) setDefaults() {}

func (c *HTTPConfig) validate() error {
	for i, o := range c.CORSAllowedOrigins {
		key := fmt.Sprintf("http.cors_allowed_origins[%d]", i)
		if o == "*" {
			return fmt.Errorf("'%s' is \"*\"; list the allowed origins explicitly, such as https://grafana.example.com", key)
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return fmt.Errorf("'%s' is %q; want an origin scheme://host[:port], such as https://grafana.example.com", key, o)
		}
	}
	return nil
}

// LimitsConfig bounds what one request and one team may cost the service. Every refusal is a
// 4xx naming the limit (docs/limits.md).
type LimitsConfig struct {
	// RequestBodyBytes is the largest request body any endpoint reads (413 above it).
	RequestBodyBytes int64 `yaml:"request_body_bytes"`

	HTTP  HTTPLimits  `yaml:"http"`
	Query QueryLimits `yaml:"query"`
	REST  RESTLimits  `yaml:"rest"`
}

// HTTPLimits are the HTTP server's timeouts.
type HTTPLimits struct {
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	ReadTimeout       Duration `yaml:"read_timeout"`
	WriteTimeout      Duration `yaml:"write_timeout"`
	IdleTimeout       Duration `yaml:"idle_timeout"`
}

// QueryLimits bound the Prometheus API (/api/v1/).
type QueryLimits struct {
	// Timeout covers one request from its arrival: checks, parsing and evaluation.
	Timeout           Duration `yaml:"timeout"`
	MaxSamples        int      `yaml:"max_samples"`
	MaxSeries         int      `yaml:"max_series"`
	MaxQueryLength    int      `yaml:"max_query_length"`
	MaxNestingDepth   int      `yaml:"max_nesting_depth"`
	MinStep           Duration `yaml:"min_step"`
	MaxPoints         int      `yaml:"max_points_per_series"`
	MinSubqueryStep   Duration `yaml:"min_subquery_step"`
	MaxSubqueryPoints int      `yaml:"max_subquery_points"`
	MaxResponseBytes  int64    `yaml:"max_response_bytes"`
	// MaxConcurrentPerTeam queries of one team run at once (0: half the cores, at least one);
	// up to MaxQueuedPerTeam more wait at most QueueTimeout for a slot; beyond that a request is
	// refused with 429.
	MaxConcurrentPerTeam int      `yaml:"max_concurrent_per_team"`
	MaxQueuedPerTeam     int      `yaml:"max_queued_per_team"`
	QueueTimeout         Duration `yaml:"queue_timeout"`
}

// RESTLimits bound the REST endpoints (/api/usage/..., /api/billing/..., ...).
type RESTLimits struct {
	Timeout Duration `yaml:"timeout"`
	// MaxConcurrentPerTeam REST requests of one team run at once; 0: the number of cores.
	MaxConcurrentPerTeam int      `yaml:"max_concurrent_per_team"`
	MaxQueuedPerTeam     int      `yaml:"max_queued_per_team"`
	QueueTimeout         Duration `yaml:"queue_timeout"`
}

func (c *LimitsConfig) setDefaults() {
	*c = LimitsConfig{
		RequestBodyBytes: 1 << 20,
		HTTP: HTTPLimits{
			ReadHeaderTimeout: Duration(10 * time.Second),
			ReadTimeout:       Duration(30 * time.Second),
			WriteTimeout:      Duration(3 * time.Minute),
			IdleTimeout:       Duration(2 * time.Minute),
		},
		Query: QueryLimits{
			Timeout:              Duration(time.Minute),
			MaxSamples:           5_000_000,
			MaxSeries:            10_000,
			MaxQueryLength:       16 << 10,
			MaxNestingDepth:      64,
			MinStep:              Duration(time.Second),
			MaxPoints:            11_000,
			MinSubqueryStep:      Duration(10 * time.Second),
			MaxSubqueryPoints:    50_000,
			MaxResponseBytes:     32 << 20,
			MaxConcurrentPerTeam: 0,
			MaxQueuedPerTeam:     32,
			QueueTimeout:         Duration(10 * time.Second),
		},
		REST: RESTLimits{
			Timeout:              Duration(time.Minute),
			MaxConcurrentPerTeam: 0,
			MaxQueuedPerTeam:     32,
			QueueTimeout:         Duration(10 * time.Second),
		},
	}
}

func (c *LimitsConfig) validate() error {
	atLeast := func(key string, v, min int64) error {
		if v < min {
			return fmt.Errorf("'limits.%s' is %d; it must be at least %d", key, v, min)
		}
		return nil
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{
		{"http.read_header_timeout", c.HTTP.ReadHeaderTimeout},
		{"http.read_timeout", c.HTTP.ReadTimeout},
		{"http.write_timeout", c.HTTP.WriteTimeout},
		{"http.idle_timeout", c.HTTP.IdleTimeout},
		{"query.timeout", c.Query.Timeout},
		{"query.min_step", c.Query.MinStep},
		{"query.min_subquery_step", c.Query.MinSubqueryStep},
		{"query.queue_timeout", c.Query.QueueTimeout},
		{"rest.timeout", c.REST.Timeout},
		{"rest.queue_timeout", c.REST.QueueTimeout},
	} {
		if err := positive("limits."+d.key, d.v); err != nil {
			return err
		}
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{{"query.min_step", c.Query.MinStep}, {"query.min_subquery_step", c.Query.MinSubqueryStep}} {
		if d.v.D() < time.Millisecond {
			return fmt.Errorf("'limits.%s' is %s; it must be at least 1ms (the TSDB's resolution)", d.key, d.v.D())
		}
	}
	for _, n := range []struct {
		key string
		v   int64
		min int64
	}{
		{"request_body_bytes", c.RequestBodyBytes, 1 << 10},
		{"query.max_samples", int64(c.Query.MaxSamples), 1},
		{"query.max_series", int64(c.Query.MaxSeries), 1},
		{"query.max_query_length", int64(c.Query.MaxQueryLength), 16},
		{"query.max_nesting_depth", int64(c.Query.MaxNestingDepth), 1},
		{"query.max_points_per_series", int64(c.Query.MaxPoints), 1},
		{"query.max_subquery_points", int64(c.Query.MaxSubqueryPoints), 1},
		{"query.max_response_bytes", c.Query.MaxResponseBytes, 1 << 10},
		{"query.max_concurrent_per_team", int64(c.Query.MaxConcurrentPerTeam), 0},
		{"query.max_queued_per_team", int64(c.Query.MaxQueuedPerTeam), 0},
		{"rest.max_concurrent_per_team", int64(c.REST.MaxConcurrentPerTeam), 0},
		{"rest.max_queued_per_team", int64(c.REST.MaxQueuedPerTeam), 0},
	} {
		if err := atLeast(n.key, n.v, n.min); err != nil {
			return err
		}
	}
	for _, t := range []struct {
		key string
		v   Duration
	}{{"query.timeout", c.Query.Timeout}, {"rest.timeout", c.REST.Timeout}} {
		if c.HTTP.WriteTimeout <= t.v {
			return fmt.Errorf("'limits.http.write_timeout' (%s) must be longer than 'limits.%s' (%s), or answers are cut off", c.HTTP.WriteTimeout.D(), t.key, t.v.D())
		}
	}
	if c.Query.MaxPoints > 11_000 {
		return fmt.Errorf("'limits.query.max_points_per_series' is %d; the embedded Prometheus API allows at most 11000", c.Query.MaxPoints)
	}
	if int64(c.Query.MaxQueryLength) > c.RequestBodyBytes {
		return fmt.Errorf("'limits.query.max_query_length' (%d) is larger than 'limits.request_body_bytes' (%d)", c.Query.MaxQueryLength, c.RequestBodyBytes)
	}
	return nil
}
