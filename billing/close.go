package billing

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/cygni/usage/query"
	"github.com/cygni/usage/store"
)

// closeChunk is how many hours one transaction closes.
const closeChunk = 24 * time.Hour

// hourKey names one project's metric in one hour.
type hourKey struct {
	project string
	metric  string
	hour    int64 // unix seconds of the hour's start
}

// amounts are exact usage amounts in stored units.
type amounts map[hourKey]decimal.Decimal

// HourlyUsage is the query layer's one read of exact hourly amounts
// (query.Engine.HourlyAmounts): billing reports what the API shows and the alerts use.
type HourlyUsage interface {
	HourlyAmounts(ctx context.Context, projects []string, from, to time.Time, fn query.HourlyFunc) error
}

// hourlyAmounts returns the exact usage of every project and billed metric for each hour in
// [from, to) (both on hour boundaries), in the series' stored units, from the query layer's
// HourlyAmounts (the periods starting in the hour, i.e. the samples stamped in (h, h+1h]).
// Series without a project label are not billed. Amounts are exact decimals except memory
// (MiB-minutes / 61,440 GB-hours), which is rounded to 20 decimals; see billable.
func (b *Biller) hourlyAmounts(ctx context.Context, from, to time.Time) (amounts, error) {
	out := amounts{}
	if !from.Before(to) {
		return out, nil
	}
	metrics := make([]query.Metric, len(b.names))
	for i, name := range b.names {
		m, ok := query.MetricOf(Metrics[name].series)
		if !ok {
			return nil, fmt.Errorf("billed metric %s: unknown series %s", name, Metrics[name].series)
		}
		metrics[i] = m
	}
	err := b.opts.Usage.HourlyAmounts(ctx, nil, from, to, func(project string, hour time.Time, a *query.Amounts) error {
		for i, name := range b.names {
			if q := a.Quanta(metrics[i]); !q.IsZero() {
				out[hourKey{project: project, metric: name, hour: hour.Unix()}] = a.Decimal(metrics[i])
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read hourly usage: %w", err)
	}
	return out, nil
}

// billablePlaces is the precision billable rounds a carried amount to before dividing by the
// unit. A memory hour is MiB-minutes / 61,440 rounded to 20 decimals, so a carry of n hours is
// within n × 5e-21 of the exact total T. T is a multiple of 1/61,440 GB-hour: either exactly on
// a unit boundary (a multiple of 0.001, or of any unit with at most 4 decimals) or at least
// 1/(61,440 × 10^4) ≈ 1.6e-9 away from one. Rounded to 12 decimals (for fewer than 10^8 hours)
// the carry is therefore exactly on the boundary in the first case and on T's side of it in the
// second: floor(carry / unit) = floor(T / unit) to the unit. Every other metric is an exact
// decimal with at most 8 decimals, which the rounding leaves unchanged.
const billablePlaces = 12

// billable returns floor(exact amount / u).
func billable(amount, u decimal.Decimal) int64 {
	return floorDiv(amount.Round(billablePlaces), u).IntPart()
}

// entry is one row to write: an hour's amount (revision 0) or a correction's difference.
type entry struct {
	key      hourKey
	revision int
	amount   decimal.Decimal
}

// Identifier is the deterministic identifier (and idempotency key) of a row.
func Identifier(project, metric string, hour time.Time, revision int) string {
	return fmt.Sprintf("cygni-%s-%s-%s-r%d", project, metric, hour.UTC().Format("2006010215"), revision)
}

// floorDiv returns floor(a / u) for u > 0, exactly.
func floorDiv(a, u decimal.Decimal) decimal.Decimal {
	q, r := a.QuoRem(u, 0)
	if r.IsNegative() {
		q = q.Sub(decimal.NewFromInt(1))
	}
	return q
}

// plan turns entries (sorted) into rows, advancing the carries: each row reports
// floor(carried amount / unit) − quantity reported so far, never below zero.
func (b *Biller) plan(now time.Time, entries []entry, carries map[[2]string]*store.BillingCarry) ([]store.BillingReport, []store.BillingCarry) {
	rows := make([]store.BillingReport, 0, len(entries))
	changed := map[[2]string]bool{}
	for _, e := range entries {
		ck := [2]string{e.key.project, e.key.metric}
		c := carries[ck]
		if c == nil {
			c = &store.BillingCarry{ProjectID: e.key.project, Metric: e.key.metric}
			carries[ck] = c
		}
		c.Amount = c.Amount.Add(e.amount)
		q := billable(c.Amount, b.units[e.key.metric]) - c.Quantity
		if q < 0 {
			q = 0 // over-reported after a downward correction: later hours absorb it
		}
		c.Quantity += q
		changed[ck] = true
		state := store.BillingPending
		if q == 0 {
			state = store.BillingCarried
		}
		hour := time.Unix(e.key.hour, 0).UTC()
		rows = append(rows, store.BillingReport{
			ProjectID: e.key.project, Metric: e.key.metric, Hour: hour, Revision: e.revision,
			Amount: e.amount, Quantity: q, Identifier: Identifier(e.key.project, e.key.metric, hour, e.revision), State: state,
			NextAttemptAt: now,
		})
	}
	keys := make([][2]string, 0, len(changed))
	for k := range changed {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i][0] < keys[j][0] || keys[i][0] == keys[j][0] && keys[i][1] < keys[j][1]
	})
	cs := make([]store.BillingCarry, 0, len(keys))
	for _, k := range keys {
		cs = append(cs, *carries[k])
	}
	return rows, cs
}

func (b *Biller) loadCarries(ctx context.Context) (map[[2]string]*store.BillingCarry, error) {
	list, err := b.opts.Store.BillingCarries(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[[2]string]*store.BillingCarry, len(list))
	for i := range list {
		m[[2]string{list[i].ProjectID, list[i].Metric}] = &list[i]
	}
	return m, nil
}

func sortEntries(es []entry) {
	sort.Slice(es, func(i, j int) bool {
		a, c := es[i].key, es[j].key
		if a.hour != c.hour {
			return a.hour < c.hour
		}
		if a.project != c.project {
			return a.project < c.project
		}
		if a.metric != c.metric {
			return a.metric < c.metric
		}
		return es[i].revision < es[j].revision
	})
}

// closeHours closes every hour that ended at least SettleDelay before now (and before
// CollectedUntil) and is not closed yet, a day per transaction.
func (b *Biller) closeHours(ctx context.Context, now time.Time) error {
	wm, err := b.opts.Store.BillingWatermark(ctx)
	if err != nil {
		return err
	}
	end := now.Add(-b.opts.SettleDelay).Truncate(time.Hour)
	if b.opts.CollectedUntil != nil {
		until, ok := b.opts.CollectedUntil()
		if !ok {
			return nil
		}
		if c := until.Truncate(time.Hour); c.Before(end) {
			end = c
		}
	}
	if wm.IsZero() {
		wm = now.Add(-b.opts.Backfill).Truncate(time.Hour)
	}
	for wm.Before(end) {
		chunkEnd := wm.Add(closeChunk)
		if chunkEnd.After(end) {
			chunkEnd = end
		}
		am, err := b.hourlyAmounts(ctx, wm, chunkEnd)
		if err != nil {
			return err
		}
		entries := make([]entry, 0, len(am))
		for k, a := range am {
			if !a.IsZero() {
				entries = append(entries, entry{key: k, amount: a})
			}
		}
		sortEntries(entries)
		carries, err := b.loadCarries(ctx)
		if err != nil {
			return err
		}
		rows, cs := b.plan(now, entries, carries)
		if err := b.opts.Store.AppendBillingReports(ctx, rows, cs, chunkEnd); err != nil {
			return fmt.Errorf("close hours %s to %s: %w", wm.Format(time.RFC3339), chunkEnd.Format(time.RFC3339), err)
		}
		b.logger.Debug("hours closed", "from", wm, "to", chunkEnd, "rows", len(rows))
		wm = chunkEnd
	}
	return nil
}

// recordedHours sums the outbox rows per project, metric and hour.
type recorded struct {
	amount      decimal.Decimal
	maxRevision int
}

func (b *Biller) recorded(ctx context.Context, from, to time.Time) (map[hourKey]recorded, []store.BillingReport, error) {
	rows, err := b.opts.Store.ListBillingReports(ctx, store.BillingReportFilter{From: from, To: to})
	if err != nil {
		return nil, nil, err
	}
	m := map[hourKey]recorded{}
	for _, r := range rows {
		k := hourKey{project: r.ProjectID, metric: r.Metric, hour: r.Hour.Unix()}
		rec := m[k]
		rec.amount = rec.amount.Add(r.Amount)
		rec.maxRevision = max(rec.maxRevision, r.Revision)
		m[k] = rec
	}
	return m, rows, nil
}

// recheck recomputes the closed hours of the last RecheckWindow (never beyond Stripe's
// window) and writes a correction row for each hour whose exact amount changed.
func (b *Biller) recheck(ctx context.Context, now time.Time) error {
	wm, err := b.opts.Store.BillingWatermark(ctx)
	if err != nil || wm.IsZero() {
		return err
	}
	from := now.Add(-min(b.opts.RecheckWindow, b.opts.Window)).Truncate(time.Hour).Add(time.Hour)
	if !from.Before(wm) {
		return nil
	}
	am, err := b.hourlyAmounts(ctx, from, wm)
	if err != nil {
		return err
	}
	rec, _, err := b.recorded(ctx, from, wm)
	if err != nil {
		return err
	}
	var entries []entry
	for k, a := range am {
		r, ok := rec[k]
		if d := a.Sub(r.amount); !d.IsZero() {
			rev := 0
			if ok {
				rev = r.maxRevision + 1
			}
			entries = append(entries, entry{key: k, revision: rev, amount: d})
		}
	}
	for k, r := range rec {
		if _, ok := am[k]; !ok && !r.amount.IsZero() {
			if _, known := b.units[k.metric]; known {
				entries = append(entries, entry{key: k, revision: r.maxRevision + 1, amount: r.amount.Neg()})
			}
		}
	}
	if len(entries) == 0 {
		return nil
	}
	sortEntries(entries)
	carries, err := b.loadCarries(ctx)
	if err != nil {
		return err
	}
	rows, cs := b.plan(now, entries, carries)
	if err := b.opts.Store.AppendBillingReports(ctx, rows, cs, time.Time{}); err != nil {
		return fmt.Errorf("write corrections: %w", err)
	}
	b.corrections.Add(len(rows))
	b.logger.Info("late data corrected", "rows", len(rows), "from", from, "to", wm)
	return nil
}
