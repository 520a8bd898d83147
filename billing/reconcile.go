package billing

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/cygni/usage/store"
)

// Reconciliation difference kinds.
const (
	DiffNotClosed = "not_closed" // usage of an hour not closed yet (settle delay, or billing not running)
	DiffLateData  = "late_data"  // the TSDB now says something else than the outbox recorded
	DiffUnsent    = "unsent"     // recorded but not (yet) sent: pending, sending or held
	DiffFailed    = "failed"     // Stripe refused it permanently
	DiffExpired   = "expired"    // older than Stripe's window when it could have been sent
	// DiffNotBillable is usage of an hour older than Stripe's window that the outbox does not
	// hold: Stripe accepts nothing for it any more, and no correction follows.
	DiffNotBillable = "not_billable"
)

// Reconciliation compares, for one month, the exact usage in the TSDB now with what the outbox
// recorded and what was reported to Stripe. Quantities are in each meter's units.
type Reconciliation struct {
	Month       string     `json:"month"`
	From        time.Time  `json:"from"`
	To          time.Time  `json:"to"`
	ClosedUntil *time.Time `json:"closedUntil"`
	// StripeChecked says whether Stripe's own records were read (totals' stripe, and the
	// stripe_differs differences); StripeError says why not.
	StripeChecked bool             `json:"stripeChecked"`
	StripeError   string           `json:"stripeError,omitempty"`
	Totals        []ReconcileTotal `json:"totals"`
	Differences   []ReconcileDiff  `json:"differences"`
}

// ReconcileTotal is one project's metric over the month.
type ReconcileTotal struct {
	ProjectID string `json:"projectId"`
	Metric    string `json:"metric"`
	Unit      string `json:"unit"`     // e.g. "0.001 vCPU-hour"
	Usage     string `json:"usage"`    // exact usage in the TSDB now, in units (decimal)
	Recorded  string `json:"recorded"` // exact usage closed into the outbox, in units (decimal)
	Reported  int64  `json:"reported"` // whole units sent to Stripe
	Unsent    int64  `json:"unsent"`   // whole units recorded but not sent (pending, held)
	Lost      int64  `json:"lost"`     // whole units failed or expired
	// Stripe is what Stripe itself holds for the project's metric this month (hourly meter event
	// summaries, or usage record summaries), in units; nil when Stripe was not read.
	Stripe *int64 `json:"stripe"`
	// Difference is Usage − Reported. Within a unit it is the remainder carried across the
	// month boundary; more means late data, unsent or lost reports (see differences).
	Difference string `json:"difference"`
}

// ReconcileDiff is one hour where usage, outbox and Stripe disagree.
type ReconcileDiff struct {
	ProjectID string    `json:"projectId"`          // "" for a Stripe customer shared by several projects
	Customer  string    `json:"customer,omitempty"` // stripe_differs: the Stripe customer (or subscription item)
	Metric    string    `json:"metric"`
	Hour      time.Time `json:"hour"`
	Kind      string    `json:"kind"`
	Usage     string    `json:"usage"`            // in units
	Recorded  string    `json:"recorded"`         // in units
	Quantity  int64     `json:"quantity"`         // whole units concerned (unsent, failed, expired; Stripe − sent)
	Sent      int64     `json:"sent,omitempty"`   // stripe_differs: units the outbox sent there
	Stripe    *int64    `json:"stripe,omitempty"` // stripe_differs: units Stripe holds there
	Detail    string    `json:"detail"`
}

// unitsOf converts stored units to a meter's units for display.
func (b *Biller) unitsOf(metric string, a decimal.Decimal) string {
	u, ok := b.units[metric]
	if !ok || a.IsZero() {
		return "0"
	}
	return a.DivRound(u, 6).String()
}

