package billing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/cygni/usage/store"
)

// LinkStore is what linking needs from the metadata store.
type LinkStore interface {
	SetTeamStripeCustomer(ctx context.Context, teamID, customerID string) error
	SetBillingSubscriptionItem(ctx context.Context, projectID, metric, itemID string) error
	ReleaseHeldBillingReports(ctx context.Context, now time.Time) error
	// ProjectStripeCustomer is store.ErrNotFound for an unknown project.
	ProjectStripeCustomer(ctx context.Context, projectID string) (string, error)
}

// ErrMalformedStripeID is returned for an id that is not a Stripe customer (cus_…) or
// subscription item (si_…) id.
var ErrMalformedStripeID = errors.New("malformed Stripe id")

var (
	customerIDRE = regexp.MustCompile(`^cus_[A-Za-z0-9]+$`)
	itemIDRE     = regexp.MustCompile(`^si_[A-Za-z0-9]+$`)
)

// Linker links a team to its Stripe customer (meter events) and a project's metric to its
// subscription item (usage records), each checked against Stripe first, and makes the held
// rows due at once, so the billing leader sends the hours held for the missing link in its next
// cycle (inside Stripe's window).
type Linker struct {
	stripe *stripeClient // nil: Stripe is not configured
	store  LinkStore
	now    func() time.Time
}

// NewLinker builds a Linker for the Stripe API at url (default api.stripe.com) with key; an
// empty key makes every link fail with ErrStripeNotConfigured. hc nil: a 30 s client.
func NewLinker(st LinkStore, url, key string, hc *http.Client, now func() time.Time) *Linker {
	if url == "" {
		url = DefaultStripeURL
	}
	if now == nil {
		now = time.Now
	}
	l := &Linker{store: st, now: now}
	if key != "" {
		l.stripe = newStripeClient(url, key, hc)
	}
	return l
}

// LinkTeamCustomer checks that the customer exists in Stripe, maps the team to it and releases
// the held rows. An empty customer unlinks the team (no check). Errors wrap
// ErrMalformedStripeID, ErrNotInStripe, ErrStripeNotConfigured or store.ErrNotFound (unknown
// team).
func (l *Linker) LinkTeamCustomer(ctx context.Context, teamID, customerID string) error {
	if customerID != "" {
		if !customerIDRE.MatchString(customerID) {
			return fmt.Errorf("%q is not a Stripe customer id (cus_…): %w", customerID, ErrMalformedStripeID)
		}
		if err := checkCustomer(ctx, l.stripe, customerID); err != nil {
			return err
		}
	}
	if err := l.store.SetTeamStripeCustomer(ctx, teamID, customerID); err != nil {
		return err
	}
	return l.store.ReleaseHeldBillingReports(ctx, l.now())
}

// LinkSubscriptionItem checks that the subscription item exists in Stripe, maps the project's
// metric to it and releases the held rows. An empty item removes the mapping (no check).
func (l *Linker) LinkSubscriptionItem(ctx context.Context, projectID, metric, itemID string) error {
	if _, ok := Metrics[metric]; !ok {
		return fmt.Errorf("metric %q; want cpu, memory, egress or requests: %w", metric, ErrMalformedStripeID)
	}
	if _, err := l.store.ProjectStripeCustomer(ctx, projectID); err != nil {
		return err
	}
	if itemID != "" {
		if !itemIDRE.MatchString(itemID) {
			return fmt.Errorf("%q is not a Stripe subscription item id (si_…): %w", itemID, ErrMalformedStripeID)
		}
		if err := checkSubscriptionItem(ctx, l.stripe, itemID); err != nil {
			return err
		}
	}
	if err := l.store.SetBillingSubscriptionItem(ctx, projectID, metric, itemID); err != nil {
		return err
	}
	return l.store.ReleaseHeldBillingReports(ctx, l.now())
}

var _ LinkStore = (*store.Store)(nil)
