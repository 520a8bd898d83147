package api

import (
	"time"

	"github.com/shopspring/decimal"

	"github.com/cygni/usage/query"
	"github.com/cygni/usage/series"
)

// How displayed money adds up (the rule of every usage endpoint, as on an invoice):
//
//   - Each part — one resource's cost or one quantity of one project in one bucket — is
//     computed exactly and rounded once, half away from zero, to the precision it is shown with.
//   - Every total shown is the sum of the shown parts it covers: a project's totalCost is the
//     sum of its shown resource costs, a team's cost per resource the sum of its projects' shown
//     costs, a bucket of all projects the sum of the projects' shown buckets, and the totals of
//     a range the sum of its shown buckets. So a reader who adds the figures gets the total.
//   - Each field has one precision everywhere (the places* constants): money in USD with 2
//     decimals where it is a bill (summary, budget) and 6 where it is an hour's or a bucket's
//     fraction of a cent (analytics, export); quantities as below, trailing zeros kept.
//
// The average number of running tasks (containerInstances) is not a sum: a total of it is
// rounded once from the exact average over its own interval.
const (
	placesBill       = 2 // USD on a bill: summary, budget
	placesHourly     = 6 // USD per hour or bucket: analytics, export
	placesCPUSeconds = 6
	placesCPUHours   = 6
	placesGBHours    = 6 // memoryGbHours, storageGbHours
	placesEgressGB   = 9
	placesRequests   = 0
	placesTasks      = 4
	placesPercent    = 1
)

var secondsPerHour = decimal.NewFromInt(3600)

// figures are the figures of one row as shown, the i-th with places[i] decimals: integers
// (v[i] × 10^-places[i]) while every one of them fits an int64, exact decimals (d) once one
// does not (amounts beyond 64 bits). Either way each figure is the same digits.
type figures struct {
	v [7]int64
	d *[7]decimal.Decimal // nil: v holds the figures
}

// decimals switches f to exact decimals.
func (f *figures) decimals(places *[7]int32) {
	if f.d != nil {
		return
	}
	f.d = new([7]decimal.Decimal)
	for i, v := range f.v {
		if v != 0 {
			f.d[i] = decimal.New(v, -places[i])
		}
	}
}

// setFixed sets figure i to v × 10^-places[i].
func (f *figures) setFixed(i int, v int64, places *[7]int32) {
	if f.d == nil {
		f.v[i] = v
		return
	}
	f.d[i] = decimal.New(v, -places[i])
}

// setDecimal sets figure i to d, already rounded to places[i].
func (f *figures) setDecimal(i int, d decimal.Decimal, places *[7]int32) {
	if f.d == nil {
		if c := d.Shift(places[i]); c.IsInteger() {
			if b := c.BigInt(); b.IsInt64() {
				f.v[i] = b.Int64()
				return
			}
		}
		f.decimals(places)
	}
	f.d[i] = d
}

// add returns f + o (no rounding: both are rounded already).
func (f figures) add(o figures, places *[7]int32) figures {
	if f.d == nil && o.d == nil {
		var r figures
		over := false
		for i := range r.v {
			var ov bool
			r.v[i], ov = addInt64(f.v[i], o.v[i])
			over = over || ov
		}
		if !over {
			return r
		}
	}
	f.decimals(places)
	o.decimals(places)
	r := figures{d: new([7]decimal.Decimal)}
	for i := range r.d {
		r.d[i] = f.d[i].Add(o.d[i])
	}
	return r
}

// addInt64 returns a + b and whether it overflowed.
func addInt64(a, b int64) (int64, bool) {
	sum := a + b
	return sum, (a > 0 && b > 0 && sum < 0) || (a < 0 && b < 0 && sum >= 0)
}

// decimal returns figure i.
func (f *figures) decimal(i int, places *[7]int32) decimal.Decimal {
	if f.d != nil {
		return f.d[i]
	}
	return decimal.New(f.v[i], -places[i])
}

