package api

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/cygni/usage/config"
	"github.com/cygni/usage/query"
)

// showMetricsDecimal is showMetrics in exact decimals throughout (the amount in its unit to 20
// decimals, then rounded to the field's precision): the reference the integer path must equal.
func showMetricsDecimal(a *query.Amounts, start, end, now time.Time) metricsJSON {
	return metricsJSON{
		CPUSeconds:         numFixed(a.Decimal(query.CPUSeconds).Round(placesCPUSeconds), placesCPUSeconds),
		CPUHours:           numFixed(a.Decimal(query.CPUSeconds).DivRound(secondsPerHour, placesCPUHours), placesCPUHours),
		MemoryGBHours:      numFixed(a.Decimal(query.MemoryGBHours).Round(placesGBHours), placesGBHours),
		ContainerInstances: numFixed(query.AverageTasks(a, start, end, now).Round(placesTasks), placesTasks),
		EgressGB:           numFixed(a.Decimal(query.EgressBytes).DivRound(gib, placesEgressGB), placesEgressGB),
		Requests:           numFixed(a.Decimal(query.Requests).Round(placesRequests), placesRequests),
		StorageGBHours:     numFixed(a.Decimal(query.StorageGBHours).Round(placesGBHours), placesGBHours),
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
		got, want := showMetrics(&a, start, end, now).json(), showMetricsDecimal(&a, start, end, now)
		if got != want {
			t.Fatalf("amounts %v:\n got %+v\nwant %+v", a, got, want)
		}
	}
}

// The shown cost of a bucket (integers where one sheet prices it) is, to the digit, the exact
// cost rounded by decimals, at every precision shown; sums of shown costs beyond an int64 go on
// in exact decimals instead of wrapping.
func TestShowBucketCostEqualsDecimals(t *testing.T) {
	prices := query.NewPrices(config.PricingConfig{})
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range 100_000 {
		var a query.Amounts
		for m := range a {
			switch i % 3 {
			case 0:
				a[m] = query.Int128Of(rng.Int64N(1 << 30))
			case 1:
				a[m] = query.Int128Of(rng.Int64N(1<<50) - 1<<49)
			default:
				a[m] = query.Int128Of(rng.Int64() - 1<<62)
			}
		}
		for _, places := range []int32{placesBill, placesHourly} {
			b := query.Bucket{Usage: a, Sheet: 0}
			got := showBucketCost(prices, &b, places).json()
			want := showCost(prices.Cost(0, &a), places)
			c := prices.Cost(0, &a)
			w := costJSON{Compute: c.Compute.StringFixed(places), Memory: c.Memory.StringFixed(places), Bandwidth: c.Bandwidth.StringFixed(places),
				Requests: c.Requests.StringFixed(places), Storage: c.Storage.StringFixed(places),
				Total: c.Compute.Round(places).Add(c.Memory.Round(places)).Add(c.Bandwidth.Round(places)).Add(c.Requests.Round(places)).Add(c.Storage.Round(places)).StringFixed(places)}
			if got != w || want.json() != w {
				t.Fatalf("amounts %v at %d places:\n shown %+v\n exact %+v\n want  %+v", a, places, got, want.json(), w)
			}
		}
	}
	big := shownCost{places: placesHourly}
	big.f.setFixed(cCompute, math.MaxInt64-1, big.pl())
	sum := big.add(big).add(big)
	want := decimal.New(math.MaxInt64-1, -placesHourly).Mul(decimal.NewFromInt(3))
	if got := sum.part(cCompute); got != want.StringFixed(placesHourly) {
		t.Errorf("3 × (2^63-2) µ$ shown as %s, want %s", got, want.StringFixed(placesHourly))
	}
	if got := sum.totalString(); got != want.StringFixed(placesHourly) {
		t.Errorf("total %s, want %s", got, want.StringFixed(placesHourly))
	}
	// Parts that fit an int64 whose total does not.
	two := shownCost{places: placesHourly}
	two.f.setFixed(cCompute, math.MaxInt64-1, two.pl())
	two.f.setFixed(cMemory, 5, two.pl())
	wantTotal := decimal.New(math.MaxInt64-1, -placesHourly).Add(decimal.New(5, -placesHourly)).StringFixed(placesHourly)
	if got := two.totalString(); got != wantTotal {
		t.Errorf("total of (2^63-2) µ$ and 5 µ$: %s, want %s", got, wantTotal)
	}
	if got := string(two.appendTotal(nil)); got != wantTotal {
		t.Errorf("appended total %s, want %s", got, wantTotal)
	}
}
