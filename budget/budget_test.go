package budget

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func TestPeriod(t *testing.T) {
	for _, tc := range []struct {
		name       string
		t          time.Time
		anchor     int
		start, end string
	}{
		{"calendar month", time.Date(2026, 11, 30, 23, 59, 59, 0, time.UTC), 1, "2026-11-01", "2026-12-01"},
		{"first instant", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), 1, "2026-12-01", "2027-01-01"},
		{"before the anchor", time.Date(2026, 1, 14, 12, 0, 0, 0, time.UTC), 15, "2025-12-15", "2026-01-15"},
		{"on the anchor", time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC), 15, "2026-01-15", "2026-02-15"},
		{"other zone, UTC period", time.Date(2026, 3, 1, 0, 30, 0, 0, time.FixedZone("CET", 3600)), 1, "2026-02-01", "2026-03-01"},
		{"bad anchor means 1", time.Date(2026, 2, 10, 0, 0, 0, 0, time.UTC), 31, "2026-02-01", "2026-03-01"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, e := Period(tc.t, tc.anchor)
			if s.Format("2006-01-02") != tc.start || e.Format("2006-01-02") != tc.end || s.Location() != time.UTC {
				t.Errorf("Period = %s .. %s, want %s .. %s (UTC)", s, e, tc.start, tc.end)
			}
		})
	}
}

// The status, the percent shown and the thresholds agree at every boundary.
func TestStatusPercentAndThresholdsAgree(t *testing.T) {
	for _, tc := range []struct {
		used, limit, pct, status string
	}{
		{"0", "100", "0", StatusOK},
		{"79.99", "100", "79.9", StatusOK},
		{"79.9999999999", "100", "79.9", StatusOK},
		{"80", "100", "80", StatusWarning},
		{"99.999", "100", "99.9", StatusWarning},
		{"100", "100", "100", StatusExceeded},
		{"26.10", "26.10", "100", StatusExceeded},
		{"0.01", "0", "100", StatusExceeded},
		{"0", "0", "0", StatusOK},
		{"33.33", "41.66", "80", StatusWarning}, // 80.004…%
		{"33.32", "41.66", "79.9", StatusOK},    // 79.980…%
	} {
		used, limit := d(tc.used), d(tc.limit)
		if got := Status(used, limit); got != tc.status {
			t.Errorf("Status(%s, %s) = %s, want %s", tc.used, tc.limit, got, tc.status)
		}
		p := PercentUsed(used, limit)
		if !p.Equal(d(tc.pct)) {
			t.Errorf("PercentUsed(%s, %s) = %s, want %s", tc.used, tc.limit, p, tc.pct)
		}
		for _, th := range []decimal.Decimal{Warning, Exceeded} {
			if Reached(used, limit, th) != p.GreaterThanOrEqual(th) {
				t.Errorf("%s of %s: Reached(%s) = %v but the percent shown is %s", tc.used, tc.limit, th, Reached(used, limit, th), p)
			}
		}
		if IsExceeded(used, limit) != (tc.status == StatusExceeded) {
			t.Errorf("IsExceeded(%s, %s) disagrees with the status", tc.used, tc.limit)
		}
	}
}

func TestEffectiveLimit(t *testing.T) {
	p, team := d("250"), d("40")
	for _, tc := range []struct {
		project, team *decimal.Decimal
		want          string
	}{{&p, &team, "250"}, {nil, &team, "40"}, {nil, nil, "100"}, {&p, nil, "250"}} {
		if got := EffectiveLimit(tc.project, tc.team); got.String() != tc.want {
			t.Errorf("EffectiveLimit = %s, want %s", got, tc.want)
		}
	}
}