// Reconcile compares the month starting at month (UTC) for the projects accepted by keep (nil:
// every project).
func (b *Biller) Reconcile(ctx context.Context, month time.Time, keep func(projectID, teamID string) bool) (*Reconciliation, error) {
	from := time.Date(month.Year(), month.Month(), 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 1, 0)
	now := b.opts.Now().UTC()
	upTo := now.Truncate(time.Hour)
	if to.Before(upTo) {
		upTo = to
	}
	am, err := b.hourlyAmounts(ctx, from, upTo)
	if err != nil {
		return nil, err
	}
	rows, err := b.opts.Store.ListBillingReports(ctx, store.BillingReportFilter{From: from, To: to})
	if err != nil {
		return nil, err
	}
	wm, err := b.opts.Store.BillingWatermark(ctx)
	if err != nil {
		return nil, err
	}
	teams := map[string]string{}
	type hourState struct {
		recorded                            decimal.Decimal
		sent, unsent, failed, expired       int64
		unsentRows, failedRows, expiredRows []string
	}
	hs := map[hourKey]*hourState{}
	get := func(k hourKey) *hourState {
		h := hs[k]
		if h == nil {
			h = &hourState{}
			hs[k] = h
		}
		return h
	}
	for _, r := range rows {
		teams[r.ProjectID] = r.TeamID
		h := get(hourKey{project: r.ProjectID, metric: r.Metric, hour: r.Hour.Unix()})
		h.recorded = h.recorded.Add(r.Amount)
		note := fmt.Sprintf("%s r%d: %s", r.Identifier, r.Revision, r.State)
		if r.LastError != "" {
			note += " (" + r.LastError + ")"
		}
		switch r.State {
		case store.BillingSent:
			h.sent += r.Quantity
		case store.BillingPending, store.BillingSending, store.BillingHeld:
			h.unsent += r.Quantity
			h.unsentRows = append(h.unsentRows, note)
		case store.BillingFailed:
			h.failed += r.Quantity
			h.failedRows = append(h.failedRows, note)
		case store.BillingExpired:
			h.expired += r.Quantity
			h.expiredRows = append(h.expiredRows, note)
		}
	}
	for k := range am {
		get(k)
	}
	rec := &Reconciliation{Month: from.Format("2006-01"), From: from, To: to}
	if !wm.IsZero() {
		rec.ClosedUntil = &wm
	}
	type tk struct{ project, metric string }
	type tot struct {
		usage, recorded               decimal.Decimal
		reported, unsent, failed, exp int64
	}
	totals := map[tk]*tot{}
	for k, h := range hs {
		if _, billed := b.units[k.metric]; !billed {
			continue
		}
		if keep != nil && !keep(k.project, teams[k.project]) {
			continue
		}
		usage := am[k]
		t := totals[tk{k.project, k.metric}]
		if t == nil {
			t = &tot{}
			totals[tk{k.project, k.metric}] = t
		}
		t.usage = t.usage.Add(usage)
		t.recorded = t.recorded.Add(h.recorded)
		t.reported += h.sent
		t.unsent += h.unsent
		t.failed += h.failed
		t.exp += h.expired
		hour := time.Unix(k.hour, 0).UTC()
		diff := func(kind string, q int64, detail string) {
			rec.Differences = append(rec.Differences, ReconcileDiff{
				ProjectID: k.project, Metric: k.metric, Hour: hour, Kind: kind,
				Usage: b.unitsOf(k.metric, usage), Recorded: b.unitsOf(k.metric, h.recorded), Quantity: q, Detail: detail,
			})
		}
		if !usage.Equal(h.recorded) {
			switch {
			case hour.Before(now.Add(-b.opts.Window)):
				diff(DiffNotBillable, 0, fmt.Sprintf("not billable (older than %d days): Stripe accepts no usage for this hour; no correction follows", int(b.opts.Window/(24*time.Hour))))
			case wm.IsZero() || !hour.Before(wm):
				diff(DiffNotClosed, 0, "the hour is not closed yet")
			case hour.Add(time.Hour).Before(now.Add(-b.opts.RecheckWindow)):
				diff(DiffLateData, 0, fmt.Sprintf("usage changed after the hour was closed and outside the recheck window (%s): no correction is sent automatically", b.opts.RecheckWindow))
			default:
				diff(DiffLateData, 0, "usage changed after the hour was closed; a correction follows within the recheck window")
			}
		}
		if len(h.unsentRows) > 0 {
			diff(DiffUnsent, h.unsent, fmt.Sprint(h.unsentRows))
		}
		if len(h.failedRows) > 0 {
			diff(DiffFailed, h.failed, fmt.Sprint(h.failedRows))
		}
		if len(h.expiredRows) > 0 {
			diff(DiffExpired, h.expired, fmt.Sprint(h.expiredRows))
		}
	}
	projects := map[string]bool{}
	for k := range totals {
		projects[k.project] = true
	}
	side, serr := b.reconcileStripe(ctx, from, upTo, rows, projects, keep, teams)
	switch {
	case serr == nil:
		rec.StripeChecked = true
		rec.Differences = append(rec.Differences, side.diffs...)
		for k := range side.held {
			if totals[tk{k[0], k[1]}] == nil {
				totals[tk{k[0], k[1]}] = &tot{}
			}
		}
	case ctx.Err() != nil:
		return nil, ctx.Err()
	default:
		rec.StripeError = "Stripe's records were not read: " + serr.Error()
	}
	for k, t := range totals {
		u := b.units[k.metric]
		usageUnits := t.usage.Div(u)
		rec.Totals = append(rec.Totals, ReconcileTotal{
			ProjectID: k.project, Metric: k.metric,
			Unit:     b.opts.Meters[k.metric].Unit.String() + " " + Metrics[k.metric].unit,
			Usage:    b.unitsOf(k.metric, t.usage),
			Recorded: b.unitsOf(k.metric, t.recorded),
			Reported: t.reported, Unsent: t.unsent, Lost: t.failed + t.exp,
			Difference: usageUnits.Sub(decimal.NewFromInt(t.reported)).Round(6).String(),
		})
		if side != nil {
			v := side.held[[2]string{k.project, k.metric}]
			rec.Totals[len(rec.Totals)-1].Stripe = &v
		}
	}
	sort.Slice(rec.Totals, func(i, j int) bool {
		a, c := rec.Totals[i], rec.Totals[j]
		return a.ProjectID < c.ProjectID || a.ProjectID == c.ProjectID && a.Metric < c.Metric
	})
	sort.Slice(rec.Differences, func(i, j int) bool {
		a, c := rec.Differences[i], rec.Differences[j]
		if !a.Hour.Equal(c.Hour) {
			return a.Hour.Before(c.Hour)
		}
		if a.ProjectID != c.ProjectID {
			return a.ProjectID < c.ProjectID
		}
		if a.Metric != c.Metric {
			return a.Metric < c.Metric
		}
		return a.Kind < c.Kind
	})
	if rec.Totals == nil {
		rec.Totals = []ReconcileTotal{}
	}
	if rec.Differences == nil {
		rec.Differences = []ReconcileDiff{}
	}
	return rec, nil
}
