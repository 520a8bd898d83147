// Package config loads the one YAML file that configures cygni-usage: defaults first, then a
// strict decode (an unknown key or a value of the wrong type is an error naming the key's path,
// `collector.interval: "five" is not a duration`, and its file:line), then validation whose
// messages name the key and the bad value. Secrets can come from the environment instead of the
// file (see ApplyEnv).
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"strconv"
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

	Storage   StorageConfig   `yaml:"storage"`
	TSDB      TSDBConfig      `yaml:"tsdb"`
	AWS       AWSConfig       `yaml:"aws"`
	Collector CollectorConfig `yaml:"collector"`
	Store     StoreConfig     `yaml:"store"`
	Pricing   PricingConfig   `yaml:"pricing"`
	Billing   BillingConfig   `yaml:"billing"`
	Alerting  AlertingConfig  `yaml:"alerting"`
	HTTP      HTTPConfig      `yaml:"http"`
	Limits    LimitsConfig    `yaml:"limits"`
}

// Default returns the configuration used when no file is given: everything embedded, in ./data.
func Default() *Config {
	c := &Config{
		Listen:   "127.0.0.1:8080",
		DataDir:  "./data",
		LogLevel: "info",
	}
	c.Storage.setDefaults()
	c.TSDB.setDefaults()
	c.AWS.setDefaults()
	c.Collector.setDefaults()
	c.Store.setDefaults()
	c.Pricing.setDefaults()
	c.Billing.setDefaults()
	c.Alerting.setDefaults()
	c.HTTP.setDefaults()
	c.Limits.setDefaults()
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
			return nil, positioned(path, err)
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

// decode reads the YAML document b into c strictly (decodeNode): an unknown key or a value of
// the wrong type is a *KeyError naming the key's path.
func decode(c *Config, b []byte) error {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		// yaml.v3 says "yaml: line 3: mapping values are not allowed in this context".
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if rest, ok := strings.CutPrefix(msg, "line "); ok {
			if n, after, ok := strings.Cut(rest, ": "); ok {
				if line, err := strconv.Atoi(n); err == nil {
					return &SyntaxError{Line: line, Msg: after}
				}
			}
		}
		return &SyntaxError{Msg: msg}
	}
	if root.Kind == 0 {
		return nil // an empty file: the defaults
	}
	return decodeNode(&root, reflect.ValueOf(c).Elem(), "")
}

// SyntaxError is a file that is not YAML.
type SyntaxError struct {
	Line int // 1-based; 0 when unknown
	Msg  string
}

func (e *SyntaxError) Error() string { return "not valid YAML: " + e.Msg }

// positioned prefixes err with file:line when it is a KeyError or SyntaxError.
func positioned(file string, err error) error {
	var ke *KeyError
	var se *SyntaxError
	switch {
	case errors.As(err, &ke) && ke.Line > 0:
		return fmt.Errorf("%s:%d: %w", file, ke.Line, err)
	case errors.As(err, &se) && se.Line > 0:
		return fmt.Errorf("%s:%d: %w", file, se.Line, err)
	}
	return fmt.Errorf("%s: %w", file, err)
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
	if err := checkListen(c.Listen); err != nil {
		return err
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
		c.Storage.validate, c.TSDB.validate, c.AWS.validate, c.Collector.validate, c.Store.validate,
		c.Pricing.validate, c.Billing.validate, c.Alerting.validate,
		c.HTTP.validate, c.Limits.validate,
	} {
		if err := v(); err != nil {
			return err
		}
	}
	return nil
}

// checkListen accepts host:port, the port a number from 0 to 65535 (0: any free port), the
// host empty (every interface), an IP address or a host name.
func checkListen(addr string) error {
	if addr == "" {
		return errors.New("'listen' is empty; want host:port, such as 127.0.0.1:8080")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("'listen' is %q; want host:port, such as 127.0.0.1:8080 or :8080", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("'listen' is %q; the port must be a number from 0 to 65535", addr)
	}
	if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		return fmt.Errorf("'listen' is %q; %q is neither an IP address nor a host name", addr, host)
	}
	return nil
}

func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// Duration is a YAML duration that also takes Prometheus' units (d, w, y): "90s", "5m", "400d".
type Duration time.Duration

// UnmarshalYAML parses a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return valueError(fmt.Sprintf("want a duration such as \"5m\", got %s", describe(n)))
	}
	s := n.Value
	if v, err := time.ParseDuration(s); err == nil {
		*d = Duration(v)
		return nil
	}
	v, err := model.ParseDuration(s)
	if err != nil {
		return valueError(fmt.Sprintf("%q is not a duration (e.g. \"90s\", \"5m\", \"400d\")", s))
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
