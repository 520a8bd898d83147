package config

import (
	"fmt"
	"net/url"
	"sort"
	"time"

	"github.com/shopspring/decimal"
)

// Billing modes.
const (
	BillingModeMeterEvents  = "meter_events"  // Stripe Billing Meter events (default)
	BillingModeUsageRecords = "usage_records" // legacy usage records, action=set, per subscription item
)

// BillingConfig configures the Stripe sink: which metrics are billed, in which units, and where
// Stripe is. Billing quantities (never money) go to Stripe; Stripe prices them.
type BillingConfig struct {
	// Enabled runs the billing sink (default true). Without a Stripe key the sink still closes
	// hours into the outbox and holds them until a key is configured.
	Enabled bool `yaml:"enabled"`
	// Mode is meter_events (default) or usage_records.
	Mode string `yaml:"mode"`
	// WaitForCollector closes an hour only once the collector's watermark (in data_dir) has
	// passed it (default true), so that a first backfill is not billed half-collected.
	WaitForCollector bool `yaml:"wait_for_collector"`
	// SettleDelay is how long after an hour ends it is closed, for late CloudWatch data (default 15m).
	SettleDelay Duration `yaml:"settle_delay"`
	// Interval between billing cycles (default 1m).
	Interval Duration `yaml:"interval"`
	// RecheckWindow is how far back closed hours are recomputed to find late data that needs a
	// correction (default 72h; at most the window).
	RecheckWindow Duration `yaml:"recheck_window"`
	// RecheckInterval is how often that recomputation runs (default 15m).
	RecheckInterval Duration `yaml:"recheck_interval"`
	// Window is how far back Stripe accepts usage (default 35d). Older hours are flagged "expired".
	Window Duration `yaml:"window"`
	// Backfill is how much history the first cycle closes when no hour was closed before
	// (default: the window).
	Backfill Duration `yaml:"backfill"`
	// MaxBackoff caps the exponential back-off between retries of one report (default 10m).
	MaxBackoff Duration `yaml:"max_backoff"`
	// Stripe is where reports go.
	Stripe StripeConfig `yaml:"stripe"`
	// Meters maps each billed metric (cpu, memory, egress, requests) to its Stripe meter.
	Meters map[string]MeterConfig `yaml:"meters"`
}

// StripeConfig is the Stripe endpoint and key.
type StripeConfig struct {
	// URL is the API base URL (default https://api.stripe.com); CYGNI_STRIPE_URL overrides it.
	URL string `yaml:"url"`
	// APIKey is the secret key; CYGNI_STRIPE_API_KEY overrides it. Empty: reports are held.
	APIKey Secret `yaml:"api_key"`
}

// MeterConfig is one billed metric.
type MeterConfig struct {
	// EventName is the Stripe meter's event_name (meter_events mode).
	EventName string `yaml:"event_name"`
	// Unit is the size of one reported unit in the metric's billed unit, a decimal string:
	// "0.001" reports cpu in thousandths of a vCPU-hour.
	Unit string `yaml:"unit"`
	// Disabled stops billing this metric (a file's meters are merged over the defaults).
	Disabled bool `yaml:"disabled"`
}

// BilledMetrics are the metrics billing knows, with their billed unit.
var BilledMetrics = map[string]string{
	"cpu":      "vCPU-hour",
	"memory":   "GB-hour",
	"egress":   "GB",
	"requests": "request",
}

func (c *BillingConfig) setDefaults() {
	c.Enabled = true
	c.Mode = BillingModeMeterEvents
	c.WaitForCollector = true
	c.SettleDelay = Duration(15 * time.Minute)
	c.Interval = Duration(time.Minute)
	c.RecheckWindow = Duration(72 * time.Hour)
	c.RecheckInterval = Duration(15 * time.Minute)
	c.Window = Duration(35 * 24 * time.Hour)
	c.MaxBackoff = Duration(10 * time.Minute)
	c.Stripe.URL = "https://api.stripe.com"
	c.Meters = map[string]MeterConfig{
		"cpu":      {EventName: "cygni_vcpu_hours", Unit: "0.001"},
		"memory":   {EventName: "cygni_memory_gb_hours", Unit: "0.001"},
		"egress":   {EventName: "cygni_egress_gb", Unit: "0.001"},
		"requests": {EventName: "cygni_requests", Unit: "1"},
	}
}

func (c *BillingConfig) applyEnv(getenv func(string) string) {
	if v := getenv("CYGNI_STRIPE_API_KEY"); v != "" {
		c.Stripe.APIKey = Secret(v)
	}
	if v := getenv("CYGNI_STRIPE_URL"); v != "" {
		c.Stripe.URL = v
	}
}

func (c *BillingConfig) validate() error {
	switch c.Mode {
	case BillingModeMeterEvents, BillingModeUsageRecords:
	default:
		return fmt.Errorf("'billing.mode' is %q; want meter_events or usage_records", c.Mode)
	}
	for key, d := range map[string]Duration{
		"billing.settle_delay": c.SettleDelay, "billing.interval": c.Interval,
		"billing.recheck_window": c.RecheckWindow, "billing.recheck_interval": c.RecheckInterval, "billing.window": c.Window, "billing.max_backoff": c.MaxBackoff,
	} {
		if err := positive(key, d); err != nil {
			return err
		}
	}
	if c.Backfill < 0 {
		return fmt.Errorf("'billing.backfill' is negative")
	}
	if u, err := url.Parse(c.Stripe.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("'billing.stripe.url' is %q; want an http(s) URL such as https://api.stripe.com", c.Stripe.URL)
	}
	if len(c.Meters) == 0 {
		return fmt.Errorf("'billing.meters' is empty; bill at least one of cpu, memory, egress, requests")
	}
	names := make([]string, 0, len(c.Meters))
	for name := range c.Meters {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		m := c.Meters[name]
		if m.Disabled {
			continue
		}
		if _, ok := BilledMetrics[name]; !ok {
			return fmt.Errorf("'billing.meters.%s' is not a billed metric; want cpu, memory, egress or requests", name)
		}
		if c.Mode == BillingModeMeterEvents && m.EventName == "" {
			return fmt.Errorf("'billing.meters.%s.event_name' is empty", name)
		}
		u, err := decimal.NewFromString(m.Unit)
		if err != nil || !u.IsPositive() {
			return fmt.Errorf("'billing.meters.%s.unit' is %q; want a positive decimal such as \"0.001\"", name, m.Unit)
		}
	}
	return nil
}
