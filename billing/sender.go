package billing

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/billing/meter"
	"github.com/stripe/stripe-go/v76/billing/meterevent"
	"github.com/stripe/stripe-go/v76/billing/metereventsummary"
	"github.com/stripe/stripe-go/v76/customer"
	"github.com/stripe/stripe-go/v76/subscription"
	"github.com/stripe/stripe-go/v76/subscriptionitem"
	"github.com/stripe/stripe-go/v76/usagerecord"
	"github.com/stripe/stripe-go/v76/usagerecordsummary"

	"github.com/cygni/usage/store"
)

// sendBatch is how many due rows one query fetches.
const sendBatch = 200

// stripeClient posts reports with stripe-go against a configurable base URL.
type stripeClient struct {
	meterEvents   meterevent.Client
	usageRecords  usagerecord.Client
	meters        meter.Client
	summaries     metereventsummary.Client
	customers     customer.Client
	subItems      subscriptionitem.Client
	usageSummarys usagerecordsummary.Client
	subscriptions subscription.Client
}

func newStripeClient(url, key string, hc *http.Client) *stripeClient {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	backend := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL:        stripe.String(url),
		HTTPClient: hc,
		// We retry ourselves, with back-off, from the outbox: stripe-go retries neither POST
		// 500s nor 429s, and a retry that survives a restart must come from the durable state.
		MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
	})
	return &stripeClient{
		meterEvents:   meterevent.Client{B: backend, Key: key},
		usageRecords:  usagerecord.Client{B: backend, Key: key},
		meters:        meter.Client{B: backend, Key: key},
		summaries:     metereventsummary.Client{B: backend, Key: key},
		customers:     customer.Client{B: backend, Key: key},
		subItems:      subscriptionitem.Client{B: backend, Key: key},
		usageSummarys: usagerecordsummary.Client{B: backend, Key: key},
		subscriptions: subscription.Client{B: backend, Key: key},
	}
}

// errorClass is what to do after a failed send.
type errorClass int

const (
	classRetry     errorClass = iota // 429, 5xx, 409, network: back off and resend the same request
	classHold                        // 401/403: the key is wrong; hold and retry, nothing is lost
	classPermanent                   // any other 4xx: park the row with the reason
)

func classify(err error) errorClass {
	var se *stripe.Error
	if !errors.As(err, &se) || se.HTTPStatusCode == 0 {
		return classRetry // network errors, timeouts
	}
	switch code := se.HTTPStatusCode; {
	case code == http.StatusTooManyRequests, code == http.StatusConflict, code >= 500, se.Type == stripe.ErrorTypeIdempotency:
		return classRetry
	case code == http.StatusUnauthorized, code == http.StatusForbidden:
		return classHold
	default:
		return classPermanent
	}
}

// savedFailure reports whether Stripe may have saved this failed result under the idempotency
// key: it does for a 5xx answered after the request began executing; not for 429 (rejected
// before execution) nor for network errors (then the request may have succeeded, and the same
// key must be reused to deduplicate it).
func savedFailure(err error) bool {
	var se *stripe.Error
	// An idempotency_error says the key was used before with other parameters (a usage record's
	// subscription item re-mapped, say): the key is spent, and only a new one can send.
	return errors.As(err, &se) && (se.HTTPStatusCode >= 500 || se.Type == stripe.ErrorTypeIdempotency)
}

// duplicateIdentifier reports whether err is Stripe's answer that it already holds a meter
// event with exactly this identifier ("An event already exists with identifier X."): an
// earlier attempt of the same row was stored and its answer lost. The row is delivered.
func duplicateIdentifier(err error, identifier string) bool {
	var se *stripe.Error
	if !errors.As(err, &se) || se.HTTPStatusCode != http.StatusBadRequest {
		return false
	}
	const marker = "already exists with identifier"
	i := strings.Index(strings.ToLower(se.Msg), marker)
	if i < 0 {
		return false
	}
	fields := strings.Fields(se.Msg[i+len(marker):])
	return len(fields) > 0 && strings.Trim(fields[0], ".,;:'\"`") == identifier
}

// IdempotencyKey is the key of a row's request: its identifier, plus the key generation once
// that advanced.
func IdempotencyKey(r store.BillingReport) string {
	if r.KeyGeneration == 0 {
		return r.Identifier
	}
	return r.Identifier + "-k" + strconv.Itoa(r.KeyGeneration)
}

// errorText is a short reason for the outbox and the API.
func errorText(err error) string {
	var se *stripe.Error
	if errors.As(err, &se) && se.HTTPStatusCode != 0 {
		s := fmt.Sprintf("Stripe answered %d", se.HTTPStatusCode)
		if se.Type != "" {
			s += " " + string(se.Type)
		}
		if se.Code != "" {
			s += " (" + string(se.Code) + ")"
		}
		if se.Msg != "" {
			s += ": " + se.Msg
		}
		return s
	}
	return err.Error()
}

