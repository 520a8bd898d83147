package config

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// PriceOverride is a negotiated price sheet of one team or one project: from EffectiveFrom on,
// the prices it sets replace those of the sheet underneath (the project's team's override, then
// the default sheets of pricing), and the prices it leaves out (nil) follow that sheet. An
// override that sets no price is a reset: from its instant on, the sheet underneath applies
// again. Overrides live in the metadata store, not in the configuration file.
type PriceOverride struct {
	EffectiveFrom                                                    time.Time
	VCPUHour, MemoryGBHour, EgressGB, StorageGBHour, MillionRequests *decimal.Decimal
}

// priceFieldsJSON is the JSON form of an override's prices (the API's and the store's).
type priceFieldsJSON struct {
	VCPUHour        *decimal.Decimal `json:"vcpuHour,omitempty"`
	MemoryGBHour    *decimal.Decimal `json:"memoryGbHour,omitempty"`
	EgressGB        *decimal.Decimal `json:"egressGb,omitempty"`
	StorageGBHour   *decimal.Decimal `json:"storageGbHour,omitempty"`
	MillionRequests *decimal.Decimal `json:"millionRequests,omitempty"`
}

// PriceFieldNames are the JSON names of the prices of an override, in a stable order.
var PriceFieldNames = []string{"vcpuHour", "memoryGbHour", "egressGb", "storageGbHour", "millionRequests"}

// Fields returns the override's prices by JSON name (nil: not set), in PriceFieldNames' order.
func (o PriceOverride) Fields() []*decimal.Decimal {
	return []*decimal.Decimal{o.VCPUHour, o.MemoryGBHour, o.EgressGB, o.StorageGBHour, o.MillionRequests}
}

// SetField sets the price of JSON name name; an unknown name is an error.
func (o *PriceOverride) SetField(name string, v *decimal.Decimal) error {
	switch name {
	case "vcpuHour":
		o.VCPUHour = v
	case "memoryGbHour":
		o.MemoryGBHour = v
	case "egressGb":
		o.EgressGB = v
	case "storageGbHour":
		o.StorageGBHour = v
	case "millionRequests":
		o.MillionRequests = v
	default:
		return fmt.Errorf("%q is not a price (known: vcpuHour, memoryGbHour, egressGb, storageGbHour, millionRequests)", name)
	}
	return nil
}

// IsReset reports whether the override sets no price.
func (o PriceOverride) IsReset() bool {
	for _, f := range o.Fields() {
		if f != nil {
			return false
		}
	}
	return true
}

// PricesJSON is the JSON object of the prices the override sets ("{}" for a reset), the form
// the store keeps and the audit trail shows.
func (o PriceOverride) PricesJSON() string {
	b, _ := json.Marshal(priceFieldsJSON{o.VCPUHour, o.MemoryGBHour, o.EgressGB, o.StorageGBHour, o.MillionRequests}) // decimals only: cannot fail
	return string(b)
}

// ParsePricesJSON reads PricesJSON's form back.
func ParsePricesJSON(s string) (PriceOverride, error) {
	var f priceFieldsJSON
	if err := json.Unmarshal([]byte(s), &f); err != nil {
		return PriceOverride{}, fmt.Errorf("decode prices %q: %w", s, err)
	}
	return PriceOverride{VCPUHour: f.VCPUHour, MemoryGBHour: f.MemoryGBHour, EgressGB: f.EgressGB, StorageGBHour: f.StorageGBHour, MillionRequests: f.MillionRequests}, nil
}

// PriceFieldError is an invalid price of an override; Field is its JSON name.
type PriceFieldError struct {
	Field string
	Msg   string
}

func (e *PriceFieldError) Error() string { return e.Field + ": " + e.Msg }

// Validate checks every price it sets: between 0 and MaxUnitPrice USD. An error is a
// *PriceFieldError.
func (o PriceOverride) Validate() error {
	for i, f := range o.Fields() {
		if f == nil {
			continue
		}
		if f.IsNegative() || f.GreaterThan(MaxUnitPrice) {
			return &PriceFieldError{Field: PriceFieldNames[i], Msg: fmt.Sprintf("%s is not a price; it must be between 0 and %s USD", f.String(), MaxUnitPrice)}
		}
	}
	if o.EffectiveFrom.IsZero() {
		return &PriceFieldError{Field: "effectiveFrom", Msg: "is required (RFC 3339, e.g. 2026-12-15T00:00:00Z)"}
	}
	return nil
}

// Apply returns s with the prices the override sets (its EffectiveFrom is not touched).
func (o PriceOverride) Apply(s PriceSheet) PriceSheet {
	set := func(dst *Decimal, v *decimal.Decimal) {
		if v != nil {
			dst.Decimal = *v
		}
	}
	set(&s.VCPUHour, o.VCPUHour)
	set(&s.MemoryGBHour, o.MemoryGBHour)
	set(&s.EgressGB, o.EgressGB)
	set(&s.StorageGBHour, o.StorageGBHour)
	set(&s.MillionRequests, o.MillionRequests)
	return s
}
