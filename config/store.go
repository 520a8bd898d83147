package config

import "fmt"

// StoreConfig configures the metadata store.
type StoreConfig struct {
	// Driver is "sqlite" (default, a file in data_dir) or "postgres".
	Driver string `yaml:"driver"`
	// DSN is the PostgreSQL connection string, or the SQLite file path (default data_dir/cygni.db).
	// CYGNI_STORE_DSN overrides it.
	DSN string `yaml:"dsn"`
}

func (c *StoreConfig) setDefaults() { c.Driver = "sqlite" }

func (c *StoreConfig) validate() error {
	switch c.Driver {
	case "sqlite":
	case "postgres":
		if c.DSN == "" {
			return fmt.Errorf("'store.dsn' is empty; the postgres driver needs a connection string")
		}
	default:
		return fmt.Errorf("'store.driver' is %q; want sqlite or postgres", c.Driver)
	}
	return nil
}
