package query

import (
	"math"
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

// Micros prices amounts with sheet i in integers and rounds each resource and the total to
// micro-USD exactly as StringFixed(6) rounds the exact Cost of Cost(i, a). ok is false when the
// integer path cannot be exact (negative amounts, prices with many decimals, sums beyond 128
// bits): use Cost then.
func (p Prices) Micros(i int, a *Amounts) (c RowCost, ok bool) {
	if i < 0 || i >= len(p.sheets) {
		return c, false
	}
	f := p.fixed[i]
	if !f.ok {
		return c, false
	}
	var q [NumMetrics]int64
	for _, m := range [...]Metric{CPUSeconds, MemoryGBHours, EgressBytes, Requests, StorageGBHours} {
		v, fits := a[m].Int64()
		if !fits || v < 0 {
			return c, false
		}
		q[m] = v
	}
	var over [12]bool
	// Units of 10^-20 USD. Compute: round(quanta × m × 10^(20−k) / (256 × 3600)), memory:
	// round(MiB-minutes × m × 10^(20−k) / 61440), both half up at 20 decimals as Cost rounds.
	cn, o0 := scaled(q[CPUSeconds], f.cpu.m, 20-f.cpu.k)
	cq, o1 := divRound(cn, uint64(PerUnit[CPUSeconds])*3600)
	mn, o2 := scaled(q[MemoryGBHours], f.mem.m, 20-f.mem.k)
	mem, o3 := divRound(mn, uint64(PerUnit[MemoryGBHours]))
	req, o4 := scaled(q[Requests], f.req.m, 14-f.req.k)
	st, o5 := scaled(q[StorageGBHours], f.storage.m, 11-f.storage.k)
	// Bandwidth: bytes × m × 10^(20−k) / 2^30 = q + r/2^30; the remainder never changes a
	// rounding to 6 decimals of a sum of whole 10^-20 units plus q.
	bn, o6 := scaled(q[EgressBytes], f.egress.m, 20-f.egress.k)
	bq := u128{bn.hi >> 30, bn.hi<<34 | bn.lo>>30}
	over[0], over[1], over[2], over[3], over[4], over[5], over[6] = o0, o1, o2, o3, o4, o5, o6
	tot, o7 := add128(cq, mem)
	tot, o8 := add128(tot, bq)
	tot, o9 := add128(tot, req)
	tot, o10 := add128(tot, st)
	over[7], over[8], over[9], over[10] = o7, o8, o9, o10
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
