package query

import (
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/shopspring/decimal"

	"github.com/cygni/usage/series"
)

// Metric is one usage quantity the query layer sums.
type Metric int

// Metrics, in the order of series.Usage plus storage.
const (
	CPUSeconds        Metric = iota // vCPU-seconds reserved (billed)
	CPUUsedSeconds                  // vCPU-seconds used
	MemoryGBHours                   // GB-hours reserved (billed)
	MemoryUsedGBHours               // GB-hours used
	TaskMinutes                     // running tasks summed over minutes (cygni_running_tasks)
	EgressBytes                     // bytes sent out
	Requests                        // HTTP(S) requests
	StorageGBHours                  // storage GB-hours ("coming soon": nothing writes it yet)
	NumMetrics
)

// seriesOf maps a metric to its stored series.
var seriesOf = [NumMetrics]string{
	series.CPUSeconds, series.CPUUsedSeconds, series.MemoryGBHours, series.MemoryUsedGBHours,
	series.RunningTasks, series.EgressBytes, series.Requests, series.StorageGBHours,
}

// MetricOf returns the metric of a usage series or of its hourly series.
func MetricOf(name string) (Metric, bool) {
	m, ok := metricByName[name]
	return m, ok
}

// SeriesOf returns the stored series of metric m.
func SeriesOf(m Metric) string { return seriesOf[m] }

// PerUnit is the number of quanta in one unit of each metric: amounts are integer counts of
// what CloudWatch reported, recovered exactly from every stored float sample.
//
//   - vCPU-seconds: 1/256 vCPU-second. The collector stores CPU-unit-minutes × 60 / 1024, so a
//     CPU-unit-minute is 15 quanta and every stored value is a binary fraction that × 256 is an
//     integer, exactly.
//   - GB-hours of memory: MiB-minutes (1 GB-hour = 1024 × 60 MiB-minutes). The collector stores
//     MiB-minutes / 1024 / 60, which no float holds exactly; round(v × 61440) recovers the
//     integer exactly for |MiB-minutes| < 2^50 per sample (relative error of v below 2^-52, so
//     the product is within 2^-2 of the integer), also for correction samples (differences of
//     such values).
//   - task-minutes: 10^-6 task-minute (RunningTaskCount averages are whole numbers in Container
//     Insights; a fractional average is rounded to 10^-6 per sample).
//   - bytes and requests: whole numbers.
//   - storage GB-hours: 10^-9 GB-hour.
//
// A sample that is not within 10^-3 quantum of an integer (only the used-CPU and task metrics
// of a non-Container-Insights source can produce one) is rounded to the nearest quantum.
var PerUnit = [NumMetrics]int64{256, 256, 61440, 61440, 1_000_000, 1, 1, 1_000_000_000}

var perUnitF = func() (f [NumMetrics]float64) {
	for m, u := range PerUnit {
		f[m] = float64(u)
	}
	return f
}()

// maxQuanta bounds one stored sample's quanta (a 1-minute sample, a correction or an hourly
// point): below it the float pins the integer down exactly (see PerUnit). For the binary
// quanta (1/256 vCPU-second, bytes, requests) a float holds every integer below 2^53; for the
// others Quantize's rounding needs 2^50. CloudWatch cannot report that much: 2^50 MiB-minutes
// is 2^40 GiB of memory reserved in one minute, 2^53 bytes 8 PiB sent by one deployment in
// an hour.
var maxQuanta = [NumMetrics]float64{1 << 53, 1 << 53, 1 << 50, 1 << 50, 1 << 50, 1 << 53, 1 << 53, 1 << 50}

// Recoverable reports whether q quanta of metric m survive a float sample exactly (Dequantize,
// then Quantize): the bound of one stored sample or hourly point.
func Recoverable(m Metric, q int64) bool { return math.Abs(float64(q)) < maxQuanta[m] }

// ErrSampleRange reports a stored sample whose quanta cannot be recovered exactly.
var ErrSampleRange = errors.New("usage sample outside the exactly recoverable range (2^50 quanta, 2^53 for vCPU-seconds, bytes and requests)")

// ErrOverflow reports a sum beyond 128 bits. The accepted ranges cannot get there: at most
// 2^50 quanta per sample, and a request over MaxRange reads fewer than 2^40 samples per series,
// so 2^37 series would be needed; it is checked all the same.
var ErrOverflow = errors.New("usage sum overflows 128 bits")

// Quantize returns the integer quanta of a stored sample value v of metric m (see PerUnit).
func Quantize(m Metric, v float64) (int64, error) {
	r := math.Round(v * perUnitF[m])
	if !(math.Abs(r) < maxQuanta[m]) { // also NaN and ±Inf
		return 0, fmt.Errorf("%s sample %g: %w", seriesOf[m], v, ErrSampleRange)
	}
	return int64(r), nil
}

// Dequantize returns the float sample value that stores q quanta of metric m, computed the way
// the collector computes it from CloudWatch's figures, so that Quantize(m, Dequantize(m, q))
// == q for |q| below the metric's bound (maxQuanta).
func Dequantize(m Metric, q int64) float64 {
	switch m {
	case MemoryGBHours, MemoryUsedGBHours:
		return float64(q) / 1024 / 60
	}
	return float64(q) / perUnitF[m]
}

