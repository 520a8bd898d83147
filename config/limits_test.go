package config

import (
	"testing"
	"time"
)

func TestLimitsDefaultsAndExample(t *testing.T) {
	c := Default()
	if c.Limits.Query.MaxSamples != 5_000_000 || c.Limits.Query.MinStep.D() != time.Second || c.Limits.HTTP.ReadTimeout.D() != 30*time.Second || len(c.HTTP.CORSAllowedOrigins) != 0 {
		t.Fatalf("defaults %+v %+v", c.Limits, c.HTTP)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	ex := parseTestdata(t, "../../cygni-usage.example.yml", "")
	if ex.Limits != c.Limits {
		t.Errorf("example limits = %+v, defaults %+v", ex.Limits, c.Limits)
	}
}

func TestLimitsParse(t *testing.T) {
	c := parseTestdata(t, "limits.good.yml", "")
	if c.Limits.Query.MaxSeries != 500 || c.Limits.Query.Timeout.D() != 30*time.Second || c.Limits.Query.MaxSamples != 5_000_000 ||
		len(c.HTTP.CORSAllowedOrigins) != 1 || c.HTTP.CORSAllowedOrigins[0] != "https://grafana.example.com" {
		t.Fatalf("limits %+v http %+v", c.Limits, c.HTTP)
	}
	for file, want := range map[string]string{
		"limits-type.bad.yml":     `limits.query.max_samples: want an integer, got "lots"`,
		"limits-unknown.bad.yml":  `unknown key limits.query.max_serie (did you mean limits.query.max_series?)`,
		"limits-write.bad.yml":    `'limits.http.write_timeout' (30s) must be longer than 'limits.query.timeout' (1m0s)`,
		"limits-step.bad.yml":     `'limits.query.min_step' is 100µs; it must be at least 1ms`,
		"limits-points.bad.yml":   `'limits.query.max_points_per_series' is 20000`,
		"limits-cors.bad.yml":     `'http.cors_allowed_origins[0]' is "*"`,
		"limits-corsurl.bad.yml":  `'http.cors_allowed_origins[1]' is "grafana.example.com"`,
		"limits-negative.bad.yml": `'limits.query.max_concurrent_per_team' is -1; it must be at least 0`,
	} {
		t.Run(file, func(t *testing.T) { parseTestdata(t, file, want) })
	}
}
