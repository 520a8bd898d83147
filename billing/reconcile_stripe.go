package billing

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cygni/usage/store"
)

// DiffStripe is an hour (meter events) or a month (usage records) where what Stripe itself holds
// differs from what the outbox recorded as sent; Quantity is Stripe − sent, in units.
const DiffStripe = "stripe_differs"

// stripeKey names one customer's meter in one hour.
type stripeKey struct {
	customer, metric string
	hour             int64
}

// stripeHour is what the outbox sent to one customer's meter in one hour.
type stripeHour struct {
	sent      int64
	byProject map[string]int64
	unsent    []store.BillingReport // attempted and not recorded as sent: Stripe may hold them
}

// stripeSide is what reconciliation learnt from Stripe: per project and metric what Stripe
// holds for it, and the differences found.
type stripeSide struct {
	held  map[[2]string]int64
	diffs []ReconcileDiff
}

// reconcileStripe reads Stripe's own records for the month [from, upTo): hourly meter event
// summaries per customer and meter, or usage record summaries per subscription item, and
// compares them with the rows the outbox sent there. Projects are those of rows and usage;
// keep filters what is shown.
func (b *Biller) reconcileStripe(ctx context.Context, from, upTo time.Time, rows []store.BillingReport, projects map[string]bool, keep func(projectID, teamID string) bool, teams map[string]string) (*stripeSide, error) {
	if b.stripe == nil {
		return nil, ErrStripeNotConfigured
	}
	if !from.Before(upTo) {
		return &stripeSide{held: map[[2]string]int64{}}, nil
	}
	if b.opts.Mode == ModeUsageRecords {
		return b.reconcileUsageRecords(ctx, from, upTo, rows, projects, keep, teams)
	}
	side := &stripeSide{held: map[[2]string]int64{}}
	hours := map[stripeKey]*stripeHour{}
	get := func(k stripeKey) *stripeHour {
		h := hours[k]
		if h == nil {
			h = &stripeHour{byProject: map[string]int64{}}
			hours[k] = h
		}
		return h
	}
	// The customers to ask: every one the outbox sent to, and the current one of each project.
	customerProjects := map[string]map[string]bool{}
	addCP := func(c, p string) {
		if customerProjects[c] == nil {
			customerProjects[c] = map[string]bool{}
		}
		customerProjects[c][p] = true
	}
	for _, r := range rows {
		if r.StripeRef == "" || r.Quantity == 0 {
			continue
		}
		addCP(r.StripeRef, r.ProjectID)
		h := get(stripeKey{r.StripeRef, r.Metric, r.Hour.Unix()})
		switch {
		case r.State == store.BillingSent:
			h.sent += r.Quantity
			h.byProject[r.ProjectID] += r.Quantity
		case r.Attempts > 0:
			h.unsent = append(h.unsent, r)
		}
	}
	for p := range projects {
		c, err := b.opts.Store.ProjectStripeCustomer(ctx, p)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if c != "" {
			addCP(c, p)
		}
	}
	shown := func(ps map[string]bool) bool {
		for p := range ps {
			if keep == nil || keep(p, teams[p]) {
				return true
			}
		}
		return false
	}
	customers := make([]string, 0, len(customerProjects))
	for c := range customerProjects {
		if shown(customerProjects[c]) {
			customers = append(customers, c)
		}
	}
	sort.Strings(customers)
	byCM := map[[2]string][]stripeKey{}
	for k := range hours {
		byCM[[2]string{k.customer, k.metric}] = append(byCM[[2]string{k.customer, k.metric}], k)
	}
	for _, c := range customers {
		for _, metric := range b.names {
			keys := byCM[[2]string{c, metric}]
			got, err := b.hourlySummaries(ctx, b.opts.Meters[metric].EventName, c, from, upTo)
			if errors.Is(err, ErrNotInStripe) && len(keys) == 0 {
				continue // no meter for a metric nothing was sent for
			}
			if err != nil {
				return nil, err
			}
			for hour := range got {
				k := stripeKey{c, metric, hour}
				if _, ok := hours[k]; !ok {
					get(k)
					keys = append(keys, k)
				}
			}
			for _, k := range keys {
				b.compareHour(side, k, hours[k], got[k.hour], customerProjects[c], keep, teams)
			}
		}
	}
	return side, nil
}

