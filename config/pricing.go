package config

import (
	"fmt"
	"time"

	"github.com/shopspring/decimal"
	"gopkg.in/yaml.v3"
)

// PricingConfig is the price list: one or more price sheets, each in force from its
// effective_from until the next sheet's. An hour is priced by the sheet in force at the hour's
// start, so a price change in the middle of a month prices each hour at its own rate.
//
//	pricing:
//	  sheets:
//	    - effective_from: 2024-01-01T00:00:00Z
//	      vcpu_hour: "0.05"
//	      memory_gb_hour: "0.005"
//	      egress_gb: "0.09"
//	      storage_gb_hour: "0.0001"
//	      million_requests: "0.40"
//
// Prices are USD; "GB" is 2^30 bytes. Amounts are decimals written as strings, so nothing passes
// through a float.
type PricingConfig struct {
	// Sheets in increasing effective_from order. The first sheet also prices every hour before
	// its effective_from.
	Sheets []PriceSheet `yaml:"sheets"`
}

// PriceSheet is one set of unit prices in USD.
type PriceSheet struct {
	// EffectiveFrom is the first instant the sheet applies (RFC 3339). Zero for the first sheet
	// means "always".
	EffectiveFrom time.Time `yaml:"effective_from"`
	// VCPUHour is the price of one reserved vCPU for one hour (default 0.05).
	VCPUHour Decimal `yaml:"vcpu_hour"`
	// MemoryGBHour is the price of one reserved GB of memory for one hour (default 0.005).
	MemoryGBHour Decimal `yaml:"memory_gb_hour"`
	// EgressGB is the price of one GB sent out (default 0.09).
	EgressGB Decimal `yaml:"egress_gb"`
	// StorageGBHour is the price of one GB of storage for one hour (default 0.0001).
	StorageGBHour Decimal `yaml:"storage_gb_hour"`
	// MillionRequests is the price of one million HTTP(S) requests (default 0.40).
	MillionRequests Decimal `yaml:"million_requests"`
}

// Default unit prices (USD), those implied by the seed's budget example plus memory and requests.
var (
	DefaultVCPUHour        = decimal.RequireFromString("0.05")
	DefaultMemoryGBHour    = decimal.RequireFromString("0.005")
	DefaultEgressGB        = decimal.RequireFromString("0.09")
	DefaultStorageGBHour   = decimal.RequireFromString("0.0001")
	DefaultMillionRequests = decimal.RequireFromString("0.40")
)

// DefaultPriceSheet returns the default prices, in force always.
func DefaultPriceSheet() PriceSheet {
	return PriceSheet{
		VCPUHour:        Decimal{DefaultVCPUHour},
		MemoryGBHour:    Decimal{DefaultMemoryGBHour},
		EgressGB:        Decimal{DefaultEgressGB},
		StorageGBHour:   Decimal{DefaultStorageGBHour},
		MillionRequests: Decimal{DefaultMillionRequests},
	}
}

func (c *PricingConfig) setDefaults() {
	c.Sheets = []PriceSheet{DefaultPriceSheet()}
}

// setDefaults starts a sheet of the file from the default prices: the prices a sheet leaves out
// keep them. (A file that gives sheets replaces the default sheet.)
func (s *PriceSheet) setDefaults() { *s = DefaultPriceSheet() }

// MaxUnitPrice bounds every unit price; a larger value is a typo, not a price.
var MaxUnitPrice = decimal.NewFromInt(1000)

func (c *PricingConfig) validate() error {
	if len(c.Sheets) == 0 {
		return fmt.Errorf("'pricing.sheets' is empty; give at least one price sheet")
	}
	for i, s := range c.Sheets {
		for _, p := range []struct {
			key string
			v   Decimal
		}{
			{"vcpu_hour", s.VCPUHour}, {"memory_gb_hour", s.MemoryGBHour}, {"egress_gb", s.EgressGB},
			{"storage_gb_hour", s.StorageGBHour}, {"million_requests", s.MillionRequests},
		} {
			if p.v.IsNegative() || p.v.GreaterThan(MaxUnitPrice) {
				return fmt.Errorf("'pricing.sheets[%d].%s' is %s; it must be between 0 and %s USD", i, p.key, p.v.String(), MaxUnitPrice)
			}
		}
		if i > 0 {
			if s.EffectiveFrom.IsZero() {
				return fmt.Errorf("'pricing.sheets[%d].effective_from' is missing; only the first sheet may omit it", i)
			}
			if !s.EffectiveFrom.After(c.Sheets[i-1].EffectiveFrom) {
				return fmt.Errorf("'pricing.sheets[%d].effective_from' (%s) is not after the previous sheet's (%s); list sheets in increasing order",
					i, s.EffectiveFrom.Format(time.RFC3339), c.Sheets[i-1].EffectiveFrom.Format(time.RFC3339))
			}
		}
	}
	return nil
}

// Decimal is an exact decimal read from a YAML string ("0.05"). A bare YAML number is accepted
// too and read from its literal text, never through a float.
type Decimal struct{ decimal.Decimal }

// UnmarshalYAML parses the scalar's text as a decimal.
func (d *Decimal) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return valueError(fmt.Sprintf("want a decimal such as \"0.05\", got %s", describe(n)))
	}
	v, err := decimal.NewFromString(n.Value)
	if err != nil {
		return valueError(fmt.Sprintf("%q is not a decimal (e.g. \"0.05\")", n.Value))
	}
	d.Decimal = v
	return nil
}

// MarshalYAML writes the decimal as a string.
func (d Decimal) MarshalYAML() (any, error) { return d.String(), nil }
