package query

import (
	"math/big"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/cygni/usage/config"
	"github.com/cygni/usage/series"
)

// Resource is a priced line of the bill.
type Resource string

// Resources, the values of the resource label of cygni_project_cost_usd.
const (
	Compute    Resource = "compute"   // reserved vCPU-hours
	Memory     Resource = "memory"    // reserved memory GB-hours
	Bandwidth  Resource = "bandwidth" // egress GB
	ReqRes     Resource = "requests"  // millions of requests
	StorageRes Resource = "storage"   // storage GB-hours
)

// Resources lists the priced resources in a stable order.
var Resources = []Resource{Compute, Memory, Bandwidth, ReqRes, StorageRes}

// Cost is an exact, unrounded amount in USD per resource. Render it with Round or StringFixed
// only at the edge.
type Cost struct {
	Compute, Memory, Bandwidth, Requests, Storage decimal.Decimal
}

// Total is the sum of the resources.
func (c Cost) Total() decimal.Decimal {
	return c.Compute.Add(c.Memory).Add(c.Bandwidth).Add(c.Requests).Add(c.Storage)
}

// Of returns the cost of one resource.
func (c Cost) Of(r Resource) decimal.Decimal {
	switch r {
	case Compute:
		return c.Compute
	case Memory:
		return c.Memory
	case Bandwidth:
		return c.Bandwidth
	case ReqRes:
		return c.Requests
	default:
		return c.Storage
	}
}

// Add returns c + d.
func (c Cost) Add(d Cost) Cost {
	return Cost{
		Compute: c.Compute.Add(d.Compute), Memory: c.Memory.Add(d.Memory), Bandwidth: c.Bandwidth.Add(d.Bandwidth),
		Requests: c.Requests.Add(d.Requests), Storage: c.Storage.Add(d.Storage),
	}
}

// Prices is the price list: sheets sorted by the instant they take effect.
type Prices struct {
	sheets []config.PriceSheet
	from   []int64 // ms; the first is math.MinInt64
	fixed  []fixedSheet
}

// NewPrices builds the price list from the configuration (already validated). No sheets means
// the defaults.
func NewPrices(c config.PricingConfig) Prices {
	sheets := c.Sheets
	if len(sheets) == 0 {
		sheets = []config.PriceSheet{config.DefaultPriceSheet()}
	}
	from := make([]int64, len(sheets))
	for i, s := range sheets {
		from[i] = s.EffectiveFrom.UnixMilli()
		if i == 0 {
			from[i] = minTime
		}
	}
	return pricesAt(sheets, from)
}

// pricesAt builds a price list of sheets in force from the instants from (ms, increasing, the
// first minTime).
func pricesAt(sheets []config.PriceSheet, from []int64) Prices {
	p := Prices{sheets: sheets, from: from}
	for i := range sheets {
		p.fixed = append(p.fixed, newFixedSheet(p, i))
	}
	return p
}

// Sheet returns the index of the sheet that prices the hour starting at t (ms).
func (p Prices) sheet(t int64) int {
	return sort.Search(len(p.from), func(i int) bool { return p.from[i] > t }) - 1
}

// CostAt prices amounts with the sheet in force at t (an hour's start), exactly.
func (p Prices) CostAt(t time.Time, a *Amounts) Cost { return p.cost(p.sheet(t.UnixMilli()), a) }

// TaskHourCost is the price of one task-hour of a task size (vCPU, GB of memory) with the sheet
// in force at t: an hour of that size as amounts, priced by cost like any usage. A size finer
// than the quanta (1/921,600 vCPU, 1/61,440 GB) is rounded to them; Fargate's sizes never are.
func (p Prices) TaskHourCost(t time.Time, vcpu, memoryGB decimal.Decimal) decimal.Decimal {
	var a Amounts
	a[CPUSeconds] = Int128Of(vcpu.Mul(cpuQuantaPerHour).Round(0).IntPart())
	a[MemoryGBHours] = Int128Of(memoryGB.Mul(memQuantaPerUnit).Round(0).IntPart())
	return p.CostAt(t, &a).Total()
}

// SheetAt returns the prices in force at t.
func (p Prices) SheetAt(t time.Time) config.PriceSheet { return p.sheets[p.sheet(t.UnixMilli())] }

// OrDefault returns p, or the default price sheet when p is the zero Prices.
func (p Prices) OrDefault() Prices {
	if len(p.sheets) == 0 {
		return NewPrices(defaultPricing())
	}
	return p
}

var (
	bytesPerGB = decimal.NewFromInt(series.GiB)
	million    = decimal.NewFromInt(1_000_000)
	bigTen     = big.NewInt(10)
)

// costPrecision is the number of decimals kept by the inexact steps: vCPU-seconds / 3600 and
// MiB-minutes / 61,440 (whose quotients by 3 have no finite decimal expansion). Every other
// step is exact.
const costPrecision = 20

var (
	cpuQuantaPerHour = decimal.NewFromInt(PerUnit[CPUSeconds] * 3600)
	memQuantaPerUnit = decimal.NewFromInt(PerUnit[MemoryGBHours])
	stQuantaPerUnit  = decimal.NewFromInt(PerUnit[StorageGBHours])
)

// quanta returns the amount of metric m as an integer decimal.
func (a *Amounts) quanta(m Metric) decimal.Decimal {
	if q, ok := a[m].Int64(); ok {
		return decimal.NewFromInt(q)
	}
	return decimal.NewFromBigInt(a[m].Big(), 0)
}

// cost prices amounts with sheet i: from the integer pricing (fixedCost, the one arithmetic
// every price goes through), or, only where that cannot be exact (a price with more decimals
// than it holds, an amount beyond 64 bits), from costDecimal, the same formula in arbitrary
// precision (TestPricingPathsAgree holds the two equal where both apply).
func (p Prices) cost(i int, a *Amounts) Cost {
	if fc, ok := p.fixedCost(i, a); ok {
		return fc.decimal()
	}
	return p.costDecimal(i, a)
}

// costDecimal is the pricing formula of fixedCost in decimals: compute and memory rounded half
// away from zero to costPrecision decimals, everything else exact.
func (p Prices) costDecimal(i int, a *Amounts) Cost {
	s := p.sheets[i]
	var c Cost
	if !a[CPUSeconds].IsZero() {
		c.Compute = a.quanta(CPUSeconds).Mul(s.VCPUHour.Decimal).DivRound(cpuQuantaPerHour, costPrecision)
	}
	if !a[MemoryGBHours].IsZero() {
		c.Memory = a.quanta(MemoryGBHours).Mul(s.MemoryGBHour.Decimal).DivRound(memQuantaPerUnit, costPrecision)
	}
	if !a[EgressBytes].IsZero() {
		// Exact: 1/2^30 has 30 decimals.
		c.Bandwidth = a.quanta(EgressBytes).Mul(s.EgressGB.Decimal).DivRound(bytesPerGB, 40)
	}
	if !a[Requests].IsZero() {
		c.Requests = a.quanta(Requests).Mul(s.MillionRequests.Decimal).DivRound(million, 40)
	}
	if !a[StorageGBHours].IsZero() {
		// Exact: 10^-9 GB-hour quanta.
		c.Storage = a.quanta(StorageGBHours).Mul(s.StorageGBHour.Decimal).DivRound(stQuantaPerUnit, 40)
	}
	return c
}

func defaultPricing() config.PricingConfig {
	return config.PricingConfig{Sheets: []config.PriceSheet{config.DefaultPriceSheet()}}
}
