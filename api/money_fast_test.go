package api

import (
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cygni/usage/query"
)

// showMetricsDecimal is showMetrics in exact decimals throughout (the amount in its unit to 20
// decimals, then rounded to the field's precision): the reference the integer path must equal.
func showMetricsDecimal(a *query.Amounts, start, end, now time.Time) shownMetrics {
	return shownMetrics{
		cpuSeconds: a.Decimal(query.CPUSeconds).Round(placesCPUSeconds),
		cpuHours:   a.Decimal(query.CPUSeconds).DivRound(secondsPerHour, placesCPUHours),
		memory:     a.Decimal(query.MemoryGBHours).Round(placesGBHours),
		tasks:      query.AverageTasks(a, start, end, now).Round(placesTasks),
		egress:     a.Decimal(query.EgressBytes).DivRound(gib, placesEgressGB),
		requests:   a.Decimal(query.Requests).Round(placesRequests),
		storage:    a.Decimal(query.StorageGBHours).Round(placesGBHours),
	}
}

// The shown quantities are the same figures, to the digit, as the exact decimal computation:
// random amounts of every magnitude (beyond int64 too), negative corrections, and amounts one
// quantum either side of a rounding boundary of each field.
func TestShowMetricsEqualsDecimals(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	end, now := start.Add(24*time.Hour), start.Add(48*time.Hour)
	// boundary returns quanta of metric m within a quantum of a half unit of the field's last
	// place (value = (n + 1/2) × 10^-places × div, in quanta: × PerUnit).
	boundary := func(m query.Metric, div int64, places int32, n int64) int64 {
		num := new(big.Int).Mul(big.NewInt(2*n+1), big.NewInt(query.PerUnit[m]*div))
		den := new(big.Int).Mul(big.NewInt(2), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(places)), nil))
		return new(big.Int).Quo(num, den).Int64()
	}
	fields := []struct {
		m      query.Metric
		div    int64
		places int32
	}{
		{query.CPUSeconds, 1, placesCPUSeconds}, {query.CPUSeconds, 3600, placesCPUHours}, {query.MemoryGBHours, 1, placesGBHours},
		{query.EgressBytes, 1 << 30, placesEgressGB}, {query.Requests, 1, placesRequests}, {query.StorageGBHours, 1, placesGBHours},
	}
	for i := range 200_000 {
		var a query.Amounts
		for m := range a {
			switch i % 4 {
			case 0:
				a[m] = query.Int128Of(rng.Int64N(1 << 20))
			case 1:
				a[m] = query.Int128Of(rng.Int64() - 1<<62)
			case 2:
				v := query.Int128Of(rng.Int64())
				var overflow bool
				for range 2 { // beyond int64: the decimal path
					if v, overflow = v.Add(v); overflow {
						t.Fatalf("%v doubled overflows", v)
					}
				}
				a[m] = v
			default:
				f := fields[rng.IntN(len(fields))]
				q := boundary(f.m, f.div, f.places, rng.Int64N(1<<30)) + rng.Int64N(3) - 1
				if rng.IntN(2) == 0 {
					q = -q
				}
				a[f.m] = query.Int128Of(q)
			}
		}
		got, want := showMetrics(&a, start, end, now).json(), showMetricsDecimal(&a, start, end, now).json()
		if got != want {
			t.Fatalf("amounts %v:\n got %+v\nwant %+v", a, got, want)
		}
	}
}
