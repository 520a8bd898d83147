package query

import (
	"math"
	"math/big"
	"math/bits"

	"github.com/shopspring/decimal"
)

// ShownCost is a cost as shown: each resource (in the order of Cost's fields: compute,
// memory, bandwidth, requests, storage) in units of 10^-places USD, rounded once, half away from
// zero, from the exact Cost: the digits Cost.Compute.StringFixed(places) etc. render, without a
// decimal.
type ShownCost [numResources]int64

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
// integer path of Shown to be exact.
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

// roundPow10 rounds x half up to units of 10^k (1 ≤ k ≤ 20) and reports whether the result
// does not fit an int64.
func roundPow10(x u128, k int32) (int64, bool) {
	half, _ := mul64(u128{0, pow10u64[k-1]}, 5)
	x, over := add128(x, half)
	for k > 0 {
		d := min(k, 19)
		x, _ = divmod64(x, pow10u64[d]) // the remainder is what the rounding drops
		k -= d
	}
	return int64(x.lo), over || x.hi != 0 || x.lo > math.MaxInt64
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
// the cost series, budgets and alerts) and Shown (every figure the API shows) are both derived.
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

// Shown prices amounts with sheet i (fixedCost) and rounds each resource half away from zero
// to places decimals (0 ≤ places ≤ 19), exactly as Cost(i, a).Compute.Round(places) etc. round
// the exact Cost, in integers. ok is false when the integer path cannot be exact (prices with
// many decimals, amounts beyond 64 bits, a shown figure beyond an int64): use Cost then.
func (p Prices) Shown(i int, a *Amounts, places int32) (c ShownCost, ok bool) {
	if places < 0 || places > 19 {
		return c, false
	}
	fc, ok := p.fixedCost(i, a)
	if !ok {
		return c, false
	}
	for r, x := range fc.mag {
		if x == (u128{}) {
			continue
		}
		if r == rBandwidth {
			// x / 2^30 = q + f (0 ≤ f < 1) in units of 10^-20: rounding q + f to 10^-places is
			// rounding q, since the half of a unit 10^(20-places) is a whole number of them.
			x = u128{x.hi >> 30, x.hi<<34 | x.lo>>30}
		}
		v, over := roundPow10(x, 20-places)
		if over {
			return ShownCost{}, false
		}
		if fc.neg[r] {
			v = -v
		}
		c[r] = v
	}
	return c, true
}
