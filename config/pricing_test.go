package config

import (
	"strings"
	"testing"
	"time"
)

func TestPricing(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		c := Default()
		if len(c.Pricing.Sheets) != 1 {
			t.Fatalf("default sheets = %d, want 1", len(c.Pricing.Sheets))
		}
		s := c.Pricing.Sheets[0]
		for _, p := range []struct{ name, got, want string }{
			{"vcpu_hour", s.VCPUHour.String(), "0.05"},
			{"memory_gb_hour", s.MemoryGBHour.String(), "0.005"},
			{"egress_gb", s.EgressGB.String(), "0.09"},
			{"storage_gb_hour", s.StorageGBHour.String(), "0.0001"},
			{"million_requests", s.MillionRequests.String(), "0.4"},
		} {
			if p.got != p.want {
				t.Errorf("%s = %s, want %s", p.name, p.got, p.want)
			}
		}
	})
	t.Run("two sheets", func(t *testing.T) {
		c, err := Parse([]byte(`
pricing:
  sheets:
    - vcpu_hour: "0.05"
    - effective_from: 2024-01-15T00:00:00Z
      vcpu_hour: "0.0612345678901234567"
      egress_gb: 0.10
`))
		if err != nil {
			t.Fatal(err)
		}
		s := c.Pricing.Sheets
		if len(s) != 2 || !s[1].EffectiveFrom.Equal(time.Date(2024, 1, 15, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("sheets = %+v", s)
		}
		if got := s[1].VCPUHour.String(); got != "0.0612345678901234567" {
			t.Errorf("vcpu_hour = %s, decimal precision lost", got)
		}
		if got := s[1].EgressGB.String(); got != "0.1" {
			t.Errorf("egress_gb = %s", got)
		}
		if got := s[1].MemoryGBHour.String(); got != "0.005" {
			t.Errorf("memory_gb_hour = %s, want the default", got)
		}
	})
	for _, tc := range []struct{ name, yaml, want string }{
		{"negative", "pricing:\n  sheets:\n    - vcpu_hour: \"-1\"\n", "'pricing.sheets[0].vcpu_hour' is -1"},
		{"huge", "pricing:\n  sheets:\n    - egress_gb: \"5000\"\n", "'pricing.sheets[0].egress_gb' is 5000"},
		{"not a decimal", "pricing:\n  sheets:\n    - million_requests: \"abc\"\n", `pricing.sheets[0].million_requests: "abc" is not a decimal`},
		{"unknown key", "pricing:\n  sheets:\n    - cpu_hour: \"1\"\n", "unknown key pricing.sheets[0].cpu_hour (did you mean pricing.sheets[0].vcpu_hour?)"},
		{"empty", "pricing:\n  sheets: []\n", "'pricing.sheets' is empty"},
		{"order", "pricing:\n  sheets:\n    - effective_from: 2024-02-01T00:00:00Z\n    - effective_from: 2024-01-01T00:00:00Z\n", "'pricing.sheets[1].effective_from' (2024-01-01T00:00:00Z) is not after"},
		{"missing date", "pricing:\n  sheets:\n    - vcpu_hour: \"1\"\n    - vcpu_hour: \"2\"\n", "'pricing.sheets[1].effective_from' is missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
