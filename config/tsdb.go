package config

import (
	"fmt"
	"time"
)

// TSDBConfig configures the embedded Prometheus TSDB.
type TSDBConfig struct {
	// Retention is how long usage samples are kept (default 400d).
	Retention Duration `yaml:"retention"`
	// OutOfOrderWindow is how far behind the newest sample late data may still be written
	// (default 15d, CloudWatch's retention of 1-minute data).
	OutOfOrderWindow Duration `yaml:"out_of_order_window"`
}

func (c *TSDBConfig) setDefaults() {
	c.Retention = Duration(400 * 24 * time.Hour)
	c.OutOfOrderWindow = Duration(15 * 24 * time.Hour)
}

func (c *TSDBConfig) validate() error {
	if err := positive("tsdb.retention", c.Retention); err != nil {
		return err
	}
	if err := positive("tsdb.out_of_order_window", c.OutOfOrderWindow); err != nil {
		return err
	}
	if c.OutOfOrderWindow > c.Retention {
		return fmt.Errorf("'tsdb.out_of_order_window' (%s) is longer than 'tsdb.retention' (%s)", c.OutOfOrderWindow.D(), c.Retention.D())
	}
	return nil
}
