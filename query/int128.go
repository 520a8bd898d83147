package query

import (
	"math"
	"math/big"
	"math/bits"
)

// Int128 is a signed 128-bit integer in two's complement: the sum type of usage quanta. Its
// range (±1.7e38) holds any sum the query layer accepts (see Amounts); additions are checked
// nonetheless, and an overflow is an error, never a wrapped value.
type Int128 struct {
	hi int64
	lo uint64
}

// Int128Of returns v as an Int128.
func Int128Of(v int64) Int128 { return Int128{hi: v >> 63, lo: uint64(v)} }

// Add returns x + y and whether the sum overflowed.
func (x Int128) Add(y Int128) (Int128, bool) {
	lo, c := bits.Add64(x.lo, y.lo, 0)
	hi, _ := bits.Add64(uint64(x.hi), uint64(y.hi), c)
	r := Int128{hi: int64(hi), lo: lo}
	// Overflow iff both operands have the same sign and the result's sign differs.
	return r, (x.hi >= 0) == (y.hi >= 0) && (r.hi >= 0) != (x.hi >= 0)
}

// Add64 returns x + v and whether the sum overflowed.
func (x Int128) Add64(v int64) (Int128, bool) { return x.Add(Int128Of(v)) }

// Neg returns −x (Int128 minimum negates to itself; quanta never get there).
func (x Int128) Neg() Int128 {
	lo, b := bits.Sub64(0, x.lo, 0)
	hi, _ := bits.Sub64(0, uint64(x.hi), b)
	return Int128{hi: int64(hi), lo: lo}
}

// Sign returns -1, 0 or +1.
func (x Int128) Sign() int {
	switch {
	case x.hi < 0:
		return -1
	case x.hi == 0 && x.lo == 0:
		return 0
	}
	return 1
}

// IsZero reports whether x is zero.
func (x Int128) IsZero() bool { return x.hi == 0 && x.lo == 0 }

// Int64 returns x as an int64 and whether it fits.
func (x Int128) Int64() (int64, bool) {
	v := int64(x.lo)
	return v, (x.hi == 0 && x.lo <= math.MaxInt64) || (x.hi == -1 && x.lo > math.MaxInt64)
}

// Big returns x as a big.Int.
func (x Int128) Big() *big.Int {
	if v, ok := x.Int64(); ok {
		return big.NewInt(v)
	}
	neg := x.hi < 0
	if neg {
		x = x.Neg()
	}
	b := new(big.Int).SetUint64(uint64(x.hi))
	b.Lsh(b, 64)
	b.Or(b, new(big.Int).SetUint64(x.lo))
	if neg {
		b.Neg(b)
	}
	return b
}

// String renders x in decimal.
func (x Int128) String() string { return x.Big().String() }