// compareHour adds one customer's meter hour to the side: Stripe's value to the project's total
// (the one project that sent there, or each project's sent share when several did, the rest
// shown at the customer), and a difference when Stripe and the outbox disagree.
func (b *Biller) compareHour(side *stripeSide, k stripeKey, h *stripeHour, stripeVal int64, customerProjects map[string]bool, keep func(string, string) bool, teams map[string]string) {
	project := ""
	switch {
	case len(h.byProject) == 1:
		for p := range h.byProject {
			project = p
		}
	case len(h.byProject) == 0 && len(customerProjects) == 1:
		for p := range customerProjects {
			project = p
		}
	}
	if project != "" {
		if keep == nil || keep(project, teams[project]) {
			side.held[[2]string{project, k.metric}] += stripeVal
		}
	} else {
		for p, q := range h.byProject {
			if keep == nil || keep(p, teams[p]) {
				side.held[[2]string{p, k.metric}] += q
			}
		}
	}
	d := stripeVal - h.sent
	if d == 0 {
		return
	}
	if project != "" && keep != nil && !keep(project, teams[project]) {
		return
	}
	hour := time.Unix(k.hour, 0).UTC()
	var cause string
	var unsent int64
	var ids []string
	for _, r := range h.unsent {
		unsent += r.Quantity
		ids = append(ids, r.Identifier+" ("+r.State+")")
	}
	switch {
	case d > 0 && len(h.unsent) > 0 && d == unsent:
		cause = fmt.Sprintf("Stripe holds %s, attempted and not yet recorded as sent (its answer was lost); the next attempt records it as sent", strings.Join(ids, ", "))
	case d > 0:
		cause = fmt.Sprintf("Stripe holds %d units more than the outbox sent to %s: sent twice, or by another sender", d, k.customer)
	case stripeVal == 0:
		cause = fmt.Sprintf("Stripe holds nothing for %s here although the outbox sent %d units: refused after it was accepted (see the meter's error reports in Stripe), or not aggregated yet (summaries lag by minutes)", k.customer, h.sent)
	default:
		cause = fmt.Sprintf("Stripe holds %d units less than the outbox sent to %s: an event refused after it was accepted (see the meter's error reports in Stripe), or not aggregated yet", -d, k.customer)
	}
	if project == "" {
		ps := make([]string, 0, len(customerProjects))
		for p := range customerProjects {
			ps = append(ps, p)
		}
		sort.Strings(ps)
		cause += fmt.Sprintf(" (customer %s is shared by %s; Stripe's summary cannot be split by project)", k.customer, strings.Join(ps, ", "))
	}
	side.diffs = append(side.diffs, ReconcileDiff{
		ProjectID: project, Customer: k.customer, Metric: k.metric, Hour: hour, Kind: DiffStripe,
		Sent: h.sent, Stripe: &stripeVal, Quantity: d, Detail: cause,
	})
}

// reconcileUsageRecords compares, per project and metric, the whole units the outbox set on the
// subscription item with the total of Stripe's usage record summaries overlapping the month.
// Stripe's summaries follow its billing periods, not calendar months: a period that straddles
// the month boundary shows as a difference explained so.
func (b *Biller) reconcileUsageRecords(ctx context.Context, from, upTo time.Time, rows []store.BillingReport, projects map[string]bool, keep func(projectID, teamID string) bool, teams map[string]string) (*stripeSide, error) {
	side := &stripeSide{held: map[[2]string]int64{}}
	sent := map[[2]string]int64{}
	for _, r := range rows {
		projects[r.ProjectID] = true
		if r.State == store.BillingSent {
			sent[[2]string{r.ProjectID, r.Metric}] += r.Quantity
		}
	}
	ps := make([]string, 0, len(projects))
	for p := range projects {
		if keep == nil || keep(p, teams[p]) {
			ps = append(ps, p)
		}
	}
	sort.Strings(ps)
	for _, p := range ps {
		for _, metric := range b.names {
			item, err := b.opts.Store.BillingSubscriptionItem(ctx, p, metric)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			total, err := b.usageRecordTotal(ctx, item, from, upTo)
			if err != nil {
				return nil, err
			}
			k := [2]string{p, metric}
			side.held[k] = total
			if d := total - sent[k]; d != 0 {
				side.diffs = append(side.diffs, ReconcileDiff{
					ProjectID: p, Customer: item, Metric: metric, Hour: from, Kind: DiffStripe, Sent: sent[k], Stripe: &total, Quantity: d,
					Detail: fmt.Sprintf("Stripe's usage record summaries of %s add up to %d, the outbox set %d this month (Stripe sums by its billing periods, which may straddle the month)", item, total, sent[k]),
				})
			}
		}
	}
	return side, nil
}
