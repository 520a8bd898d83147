// Package config loads the one YAML file that configures cygni-usage: defaults first, then a
// strict decode (an unknown key is an error naming the key and its line), then validation whose
// messages name the key and the bad value. Secrets can come from the environment instead of the
// file (see ApplyEnv).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// Config is the whole configuration file. Each section is defined in its own file.
type Config struct {
	// Listen is the HTTP listen address.
	Listen string `yaml:"listen"`
	// DataDir holds the TSDB, the SQLite database and the collector's watermark.
	DataDir string `yaml:"data_dir"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
	// OperatorTeams are the team ids whose admin tokens may use the operator endpoints, which
	// act across every team: GET /api/usage/unmapped and POST /-/reload. Empty: nobody (the CLI
	// still works on the machine).
	OperatorTeams []string `yaml:"operator_teams"`

	TSDB      TSDBConfig      `yaml:"tsdb"`
	AWS       AWSConfig       `yaml:"aws"`
	Collector CollectorConfig `yaml:"collector"`
	Store     StoreConfig     `yaml:"store"`
	Pricing   PricingConfig   `yaml:"pricing"`
	Billing   BillingConfig   `yaml:"billing"`
	Alerting  AlertingConfig  `yaml:"alerting"`
}

// Default returns the configuration used when no file is given: everything embedded, in ./data.
func Default() *Config {
	c := &Config{
		Listen:   "127.0.0.1:8080",
		DataDir:  "./data",
		LogLevel: "info",
	}
	c.TSDB.setDefaults()
	c.AWS.setDefaults()
	c.Collector.setDefaults()
	c.Store.setDefaults()
	c.Pricing.setDefaults()
	c.Billing.setDefaults()
	c.Alerting.setDefaults()
	return c
}

// Load reads and validates the file at path. An empty path means Default() plus the
// environment.
func Load(path string) (*Config, error) {
	c := Default()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		if err := decode(c, b); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	c.ApplyEnv(os.Getenv)
	if err := c.Validate(); err != nil {
		if path != "" {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return nil, err
	}
	return c, nil
}

// Parse decodes and validates a configuration from bytes, without the environment. For tests.
func Parse(b []byte) (*Config, error) {
	c := Default()
	if err := decode(c, b); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func decode(c *Config, b []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		// yaml.v3 says "line N: field x not found in type config.Y"; name the key plainly.
		return fmt.Errorf("parse config: %s", strings.ReplaceAll(err.Error(), "not found in type", "is not a known key of"))
	}
	return nil
}

// ApplyEnv overrides secrets and endpoints from the environment: CYGNI_STORE_DSN,
// CYGNI_STRIPE_API_KEY, CYGNI_STRIPE_URL, CYGNI_SMTP_PASSWORD, CYGNI_WEBHOOK_SECRET, CYGNI_LISTEN,
// CYGNI_DATA_DIR.
func (c *Config) ApplyEnv(getenv func(string) string) {
	set := func(dst *string, key string) {
		if v := getenv(key); v != "" {
			*dst = v
		}
	}
	set(&c.Listen, "CYGNI_LISTEN")
	set(&c.DataDir, "CYGNI_DATA_DIR")
	set(&c.Store.DSN, "CYGNI_STORE_DSN")
	c.Billing.applyEnv(getenv)
	c.Alerting.applyEnv(getenv)
}

// Validate checks every section and names the first bad key.
func (c *Config) Validate() error {
	if c.Listen == "" {
		return errors.New("'listen' is empty")
	}
	if c.DataDir == "" {
		return errors.New("'data_dir' is empty")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("'log_level' is %q; want debug, info, warn or error", c.LogLevel)
	}
	for _, v := range []func() error{
		c.TSDB.validate, c.AWS.validate, c.Collector.validate, c.Store.validate,
		c.Pricing.validate, c.Billing.validate, c.Alerting.validate,
	} {
		if err := v(); err != nil {
			return err
		}
	}
	return nil
}

// Duration is a YAML duration that also takes Prometheus' units (d, w, y): "90s", "5m", "400d".
type Duration time.Duration

// UnmarshalYAML parses a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: want a duration such as \"5m\": %w", n.Line, err)
	}
	if v, err := time.ParseDuration(s); err == nil {
		*d = Duration(v)
		return nil
	}
	v, err := model.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (e.g. \"90s\", \"5m\", \"400d\")", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration in Prometheus' notation.
func (d Duration) MarshalYAML() (any, error) { return model.Duration(d).String(), nil }

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Secret is a string that never prints: logs and dumps show <secret>.
type Secret string

// String hides the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "<secret>"
}

// MarshalYAML hides the value.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalJSON hides the value.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// Reveal returns the secret itself, for the one place that needs it.
func (s Secret) Reveal() string { return string(s) }

func positive(key string, d Duration) error {
	if d <= 0 {
		return fmt.Errorf("'%s' is %s; it must be positive", key, model.Duration(d))
	}
	return nil
}
