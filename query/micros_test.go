package query

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/cygni/usage/config"
)

// TestPricingPathsAgree holds the one pricing arithmetic (fixedCost) to the same formula in
// arbitrary precision (costDecimal, used only where integers cannot be exact): equal to the last
// digit, negative corrections included; and Shown, derived from it for every figure the API shows,
// rounds every resource to the same digits as Cost(...).StringFixed(places).
func TestPricingPathsAgree(t *testing.T) {
	sheets := []config.PriceSheet{config.DefaultPriceSheet()}
	for _, ps := range [][5]string{
		{"0.04048", "0.004445", "0.09", "0.0001", "0.40"},
		{"1000", "0.00000000001", "0.0000000001", "0.00000000001", "0.00000000000001"},
		{"0.123456789", "7", "0.5", "3.1415926535", "0.000001"},
		{"0.05", "0.005", "0.00000000001", "0.0001", "0.4"}, // egress beyond the integer path
	} {
		d := func(s string) config.Decimal { return config.Decimal{Decimal: decimal.RequireFromString(s)} }
		sheets = append(sheets, config.PriceSheet{VCPUHour: d(ps[0]), MemoryGBHour: d(ps[1]), EgressGB: d(ps[2]), StorageGBHour: d(ps[3]), MillionRequests: d(ps[4])})
	}
	p := NewPrices(config.PricingConfig{Sheets: sheets})
	rng := rand.New(rand.NewPCG(1, 2))
	amount := func() int64 {
		switch rng.IntN(4) {
		case 0:
			return 0
		case 1:
			return rng.Int64N(1000)
		case 2:
			return rng.Int64N(1e12)
		}
		return rng.Int64N(1 << 62)
	}
	fast := 0
	for n := range 100000 {
		i := n % len(sheets)
		a := Amounts{CPUSeconds: Int128Of(amount()), MemoryGBHours: Int128Of(amount()), EgressBytes: Int128Of(amount()), Requests: Int128Of(amount()), StorageGBHours: Int128Of(amount())}
		if n%3 == 0 { // ties: multiples that land on half a micro-dollar
			a[CPUSeconds] = Int128Of(9216 * rng.Int64N(1e9) * 5)
			a[MemoryGBHours] = Int128Of(6144 * rng.Int64N(1e9) * 5)
		}
		c := p.Cost(i, &a)
		if d := p.costDecimal(i, &a); !c.Compute.Equal(d.Compute) || !c.Memory.Equal(d.Memory) || !c.Bandwidth.Equal(d.Bandwidth) ||
			!c.Requests.Equal(d.Requests) || !c.Storage.Equal(d.Storage) {
			t.Fatalf("sheet %d amounts %v: integer pricing %+v, decimal %+v", i, a, c, d)
		}
		places := []int32{0, 2, 6, 10}[n%4]
		m, ok := p.Shown(i, &a, places)
		if !ok {
			continue
		}
		fast++
		checkShown(t, i, &a, c, m, places)
	}
	if fast < 50000 {
		t.Errorf("only %d of 100000 priced on the integer path", fast)
	}
	negFast := 0
	for n := range 20000 {
		i := n % len(sheets)
		a := Amounts{CPUSeconds: Int128Of(-amount()), MemoryGBHours: Int128Of(-amount()), EgressBytes: Int128Of(-amount()), Requests: Int128Of(amount()), StorageGBHours: Int128Of(-amount())}
		if n%2 == 0 { // ties
			a[CPUSeconds] = Int128Of(-9216 * rng.Int64N(1e9) * 5)
			a[MemoryGBHours] = Int128Of(-6144 * rng.Int64N(1e9) * 5)
		}
		c, d := p.Cost(i, &a), p.costDecimal(i, &a)
		if !c.Compute.Equal(d.Compute) || !c.Memory.Equal(d.Memory) || !c.Bandwidth.Equal(d.Bandwidth) || !c.Requests.Equal(d.Requests) || !c.Storage.Equal(d.Storage) {
			t.Fatalf("sheet %d amounts %v: integer pricing %+v, decimal %+v", i, a, c, d)
		}
		places := []int32{0, 2, 6, 10}[n%4]
		if m, ok := p.Shown(i, &a, places); ok {
			negFast++
			checkShown(t, i, &a, c, m, places)
		}
	}
	if negFast < 5000 {
		t.Errorf("only %d of 20000 negative corrections shown on the integer path", negFast)
	}
	if _, ok := p.fixedCost(1, &Amounts{CPUSeconds: Int128Of(-5)}); !ok {
		t.Error("a negative correction left the integer pricing")
	}
	if _, ok := p.Shown(0, &Amounts{CPUSeconds: Int128Of(1 << 62)}, 19); ok {
		t.Error("a shown figure beyond int64 took the integer path")
	}
}

// checkShown holds the shown cost m (places decimals) to the exact cost c rounded by decimals.
func checkShown(t *testing.T, i int, a *Amounts, c Cost, m ShownCost, places int32) {
	t.Helper()
	want := []decimal.Decimal{c.Compute, c.Memory, c.Bandwidth, c.Requests, c.Storage}
	for j := range want {
		if w, g := want[j].StringFixed(places), decimal.New(m[j], -places).StringFixed(places); w != g {
			t.Fatalf("sheet %d amounts %v resource %d at %d places: shown %s, decimal %s", i, a, j, places, g, w)
		}
	}
}

// TestTaskHourCost: every Fargate size is a whole number of quanta, so pricing a task-hour
// through the usage arithmetic gives exactly vCPU × price + GB × price.
func TestTaskHourCost(t *testing.T) {
	d := func(s string) config.Decimal { return config.Decimal{Decimal: decimal.RequireFromString(s)} }
	sheet := config.DefaultPriceSheet()
	sheet.VCPUHour, sheet.MemoryGBHour = d("0.04048"), d("0.004445")
	p := NewPrices(config.PricingConfig{Sheets: []config.PriceSheet{sheet}})
	for _, s := range fargateSizes {
		want := s.VCPU.Mul(sheet.VCPUHour.Decimal).Add(s.MemoryGB.Mul(sheet.MemoryGBHour.Decimal))
		if got := p.TaskHourCost(time.Time{}, s.VCPU, s.MemoryGB); !got.Equal(want) {
			t.Errorf("%s vCPU %s GB: %s, want %s", s.VCPU, s.MemoryGB, got, want)
		}
	}
}