// str renders figure i with exactly its places decimals (decimal.StringFixed's digits).
func (f *figures) str(i int, places *[7]int32) string {
	if f.d != nil {
		return f.d[i].StringFixed(places[i])
	}
	return fixedString(f.v[i], places[i])
}

// fixedString renders v × 10^-places with exactly places (≤ 9) decimals.
func fixedString(v int64, places int32) string {
	var buf [32]byte
	mag := uint64(v)
	if v < 0 {
		mag = -mag
	}
	return string(appendRounded(buf[:0], v < 0, mag, int(places)))
}

// placesOf[p] gives every figure p decimals (a cost's five resources); money is shown with at
// most placesHourly.
var placesOf = func() (t [placesHourly + 1][7]int32) {
	for p := range t {
		for i := range t[p] {
			t[p][i] = int32(p)
		}
	}
	return t
}()

// shownCost is a cost breakdown as shown: each resource (in query.Cost's order: compute,
// memory, bandwidth, requests, storage) rounded once to places.
type shownCost struct {
	places int32
	f      figures
}

const (
	cCompute = iota
	cMemory
	cBandwidth
	cRequests
	cStorage
	numCosts
)

func (s *shownCost) pl() *[7]int32 { return &placesOf[s.places] }

// showCost shows an exact cost (a bucket several price sheets price, or no integer path).
func showCost(c query.Cost, places int32) shownCost {
	s := shownCost{places: places}
	for i, d := range [numCosts]decimal.Decimal{c.Compute, c.Memory, c.Bandwidth, c.Requests, c.Storage} {
		if !d.IsZero() {
			s.f.setDecimal(i, d.Round(places), s.pl())
		}
	}
	return s
}

// showBucketCost shows the cost of a bucket of a Rollup or a RollupUsage whose project prices
// are prices: in integers (Prices.Shown) where one sheet prices the bucket, else from its exact
// Cost.
func showBucketCost(prices query.Prices, b *query.Bucket, places int32) shownCost {
	if b.Sheet < 0 {
		return showCost(b.Cost, places)
	}
	if v, ok := prices.Shown(b.Sheet, &b.Usage, places); ok {
		s := shownCost{places: places}
		copy(s.f.v[:], v[:])
		return s
	}
	return showCost(prices.Cost(b.Sheet, &b.Usage), places)
}

// add sums shown parts (no rounding: they are rounded already). A zero shownCost adds as
// nothing, whatever its places.
func (s shownCost) add(o shownCost) shownCost {
	if s.places != o.places {
		switch {
		case o.f == (figures{}):
			return s
		case s.f == (figures{}):
			return o
		}
		// Different precisions: exact decimals at the finer one.
		r := shownCost{places: max(s.places, o.places)}
		for i := range numCosts {
			r.f.setDecimal(i, s.f.decimal(i, s.pl()).Add(o.f.decimal(i, o.pl())), r.pl())
		}
		return r
	}
	return shownCost{places: s.places, f: s.f.add(o.f, s.pl())}
}

// rounded rounds each part once more, half away from zero, to places (fewer than s has).
func (s shownCost) rounded(places int32) shownCost {
	r := shownCost{places: places}
	for i := range numCosts {
		if d := s.f.decimal(i, s.pl()); !d.IsZero() {
			r.f.setDecimal(i, d.Round(places), r.pl())
		}
	}
	return r
}

// total is the sum of the shown parts.
func (s shownCost) total() decimal.Decimal {
	t := s.totalFigure()
	return t.decimal(0, s.pl())
}

func (s shownCost) totalFigure() figures {
	var t figures
	if s.f.d == nil { // integers while the sum fits
		var sum int64
		over := false
		for _, v := range s.f.v[:numCosts] {
			var o bool
			sum, o = addInt64(sum, v)
			over = over || o
		}
		if !over {
			t.v[0] = sum
			return t
		}
	}
	var sum decimal.Decimal
	for i := range numCosts {
		sum = sum.Add(s.f.decimal(i, s.pl()))
	}
	t.decimals(s.pl())
	t.d[0] = sum
	return t
}

