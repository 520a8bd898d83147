package config

// BillingConfig configures the Stripe sink (filled in by the billing issue).
type BillingConfig struct{}

func (c *BillingConfig) setDefaults() {}

func (c *BillingConfig) applyEnv(getenv func(string) string) {}

func (c *BillingConfig) validate() error { return nil }
