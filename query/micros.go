package query

import (
	"math"
	"math/big"
	"math/bits"

	"github.com/shopspring/decimal"
)

// RowCost is a cost in micro-USD per resource and in total, each rounded half away from zero
// from the exact Cost: the digits Cost.Compute.StringFixed(6) etc. render, without a decimal.
type RowCost struct{ Compute, Memory, Bandwidth, Requests, Storage, Total int64 }

// Cost prices amounts with sheet i in exact decimals (a Bucket's Sheet).
func (p Prices) Cost(i int, a *Amounts) Cost { return p.cost(i, a) }

// fixedPrice is a unit price m × 10^-k with m a uint64.
type fixedPrice struct {
	m  uint64
	k  int32
	ok bool
}

func toFixedPrice(d decimal.Decimal, maxK int32) fixedPrice {
	if d.Sign() < 0 {
		return fixedPrice{}
	}
	c, e := d.Coefficient(), d.Exponent()
	for e > 0 { // 5e1 → 50
		c.Mul(c, bigTen)
		e--
	}
	if !c.IsUint64() || -e > maxK {
		return fixedPrice{}
	}
	return fixedPrice{m: c.Uint64(), k: -e, ok: true}
}

// fixedSheet is a price sheet in integers, when every price has few enough decimals for the
// integer path of Micros to be exact.
type fixedSheet struct {
	cpu, mem, egress, req, storage fixedPrice
	ok                             bool
}

func newFixedSheet(p Prices, i int) fixedSheet {
	s := p.sheets[i]
	f := fixedSheet{
		// Units of 10^-20 USD: compute and memory are rounded to 20 decimals as in cost;
		// storage (9 + k decimals) and requests (6 + k) are exact at 20; egress (30 + k
		// decimals) is kept as a quotient and a remainder of 2^30.
		cpu: toFixedPrice(s.VCPUHour.Decimal, 11), mem: toFixedPrice(s.MemoryGBHour.Decimal, 11),
		egress: toFixedPrice(s.EgressGB.Decimal, 10), req: toFixedPrice(s.MillionRequests.Decimal, 14),
		storage: toFixedPrice(s.StorageGBHour.Decimal, 11),
	}
	f.ok = f.cpu.ok && f.mem.ok && f.egress.ok && f.req.ok && f.storage.ok
	return f
}

// u128 is an unsigned 128-bit integer.
type u128 struct{ hi, lo uint64 }

func mul64(x u128, y uint64) (u128, bool) {
	hh, hl := bits.Mul64(x.hi, y)
	lh, ll := bits.Mul64(x.lo, y)
	hi, carry := bits.Add64(hl, lh, 0)
	return u128{hi, ll}, hh != 0 || carry != 0
}

func add128(x, y u128) (u128, bool) {
	lo, c := bits.Add64(x.lo, y.lo, 0)
	hi, c2 := bits.Add64(x.hi, y.hi, c)
	return u128{hi, lo}, c2 != 0
}

// divmod64 returns x / y and x % y.
func divmod64(x u128, y uint64) (u128, uint64) {
	qhi, r := bits.Div64(0, x.hi, y)
	qlo, r := bits.Div64(r, x.lo, y)
	return u128{qhi, qlo}, r
}