// totalString renders the total with the parts' places.
func (s shownCost) totalString() string {
	t := s.totalFigure()
	return t.str(0, s.pl())
}

// appendTotal appends the total with the parts' places.
func (s shownCost) appendTotal(b []byte) []byte {
	t := s.totalFigure()
	if t.d != nil {
		return append(b, t.d[0].StringFixed(s.places)...)
	}
	return appendFixed(b, t.v[0], int(s.places))
}

// part renders resource i.
func (s shownCost) part(i int) string { return s.f.str(i, s.pl()) }

func (s shownCost) json() costJSON {
	return costJSON{Compute: s.part(cCompute), Memory: s.part(cMemory), Bandwidth: s.part(cBandwidth),
		Requests: s.part(cRequests), Storage: s.part(cStorage), Total: s.totalString()}
}

// shownMetrics are usage quantities as shown: each rounded once to its field's precision.
type shownMetrics struct{ f figures }

const (
	mCPUSeconds = iota
	mCPUHours
	mMemory
	mTasks
	mEgress
	mRequests
	mStorage
)

var metricPlaces = [7]int32{placesCPUSeconds, placesCPUHours, placesGBHours, placesTasks, placesEgressGB, placesRequests, placesGBHours}

func showMetrics(a *query.Amounts, start, end, now time.Time) shownMetrics {
	// Each quantity rounded once from the exact quanta: in integers where they fit an int64
	// (Amounts.QuoFixed), exact decimals otherwise (Amounts.Quo).
	var s shownMetrics
	for _, f := range [...]struct {
		i   int
		m   query.Metric
		div int64
	}{
		{mCPUSeconds, query.CPUSeconds, 1}, {mCPUHours, query.CPUSeconds, 3600}, {mMemory, query.MemoryGBHours, 1},
		{mEgress, query.EgressBytes, series.GiB}, {mRequests, query.Requests, 1}, {mStorage, query.StorageGBHours, 1},
	} {
		if a[f.m].IsZero() {
			continue
		}
		if v, ok := a.QuoFixed(f.m, f.div, metricPlaces[f.i]); ok {
			s.f.setFixed(f.i, v, &metricPlaces)
		} else {
			s.f.setDecimal(f.i, a.Quo(f.m, f.div, metricPlaces[f.i]), &metricPlaces)
		}
	}
	s.setTasks(a, start, end, now)
	return s
}

// setTasks sets the average number of running tasks over [start, end) (query.AverageTasks).
func (s *shownMetrics) setTasks(a *query.Amounts, start, end, now time.Time) {
	mins := query.TaskSpanMinutes(start, end, now)
	if mins <= 0 || a[query.TaskMinutes].IsZero() {
		s.f.setFixed(mTasks, 0, &metricPlaces)
		return
	}
	if v, ok := a.QuoFixed(query.TaskMinutes, mins, placesTasks); ok {
		s.f.setFixed(mTasks, v, &metricPlaces)
		return
	}
	s.f.setDecimal(mTasks, query.AverageTasks(a, start, end, now).Round(placesTasks), &metricPlaces)
}

// add sums the shown quantities of parts over the same interval (projects of one bucket):
// the average task count of a sum of projects is the sum of their averages.
func (s shownMetrics) add(o shownMetrics) shownMetrics {
	return shownMetrics{f: s.f.add(o.f, &metricPlaces)}
}

// str renders quantity i.
func (s *shownMetrics) str(i int) string { return s.f.str(i, &metricPlaces) }

func (s shownMetrics) json() metricsJSON {
	return metricsJSON{
		CPUSeconds: number(s.str(mCPUSeconds)), CPUHours: number(s.str(mCPUHours)),
		MemoryGBHours: number(s.str(mMemory)), ContainerInstances: number(s.str(mTasks)),
		EgressGB: number(s.str(mEgress)), Requests: number(s.str(mRequests)),
		StorageGBHours: number(s.str(mStorage)),
	}
}
