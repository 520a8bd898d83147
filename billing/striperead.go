package billing

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	stripe "github.com/stripe/stripe-go/v76"

	"github.com/cygni/usage/store"
)

// The read side of Stripe: meters by event name, hourly meter event summaries, usage record
// summaries, and the existence of customers and subscription items.

// ErrNotInStripe is returned for a customer, subscription item or meter Stripe does not know.
var ErrNotInStripe = errors.New("not found in Stripe")

// ErrStripeNotConfigured is returned by the read side when no Stripe key is configured.
var ErrStripeNotConfigured = errors.New("Stripe is not configured: set billing.stripe.api_key or CYGNI_STRIPE_API_KEY")

// verdict is what Stripe's summaries say about one report.
type verdict int

const (
	verdictAbsent    verdict = iota // Stripe does not hold it: send it
	verdictDelivered                // Stripe holds it: record it as sent
	verdictUnclear                  // Stripe holds part of it, or less than we recorded: an operator looks
)

// meterID returns the id of the Stripe meter of an event name, listed once and then cached.
func (b *Biller) meterID(ctx context.Context, eventName string) (string, error) {
	if b.stripe == nil {
		return "", ErrStripeNotConfigured
	}
	b.meterMu.Lock()
	defer b.meterMu.Unlock()
	if id, ok := b.meterIDs[eventName]; ok {
		return id, nil
	}
	p := &stripe.BillingMeterListParams{}
	p.Context = ctx
	p.Limit = stripe.Int64(100)
	it := b.stripe.meters.List(p)
	for it.Next() {
		m := it.BillingMeter()
		b.meterIDs[m.EventName] = m.ID
	}
	if err := it.Err(); err != nil {
		return "", fmt.Errorf("list Stripe meters: %w", err)
	}
	id, ok := b.meterIDs[eventName]
	if !ok {
		return "", fmt.Errorf("no Stripe meter has event_name %q (billing.meters): %w", eventName, ErrNotInStripe)
	}
	return id, nil
}

// hourlySummaries returns what Stripe aggregated for a customer on the meter of eventName in
// each hour of [from, to) (hour boundaries), by the hour's unix start; hours without usage are
// absent.
func (b *Biller) hourlySummaries(ctx context.Context, eventName, customer string, from, to time.Time) (map[int64]int64, error) {
	id, err := b.meterID(ctx, eventName)
	if err != nil {
		return nil, err
	}
	p := &stripe.BillingMeterEventSummaryListParams{
		ID: stripe.String(id), Customer: stripe.String(customer),
		StartTime: stripe.Int64(from.Unix()), EndTime: stripe.Int64(to.Unix()),
		ValueGroupingWindow: stripe.String("hour"),
	}
	p.Context = ctx
	p.Limit = stripe.Int64(100)
	out := map[int64]int64{}
	it := b.stripe.summaries.List(p)
	for it.Next() {
		s := it.BillingMeterEventSummary()
		v := s.AggregatedValue
		if v != math.Trunc(v) || math.Abs(v) > 1<<53 {
			return nil, fmt.Errorf("Stripe's summary %s of meter %s is %v, not a whole number of units", s.ID, id, v)
		}
		h := time.Unix(s.StartTime, 0).UTC().Truncate(time.Hour).Unix()
		out[h] += int64(v)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read the event summaries of meter %s for %s: %w", id, customer, err)
	}
	return out, nil
}

