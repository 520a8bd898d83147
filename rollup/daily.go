package rollup

import (
	"context"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/cygni/usage/query"
)

// The daily tier: <series>:sum1d, one point per series and UTC day, stamped at the day's end,
// whose value is the sum of the day's hourly points in exact quanta (corrections inside the same
// day as for the hourly tier). It is derived from the hourly tier, for the whole UTC days inside
// the derived span only, every time the hours of a day are derived (again), so that a day whole
// inside the span always has a point equal to its hours. Queries read it for the UTC days that
// lie whole inside one of their buckets (query.Options.DailyRange).

// wholeDays returns the whole UTC days inside [from, through) (empty when there are none).
func wholeDays(from, through int64) (int64, int64) {
	lo, hi := ceilTo(from, dayMs), floorTo(through, dayMs)
	if hi <= lo {
		return 0, 0
	}
	return lo, hi
}

// DailyRange returns the span of whole UTC days whose daily series are complete:
// query.Options.DailyRange. It is empty until the daily tier covers the derived span (a data
// directory from before the daily tier is caught up by the first run).
func (d *Deriver) DailyRange() (from, through time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.through == 0 || !d.days {
		return time.Time{}, time.Time{}
	}
	lo, hi := wholeDays(d.from, d.through)
	if hi == 0 {
		return time.Time{}, time.Time{}
	}
	return time.UnixMilli(lo).UTC(), time.UnixMilli(hi).UTC()
}

// deriveDays recomputes the daily points of the UTC days that overlap [lo, hi) and lie whole
// inside the hourly span [spanFrom, spanThrough) from their hourly points, and writes what
// changed. It is idempotent.
func (d *Deriver) deriveDays(ctx context.Context, lo, hi, spanFrom, spanThrough int64) error {
	sLo, sHi := wholeDays(spanFrom, spanThrough)
	dLo, dHi := max(floorTo(lo, dayMs), sLo), min(ceilTo(hi, dayMs), sHi)
	if dHi <= dLo {
		return nil
	}
	n := int((dHi - dLo) / dayMs)
	hourlyNames, dailyNames := "", ""
	for m := range query.NumMetrics {
		if m > 0 {
			hourlyNames += "|"
			dailyNames += "|"
		}
		hourlyNames += query.HourlyName(query.SeriesOf(m))
		dailyNames += query.DailyName(query.SeriesOf(m))
	}
	daily := func(l labels.Labels) labels.Labels {
		m, _ := query.MetricOf(l.Get(labels.MetricName))
		b := labels.NewBuilder(l)
		b.Set(labels.MetricName, query.DailyName(query.SeriesOf(m)))
		return b.Labels()
	}
	hours := map[string]*hourSums{}
	if err := d.scan(ctx, dLo, dHi, hourlyNames, n, hours, daily, hourMs, dayMs); err != nil {
		return err
	}
	have := map[string]*hourSums{}
	if err := d.scan(ctx, dLo, dHi, dailyNames, n, have, nil, dayMs, dayMs); err != nil {
		return err
	}
	w := d.newWriter(ctx)
	for key, r := range hours {
		for i := range n {
			if r.has[i] {
				w.reconcileQuanta(r.lbls, key, have, i, dLo, dayMs, r.metric, r.quanta[i])
			}
		}
	}
	return w.commit()
}