// backoff is the delay before attempt n+1: BaseBackoff·2^(n−1), capped, with jitter in [d/2, d].
func (b *Biller) backoff(attempts int) time.Duration {
	d := b.opts.BaseBackoff
	for i := 1; i < attempts && d < b.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, b.opts.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// sendDue sends every due row, oldest hour first, until none is due or Stripe asks us to back
// off (then the rest waits for the next cycle).
func (b *Biller) sendDue(ctx context.Context, now time.Time) error {
	b.held = 0
	defer func() {
		if b.held > 0 {
			b.logger.Info("billing reports held until they can be sent; see GET /api/billing/reports?state=held", "rows", b.held)
		}
	}()
	for {
		due, err := b.opts.Store.DueBillingReports(ctx, now, sendBatch)
		if err != nil {
			return err
		}
		for _, r := range due {
			stop, err := b.sendOne(ctx, now, r)
			if err != nil {
				return err
			}
			if stop {
				return nil
			}
		}
		if len(due) < sendBatch {
			return nil
		}
	}
}

// sendOne moves one row through the state machine. stop asks the caller to stop sending for
// this cycle (Stripe is failing or rate limiting).
func (b *Biller) sendOne(ctx context.Context, now time.Time, r store.BillingReport) (stop bool, err error) {
	if r.Hour.Before(now.Add(-b.opts.Window)) {
		r.State = store.BillingExpired
		r.LastError = fmt.Sprintf("hour %s is older than Stripe's %s window; not reported (listed by reconcile)", r.Hour.Format(time.RFC3339), b.opts.Window)
		b.expired.Inc()
		b.logger.Warn("billing report expired; flagged, not sent", "identifier", r.Identifier, "quantity", r.Quantity)
		return false, b.opts.Store.UpdateBillingReport(ctx, r)
	}
	if b.stripe == nil {
		return false, b.hold(ctx, now, r, "Stripe is not configured: set billing.stripe.api_key or CYGNI_STRIPE_API_KEY")
	}
	dest, reason, err := b.destination(ctx, r)
	if err != nil {
		return false, err
	}
	if reason != "" {
		return false, b.hold(ctx, now, r, reason)
	}
	if b.opts.Mode == ModeMeterEvents && r.FirstAttemptAt != nil && now.Sub(*r.FirstAttemptAt) >= b.opts.VerifyAfter {
		// Stripe may have forgotten the identifier of an attempt this old: ask what it holds.
		v, detail, err := b.verify(ctx, r, dest)
		switch {
		case err != nil:
			r.State, r.LastError, r.NextAttemptAt = store.BillingPending, "check Stripe before resending: "+errorText(err), now.Add(b.backoff(r.Attempts))
			b.retried.Inc()
			b.logger.Warn("read Stripe's event summary before a late resend; retrying after back-off", "identifier", r.Identifier, "err", r.LastError)
			return true, b.opts.Store.UpdateBillingReport(ctx, r)
		case v == verdictDelivered:
			return false, b.delivered(ctx, r, dest, detail)
		case v == verdictUnclear:
			return false, b.hold(ctx, now, r, detail)
		}
		b.logger.Info("late resend: Stripe does not hold the report; sending it", "identifier", r.Identifier, "detail", detail)
	}
	r.State = store.BillingSending
	r.Attempts++
	r.StripeRef = dest
	if r.FirstAttemptAt == nil {
		r.FirstAttemptAt = &now
	}
	if err := b.opts.Store.UpdateBillingReport(ctx, r); err != nil {
		return false, err
	}
	sendErr := b.post(ctx, r, dest)
	if b.opts.AfterSend != nil {
		b.opts.AfterSend(r)
	}
	// Record the outcome even when ctx was cancelled during the send: it happened.
	rctx := context.WithoutCancel(ctx)
	if sendErr == nil {
		sent := b.opts.Now().UTC()
		r.State, r.LastError, r.SentAt = store.BillingSent, "", &sent
		b.sent.Inc()
		return false, b.opts.Store.UpdateBillingReport(rctx, r)
	}
	if b.opts.Mode == ModeMeterEvents && duplicateIdentifier(sendErr, r.Identifier) {
		return false, b.delivered(rctx, r, dest, "delivered: Stripe already holds identifier "+r.Identifier+" (an earlier attempt was stored, its answer lost)")
	}
	r.LastError = errorText(sendErr)
	switch classify(sendErr) {
	case classRetry:
		if savedFailure(sendErr) {
			r.KeyGeneration++ // Stripe replays a saved 5xx for the same key: the next try needs a new one
		}
		r.State = store.BillingPending
		r.NextAttemptAt = now.Add(b.backoff(r.Attempts))
		b.retried.Inc()
		b.logger.Warn("send billing report; retrying after back-off", "identifier", r.Identifier, "attempt", r.Attempts, "retry_at", r.NextAttemptAt, "err", r.LastError)
		return true, b.opts.Store.UpdateBillingReport(rctx, r)
	case classHold:
		r.State = store.BillingHeld
		r.NextAttemptAt = now.Add(b.backoff(r.Attempts))
		b.retried.Inc()
		b.logger.Warn("Stripe rejected the API key; report held and retried", "identifier", r.Identifier, "err", r.LastError)
		return true, b.opts.Store.UpdateBillingReport(rctx, r)
	default:
		r.State = store.BillingFailed
		b.failedPerm.Inc()
		b.logger.Error("Stripe refused a billing report; parked as failed, see GET /api/billing/reports", "identifier", r.Identifier, "err", r.LastError)
		return false, b.opts.Store.UpdateBillingReport(rctx, r)
	}
}

// delivered records a row as sent that Stripe is known to hold, without sending it again.
func (b *Biller) delivered(ctx context.Context, r store.BillingReport, dest, detail string) error {
	sent := b.opts.Now().UTC()
	r.State, r.LastError, r.SentAt, r.StripeRef = store.BillingSent, detail, &sent, dest
	b.sent.Inc()
	b.alreadyHeld.Inc()
	b.logger.Info("billing report found in Stripe; recorded as sent, not sent again", "identifier", r.Identifier, "detail", detail)
	return b.opts.Store.UpdateBillingReport(ctx, r)
}

func (b *Biller) hold(ctx context.Context, now time.Time, r store.BillingReport, reason string) error {
	if r.State != store.BillingHeld || r.LastError != reason {
		b.logger.Debug("billing report held until it can be sent", "identifier", r.Identifier, "reason", reason)
	}
	r.State, r.LastError, r.NextAttemptAt = store.BillingHeld, reason, now.Add(b.opts.HoldRecheck)
	b.held++
	return b.opts.Store.UpdateBillingReport(ctx, r)
}

// destination returns the Stripe customer (meter events) or subscription item (usage records)
// of a row, or the reason it must be held.
func (b *Biller) destination(ctx context.Context, r store.BillingReport) (dest, reason string, err error) {
	if _, ok := b.opts.Meters[r.Metric]; !ok {
		return "", fmt.Sprintf("metric %s is not billed (billing.meters)", r.Metric), nil
	}
	if b.opts.Mode == ModeUsageRecords {
		item, err := b.opts.Store.BillingSubscriptionItem(ctx, r.ProjectID, r.Metric)
		if errors.Is(err, store.ErrNotFound) {
			return "", fmt.Sprintf("no subscription item is mapped for project %s, metric %s", r.ProjectID, r.Metric), nil
		}
		return item, "", err
	}
	cus, err := b.opts.Store.ProjectStripeCustomer(ctx, r.ProjectID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", fmt.Sprintf("project %s is not in the metadata store", r.ProjectID), nil
	case err != nil:
		return "", "", err
	case cus == "":
		return "", fmt.Sprintf("the team of project %s has no Stripe customer", r.ProjectID), nil
	}
	return cus, "", nil
}

// post sends one row. Meter events carry the row's own quantity (corrections are events for the
// difference); usage records set the hour's total of all its rows.
func (b *Biller) post(ctx context.Context, r store.BillingReport, dest string) error {
	if b.opts.Mode == ModeUsageRecords {
		rows, err := b.opts.Store.ListBillingReports(ctx, store.BillingReportFilter{
			ProjectID: r.ProjectID, Metric: r.Metric, From: r.Hour, To: r.Hour.Add(time.Hour),
		})
		if err != nil {
			return err
		}
		var total int64
		for _, x := range rows {
			total += x.Quantity
		}
		p := &stripe.UsageRecordParams{
			SubscriptionItem: stripe.String(dest),
			Quantity:         stripe.Int64(total),
			Timestamp:        stripe.Int64(r.Hour.Unix()),
			Action:           stripe.String("set"),
		}
		p.Context = ctx
		// The key names the content: a later revision resends a different total under a new key.
		p.SetIdempotencyKey(IdempotencyKey(r) + "-q" + strconv.FormatInt(total, 10))
		_, err = b.stripe.usageRecords.New(p)
		return err
	}
	p := &stripe.BillingMeterEventParams{
		EventName:  stripe.String(b.opts.Meters[r.Metric].EventName),
		Identifier: stripe.String(r.Identifier),
		Timestamp:  stripe.Int64(r.Hour.Unix()),
		Payload: map[string]string{
			"stripe_customer_id": dest,
			"value":              strconv.FormatInt(r.Quantity, 10),
		},
	}
	p.Context = ctx
	p.SetIdempotencyKey(IdempotencyKey(r))
	_, err := b.stripe.meterEvents.New(p)
	return err
}