// Amounts are exact usage quantities, one per metric, as integer quanta (PerUnit) in 128 bits.
// Every sum — hours, buckets, projects, teams — is an exact integer sum: totals equal the sum
// of their parts in any order, and nothing is rounded before it is rendered.
type Amounts [NumMetrics]Int128

// Add adds b to a. On overflow a is unchanged and the error names the metric.
func (a *Amounts) Add(b *Amounts) error {
	var s Amounts
	for i := range a {
		v, over := a[i].Add(b[i])
		if over {
			return fmt.Errorf("%s: %w", seriesOf[i], ErrOverflow)
		}
		s[i] = v
	}
	*a = s
	return nil
}

// AddQuanta adds q quanta of metric m.
func (a *Amounts) AddQuanta(m Metric, q int64) error {
	v, over := a[m].Add64(q)
	if over {
		return fmt.Errorf("%s: %w", seriesOf[m], ErrOverflow)
	}
	a[m] = v
	return nil
}

// Quanta returns the amount of metric m in quanta.
func (a *Amounts) Quanta(m Metric) Int128 { return a[m] }

// Quo returns the amount of metric m divided by div (> 0), rounded half away from zero to
// places decimals, computed exactly from the quanta (e.g. Quo(CPUSeconds, 3600, 6) is
// vCPU-hours to six places).
func (a *Amounts) Quo(m Metric, div int64, places int32) decimal.Decimal {
	if a[m].IsZero() {
		return decimal.Zero
	}
	if q, ok := a[m].Int64(); ok {
		if v, ok := scaledRound(q, PerUnit[m], div, places); ok {
			return decimal.New(v, -places)
		}
	}
	return decimal.NewFromBigInt(a[m].Big(), 0).DivRound(decimal.NewFromInt(PerUnit[m]).Mul(decimal.NewFromInt(div)), places)
}

// Round returns the amount of metric m in its unit, rounded half away from zero to places
// decimals, exactly.
func (a *Amounts) Round(m Metric, places int32) decimal.Decimal { return a.Quo(m, 1, places) }

// Decimal returns the amount of metric m in its unit: exact for every metric whose quantum is a
// finite decimal (all but memory), memory GB-hours rounded to 20 decimals.
func (a *Amounts) Decimal(m Metric) decimal.Decimal { return a.Round(m, 20) }

// Fixed returns the amount of metric m × 10^places rounded half away from zero, when it fits an
// int64: the integer digits that Round(m, places) renders.
func (a *Amounts) Fixed(m Metric, places int32) (int64, bool) { return a.QuoFixed(m, 1, places) }

// QuoFixed returns the amount of metric m divided by div (> 0), × 10^places, rounded half away
// from zero, when it fits an int64: the integer digits that Quo(m, div, places) renders.
func (a *Amounts) QuoFixed(m Metric, div int64, places int32) (int64, bool) {
	q, ok := a[m].Int64()
	if !ok {
		return 0, false
	}
	return scaledRound(q, PerUnit[m], div, places)
}

// IsZero reports whether every amount is zero.
func (a *Amounts) IsZero() bool { return *a == Amounts{} }

// scaledRound returns round(q × 10^places / (unit × div)) half away from zero, and false when
// an intermediate does not fit the integer path.
func scaledRound(q, unit, div int64, places int32) (int64, bool) {
	if places < 0 || places >= int32(len(pow10u64)) || unit <= 0 || div <= 0 {
		return 0, false
	}
	dhi, d := bits.Mul64(uint64(unit), uint64(div))
	if dhi != 0 || d > math.MaxInt64 {
		return 0, false
	}
	neg := q < 0
	mag := uint64(q)
	if neg {
		mag = -mag
	}
	hi, lo := bits.Mul64(mag, pow10u64[places])
	if hi >= d {
		return 0, false
	}
	quo, rem := bits.Div64(hi, lo, d)
	if rem >= d-rem { // 2·rem ≥ d without overflow
		quo++
	}
	if quo > math.MaxInt64 {
		return 0, false
	}
	if neg {
		return -int64(quo), true
	}
	return int64(quo), true
}

// HourlySuffix names the hourly downsampled series: cygni_cpu_seconds:sum1h holds one sample per
// series and hour, stamped at the hour's end, whose value is the hour's amount (plus correction
// samples inside the same hour when late data changed it), each sample a whole number of quanta.
const HourlySuffix = ":sum1h"

// HourlyName returns the name of the hourly series derived from a usage series.
func HourlyName(raw string) string { return raw + HourlySuffix }

// DailySuffix names the daily tier: cygni_cpu_seconds:sum1d holds one sample per series and UTC
// day, stamped at the day's end (midnight UTC), whose value is the sum of the day's hourly points
// (plus correction samples inside the same day), each sample a whole number of quanta.
const DailySuffix = ":sum1d"

// DailyName returns the name of the daily series derived from a usage series.
func DailyName(raw string) string { return raw + DailySuffix }

var metricByName = func() map[string]Metric {
	m := make(map[string]Metric, 3*NumMetrics)
	for i, n := range seriesOf {
		m[n] = Metric(i)
		m[HourlyName(n)] = Metric(i)
		m[DailyName(n)] = Metric(i)
	}
	return m
}()
