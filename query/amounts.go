package query

import (
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

// exponent is the fixed-point exponent of each metric: an Amounts value v means v × 10^exponent
// units. Nine decimals keep vCPU-seconds (multiples of 1/256 from Container Insights) exact and
// GB-hours exact to a nano-GB-hour per series and hour; bytes and requests are whole numbers.
var exponent = [NumMetrics]int32{-9, -9, -9, -9, -6, 0, 0, -9}

var scale = func() (s [NumMetrics]float64) {
	for m, e := range exponent {
		s[m] = math.Pow10(int(-e))
	}
	return s
}()

// HourlySuffix names the hourly downsampled series: cygni_cpu_seconds:sum1h holds one sample per
// series and hour, stamped at the hour's end, whose value is the hour's amount (plus correction
// samples inside the same hour when late data changed it).
const HourlySuffix = ":sum1h"

// HourlyName returns the name of the hourly series derived from a usage series.
func HourlyName(raw string) string { return raw + HourlySuffix }

var metricByName = func() map[string]Metric {
	m := make(map[string]Metric, 2*NumMetrics)
	for i, n := range seriesOf {
		m[n] = Metric(i)
		m[HourlyName(n)] = Metric(i)
	}
	return m
}()

// Amounts are exact fixed-point usage quantities, one per metric (see Decimal).
//
// An hour's amount of one series is rounded once to the metric's fixed point (nine decimals for
// vCPU-seconds and GB-hours, whole bytes and requests); everything above that — buckets,
// projects, teams — is an exact integer sum, so totals equal the sum of their parts.
type Amounts [NumMetrics]int64

// ErrOverflow reports a sum beyond the fixed-point range (about 9.2 billion vCPU-seconds).
var ErrOverflow = fmt.Errorf("usage sum overflows the fixed-point range")

// Add adds b to a.
func (a *Amounts) Add(b *Amounts) error {
	for i := range a {
		s, overflow := addInt64(a[i], b[i])
		if overflow {
			return ErrOverflow
		}
		a[i] = s
	}
	return nil
}

func addInt64(x, y int64) (int64, bool) {
	s, _ := bits.Add64(uint64(x), uint64(y), 0)
	r := int64(s)
	return r, (x >= 0 && y >= 0 && r < 0) || (x < 0 && y < 0 && r >= 0)
}

// fixed rounds a float quantity of metric m to its fixed point.
func fixed(m Metric, v float64) (int64, error) {
	f := math.Round(v * scale[m])
	if math.IsNaN(f) || f >= math.MaxInt64 || f <= math.MinInt64 {
		return 0, fmt.Errorf("%s amount %g: %w", seriesOf[m], v, ErrOverflow)
	}
	return int64(f), nil
}

// Decimal returns the amount of metric m in its unit, exactly.
func (a *Amounts) Decimal(m Metric) decimal.Decimal { return decimal.New(a[m], exponent[m]) }

// IsZero reports whether every amount is zero.
func (a *Amounts) IsZero() bool { return *a == Amounts{} }

// Neumaier summation: compensated float sums of the samples inside one hour.
type ksum struct{ s, c float64 }

func (k *ksum) add(v float64) {
	t := k.s + v
	if math.Abs(k.s) >= math.Abs(v) {
		k.c += (k.s - t) + v
	} else {
		k.c += (v - t) + k.s
	}
	k.s = t
}

func (k *ksum) value() float64 { return k.s + k.c }
