package config

// PricingConfig is the price sheet (filled in by the query layer's issue).
type PricingConfig struct{}

func (c *PricingConfig) setDefaults() {}

func (c *PricingConfig) validate() error { return nil }