// usageRecordTotal returns the total usage Stripe holds on a subscription item over the
// summaries whose period overlaps [from, to).
func (b *Biller) usageRecordTotal(ctx context.Context, item string, from, to time.Time) (int64, error) {
	if b.stripe == nil {
		return 0, ErrStripeNotConfigured
	}
	p := &stripe.UsageRecordSummaryListParams{SubscriptionItem: stripe.String(item)}
	p.Context = ctx
	p.Limit = stripe.Int64(100)
	var total int64
	it := b.stripe.usageSummarys.List(p)
	for it.Next() {
		s := it.UsageRecordSummary()
		if s.Period != nil && (s.Period.End != 0 && s.Period.End <= from.Unix() || s.Period.Start >= to.Unix()) {
			continue
		}
		total += s.TotalUsage
	}
	if err := it.Err(); err != nil {
		return 0, fmt.Errorf("read the usage record summaries of %s: %w", item, err)
	}
	return total, nil
}

// verify asks Stripe whether it holds a row (meter events): the hour's summary for the row's
// customer and meter, less what the outbox recorded as sent there, is the row's quantity when
// Stripe holds it and zero when not. It is asked before a resend long after the first attempt,
// when Stripe may have forgotten the identifier. An attempt stored within the last 24 hours is
// still deduplicated by its identifier, and one stored earlier is in the summaries by now.
func (b *Biller) verify(ctx context.Context, r store.BillingReport, customer string) (verdict, string, error) {
	got, err := b.hourlySummaries(ctx, b.opts.Meters[r.Metric].EventName, customer, r.Hour, r.Hour.Add(time.Hour))
	if err != nil {
		return verdictAbsent, "", err
	}
	rows, err := b.opts.Store.ListBillingReports(ctx, store.BillingReportFilter{Metric: r.Metric, State: store.BillingSent, From: r.Hour, To: r.Hour.Add(time.Hour)})
	if err != nil {
		return verdictAbsent, "", err
	}
	var sent int64
	for _, x := range rows {
		if x.StripeRef == customer && x.ID != r.ID {
			sent += x.Quantity
		}
	}
	held := got[r.Hour.Unix()] - sent
	detail := fmt.Sprintf("Stripe's summary of %s for %s at %s is %d; the outbox's other sent rows there add up to %d; this row is %d",
		r.Metric, customer, r.Hour.Format(time.RFC3339), got[r.Hour.Unix()], sent, r.Quantity)
	switch {
	case held <= 0:
		return verdictAbsent, detail, nil
	case held >= r.Quantity:
		return verdictDelivered, "delivered: " + detail, nil
	default:
		return verdictUnclear, "not resent, Stripe holds part of it: " + detail + "; see billing reconcile", nil
	}
}

// checkCustomer asks Stripe whether the customer exists: nil, an error wrapping ErrNotInStripe,
// or why Stripe could not be asked.
func checkCustomer(ctx context.Context, sc *stripeClient, id string) error {
	if sc == nil {
		return ErrStripeNotConfigured
	}
	p := &stripe.CustomerParams{}
	p.Context = ctx
	c, err := sc.customers.Get(id, p)
	if notFound(err) {
		return fmt.Errorf("Stripe customer %s: %w", id, ErrNotInStripe)
	}
	if err != nil {
		return fmt.Errorf("look up Stripe customer %s: %s", id, errorText(err))
	}
	if c.Deleted {
		return fmt.Errorf("Stripe customer %s is deleted: %w", id, ErrNotInStripe)
	}
	return nil
}

// checkSubscriptionItem asks Stripe whether the subscription item exists.
func checkSubscriptionItem(ctx context.Context, sc *stripeClient, id string) error {
	if sc == nil {
		return ErrStripeNotConfigured
	}
	p := &stripe.SubscriptionItemParams{}
	p.Context = ctx
	_, err := sc.subItems.Get(id, p)
	if notFound(err) {
		return fmt.Errorf("Stripe subscription item %s: %w", id, ErrNotInStripe)
	}
	if err != nil {
		return fmt.Errorf("look up Stripe subscription item %s: %s", id, errorText(err))
	}
	return nil
}

func notFound(err error) bool {
	var se *stripe.Error
	return errors.As(err, &se) && (se.HTTPStatusCode == http.StatusNotFound || se.Code == stripe.ErrorCodeResourceMissing)
}
