package config

import "time"

// CollectorConfig configures collection from CloudWatch.
type CollectorConfig struct {
	// Interval between collection runs (default 5m).
	Interval Duration `yaml:"interval"`
	// Lookback is how far behind the watermark each run re-reads, for late CloudWatch data (default 15m).
	Lookback Duration `yaml:"lookback"`
	// Backfill is how much history the first run reads when there is no watermark (default 168h).
	Backfill Duration `yaml:"backfill"`
}

func (c *CollectorConfig) setDefaults() {
	c.Interval = Duration(5 * time.Minute)
	c.Lookback = Duration(15 * time.Minute)
	c.Backfill = Duration(7 * 24 * time.Hour)
}

func (c *CollectorConfig) validate() error {
	if err := positive("collector.interval", c.Interval); err != nil {
		return err
	}
	if err := positive("collector.lookback", c.Lookback); err != nil {
		return err
	}
	return positive("collector.backfill", c.Backfill)
}
