package config

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestBillingConfigFiles loads testdata/billing*.yml: *.good.yml must load, *.bad.yml must fail
// with an error naming the key and the bad value.
func TestBillingConfigFiles(t *testing.T) {
	for _, tc := range []struct {
		file, wantErr string
	}{
		{"billing.good.yml", ""},
		{"billing-mode.bad.yml", `'billing.mode' is "invoices"; want meter_events or usage_records`},
		{"billing-unit.bad.yml", `'billing.meters.cpu.unit' is "-1"; want a positive decimal`},
		{"billing-metric.bad.yml", `'billing.meters.storage' is not a billed metric`},
		{"billing-event.bad.yml", `'billing.meters.requests.event_name' is empty`},
		{"billing-url.bad.yml", `'billing.stripe.url' is "api.stripe.com"`},
		{"billing-settle.bad.yml", `'billing.settle_delay' is 0s; it must be positive`},
	} {
		t.Run(tc.file, func(t *testing.T) {
			c := parseTestdata(t, tc.file, tc.wantErr)
			if c == nil {
				return
			}
			got := c.Billing
			if got.Mode != BillingModeUsageRecords || got.SettleDelay.D() != 30*time.Minute || got.Stripe.URL != "http://127.0.0.1:12111" {
				t.Errorf("billing = %+v", got)
			}
			// Meters merge over the defaults; a partial entry keeps only what it sets.
			if m := got.Meters["cpu"]; m.Unit != "0.01" || m.EventName != "" {
				t.Errorf("cpu = %+v", m)
			}
			if !got.Meters["egress"].Disabled || got.Meters["requests"].EventName != "cygni_requests" {
				t.Errorf("meters = %+v", got.Meters)
			}
			if s := got.Stripe.APIKey.String(); s != "<secret>" {
				t.Errorf("the key prints as %q", s)
			}
			if b, _ := json.Marshal(got.Stripe); strings.Contains(string(b), "sk_test_file") {
				t.Errorf("the key leaks into JSON: %s", b)
			}
		})
	}
}

func TestBillingEnv(t *testing.T) {
	c := Default()
	c.ApplyEnv(func(k string) string {
		return map[string]string{"CYGNI_STRIPE_API_KEY": "sk_env", "CYGNI_STRIPE_URL": "http://127.0.0.1:9"}[k]
	})
	if c.Billing.Stripe.APIKey.Reveal() != "sk_env" || c.Billing.Stripe.URL != "http://127.0.0.1:9" {
		t.Errorf("stripe = %+v", c.Billing.Stripe)
	}
}
