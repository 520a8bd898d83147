package billing

import (
	"context"
	"fmt"
	"strconv"

	stripe "github.com/stripe/stripe-go/v76"
)

// StripePrice is the unit price of one of a customer's subscription items on a metered price:
// what Stripe will invoice per reported unit of the meter (billing reports quantities only).
type StripePrice struct {
	Subscription, Item string
	EventName          string // the meter's event_name ("" for a price on no meter)
	// UnitAmountDecimal is Stripe's unit_amount_decimal, US cents per reported unit.
	UnitAmountDecimal string
}

// StripePrices lists the prices of the items of a customer's active subscriptions, with the
// event name of each price's meter: what a negotiated price sheet must match for the invoice to
// follow it (docs/billing.md "Negotiated prices").
func (l *Linker) StripePrices(ctx context.Context, customer string) ([]StripePrice, error) {
	if l.stripe == nil {
		return nil, ErrStripeNotConfigured
	}
	names := map[string]string{} // meter id → event name
	mp := &stripe.BillingMeterListParams{}
	mp.Context = ctx
	mp.Limit = stripe.Int64(100)
	mit := l.stripe.meters.List(mp)
	for mit.Next() {
		m := mit.BillingMeter()
		names[m.ID] = m.EventName
	}
	if err := mit.Err(); err != nil {
		return nil, fmt.Errorf("list Stripe meters: %w", err)
	}
	p := &stripe.SubscriptionListParams{Customer: stripe.String(customer), Status: stripe.String("active")}
	p.Context = ctx
	p.Limit = stripe.Int64(100)
	var out []StripePrice
	it := l.stripe.subscriptions.List(p)
	for it.Next() {
		sub := it.Subscription()
		if sub.Items == nil {
			continue
		}
		for _, item := range sub.Items.Data {
			if item.Price == nil {
				continue
			}
			sp := StripePrice{Subscription: sub.ID, Item: item.ID,
				UnitAmountDecimal: strconv.FormatFloat(item.Price.UnitAmountDecimal, 'f', -1, 64)}
			if item.Price.Recurring != nil {
				sp.EventName = names[item.Price.Recurring.Meter]
			}
			out = append(out, sp)
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("list the Stripe subscriptions of %s: %w", customer, err)
	}
	return out, nil
}
