package config

// AlertingConfig configures the rule engine and notification channels (filled in by the
// alerting issue).
type AlertingConfig struct{}

func (c *AlertingConfig) setDefaults() {}

func (c *AlertingConfig) applyEnv(getenv func(string) string) {}

func (c *AlertingConfig) validate() error { return nil }