var pow10u64 = func() (p [20]uint64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// scaled returns a × m × 10^e (e ≤ 38).
func scaled(a int64, m uint64, e int32) (u128, bool) {
	hi, lo := bits.Mul64(uint64(a), m)
	x := u128{hi, lo}
	var over bool
	for e > 0 {
		k := min(e, 19)
		var o bool
		x, o = mul64(x, pow10u64[k])
		over = over || o
		e -= k
	}
	return x, over
}

// divRound returns x / d rounded half up (d < 2^63).
func divRound(x u128, d uint64) (u128, bool) {
	q, r := divmod64(x, d)
	if 2*r >= d {
		return add128(q, u128{0, 1})
	}
	return q, false
}

// toMicros rounds x (units of 10^-20) half up to units of 10^-6.
func toMicros(x u128) (int64, bool) {
	x, over := add128(x, u128{0, 5 * pow10u64[13]})
	q, _ := divmod64(x, pow10u64[14])
	return int64(q.lo), over || q.hi != 0 || q.lo > math.MaxInt64
}

// Resources of fixedCost, in the order of Cost's fields.
const (
	rCompute = iota
	rMemory
	rBandwidth
	rRequests
	rStorage
	numResources
)

// pricedMetric is the metric each resource of fixedCost prices.
var pricedMetric = [numResources]Metric{CPUSeconds, MemoryGBHours, EgressBytes, Requests, StorageGBHours}

// fixedCost is an exact Cost in integers, each resource a sign and a magnitude: compute,
// memory, requests and storage in 10^-20 USD, bandwidth in 10^-20 / 2^30 USD.
type fixedCost struct {
	mag [numResources]u128
	neg [numResources]bool
}

// pow5x30 is 5^30: x / 2^30 × 10^-20 = x × 5^30 × 10^-50.
var pow5x30 = new(big.Int).Exp(big.NewInt(5), big.NewInt(30), nil)

// fixedCost prices amounts with sheet i: the one pricing arithmetic, from which Cost (the API,
// the cost series, budgets and alerts) and Micros (export rows) are both derived.
//
//	compute  = round(vCPU-second quanta × price / (256 × 3600)) at 20 decimals
//	memory   = round(MiB-minutes × price / 61,440) at 20 decimals
//	egress   = bytes × price / 2^30, exact
//	requests = requests × price / 10^6, exact
//	storage  = 10^-9 GB-hour quanta × price / 10^9, exact
//
// rounding half away from zero (a negative correction costs exactly minus its magnitude). ok is
// false where integers cannot hold it exactly: a price with more decimals than newFixedSheet
// takes, an amount beyond 64 bits, a product beyond 128; cost then uses costDecimal, the same
// formula in arbitrary precision.
func (p Prices) fixedCost(i int, a *Amounts) (fc fixedCost, ok bool) {
	if i < 0 || i >= len(p.sheets) || !p.fixed[i].ok {
		return fc, false
	}
	f := p.fixed[i]
	prices := [numResources]fixedPrice{f.cpu, f.mem, f.egress, f.req, f.storage}
	for r, m := range pricedMetric {
		v, fits := a[m].Int64()
		if !fits || v == math.MinInt64 {
			return fixedCost{}, false
		}
		if v == 0 {
			continue
		}
		if v < 0 {
			fc.neg[r], v = true, -v
		}
		pr := prices[r]
		var x u128
		var o1, o2 bool
		switch r {
		case rCompute:
			x, o1 = scaled(v, pr.m, 20-pr.k)
			x, o2 = divRound(x, uint64(PerUnit[CPUSeconds])*3600)
		case rMemory:
			x, o1 = scaled(v, pr.m, 20-pr.k)
			x, o2 = divRound(x, uint64(PerUnit[MemoryGBHours]))
		case rBandwidth:
			x, o1 = scaled(v, pr.m, 20-pr.k)
		case rRequests:
			x, o1 = scaled(v, pr.m, 14-pr.k)
		case rStorage:
			x, o1 = scaled(v, pr.m, 11-pr.k)
		}
		if o1 || o2 {
			return fixedCost{}, false
		}
		fc.mag[r] = x
	}
	return fc, true
}

func (x u128) big() *big.Int {
	b := new(big.Int).SetUint64(x.hi)
	b.Lsh(b, 64)
	return b.Or(b, new(big.Int).SetUint64(x.lo))
}

// decimal returns the exact Cost.
func (fc fixedCost) decimal() Cost {
	var d [numResources]decimal.Decimal
	for r, x := range fc.mag {
		if x == (u128{}) {
			continue
		}
		var v decimal.Decimal
		switch {
		case r == rBandwidth:
			v = decimal.NewFromBigInt(new(big.Int).Mul(x.big(), pow5x30), -50)
		case x.hi == 0 && x.lo <= math.MaxInt64:
			v = decimal.New(int64(x.lo), -20)
		default:
			v = decimal.NewFromBigInt(x.big(), -20)
		}
		if fc.neg[r] {
			v = v.Neg()
		}
		d[r] = v
	}
	return Cost{Compute: d[rCompute], Memory: d[rMemory], Bandwidth: d[rBandwidth], Requests: d[rRequests], Storage: d[rStorage]}
}

// Micros prices amounts with sheet i (fixedCost) and rounds each resource and the total to
// micro-USD exactly as StringFixed(6) rounds the exact Cost of Cost(i, a). ok is false when the
// integer path cannot be exact (negative amounts, prices with many decimals, sums beyond 128
// bits): use Cost then.
func (p Prices) Micros(i int, a *Amounts) (c RowCost, ok bool) {
	fc, ok := p.fixedCost(i, a)
	if !ok {
		return c, false
	}
	for _, n := range fc.neg {
		if n {
			return c, false
		}
	}
	// Bandwidth: x / 2^30 = q + r/2^30; the remainder never changes a rounding to 6 decimals
	// of a sum of whole 10^-20 units plus q.
	bn := fc.mag[rBandwidth]
	bq := u128{bn.hi >> 30, bn.hi<<34 | bn.lo>>30}
	cq, mem, req, st := fc.mag[rCompute], fc.mag[rMemory], fc.mag[rRequests], fc.mag[rStorage]
	var over [4]bool
	tot, o7 := add128(cq, mem)
	tot, o8 := add128(tot, bq)
	tot, o9 := add128(tot, req)
	tot, o10 := add128(tot, st)
	over[0], over[1], over[2], over[3] = o7, o8, o9, o10
	for _, o := range over {
		if o {
			return RowCost{}, false
		}
	}
	var ov [6]bool
	c.Compute, ov[0] = toMicros(cq)
	c.Memory, ov[1] = toMicros(mem)
	c.Bandwidth, ov[2] = toMicros(bq)
	c.Requests, ov[3] = toMicros(req)
	c.Storage, ov[4] = toMicros(st)
	c.Total, ov[5] = toMicros(tot)
	for _, o := range ov {
		if o {
			return RowCost{}, false
		}
	}
	return c, true
}
