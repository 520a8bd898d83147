package billing

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v76"

	"github.com/cygni/usage/series"
	"github.com/cygni/usage/store"
)

// Stripe stores an event and its answer is lost (a 500 reaches us): the resend, under a new
// idempotency key and the same identifier, is refused with "An event already exists with
// identifier …", and the row is delivered, counted once, never failed or lost.
func TestLostAnswerThenAlreadyExistsIsDelivered(t *testing.T) {
	e := newEnv(t)
	e.stripe.SetClock(e.clock.Now)
	total := hourly(t, e.db, series.Requests, "proj_a", 3, 2, func(h, i int) float64 { return float64(100*h + 7*i + 1) })
	e.stripe.FailAfterRecord(http.StatusInternalServerError)
	e.clock.Set(t0.Add(3*time.Hour + 15*time.Minute))
	b := e.biller(t, func(o *Options) { o.Backfill = 3 * time.Hour })
	for range 5 {
		cycle(t, b)
		e.clock.Advance(5 * time.Second)
	}
	rs := reports(t, e.st, store.BillingReportFilter{})
	if len(rs) != 3 {
		t.Fatalf("%d rows, want 3", len(rs))
	}
	for _, r := range rs {
		if r.State != store.BillingSent {
			t.Errorf("row %s is %s (%s), want sent", r.Identifier, r.State, r.LastError)
		}
	}
	first := rs[0]
	if first.KeyGeneration != 1 || !strings.Contains(first.LastError, "already holds identifier "+first.Identifier) {
		t.Errorf("first row: key generation %d, note %q; want 1 and Stripe's duplicate answer", first.KeyGeneration, first.LastError)
	}
	if got, want := e.stripe.Total("cygni_requests", "cus_a"), total.IntPart(); got != want {
		t.Errorf("Stripe counts %d, want %d (each hour once)", got, want)
	}
	if n := len(e.stripe.Events()); n != 3 {
		t.Errorf("Stripe holds %d events, want 3", n)
	}
	if _, _, dups := e.stripe.Stats(); dups != 1 {
		t.Errorf("%d duplicate identifiers refused, want 1 (the resend after the lost answer)", dups)
	}
	rec, err := b.Reconcile(context.Background(), t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tot := range rec.Totals {
		if tot.Lost != 0 || tot.Reported != total.IntPart() {
			t.Errorf("reconcile total %+v, want reported %d, lost 0", tot, total.IntPart())
		}
	}
}

// A resend more than VerifyAfter after the first attempt, when Stripe may have forgotten the
// identifier, asks Stripe's hourly summary first: a stored event is recorded as sent without a
// second one, an event Stripe never stored is sent.
func TestLateResendChecksStripeFirst(t *testing.T) {
	for _, tc := range []struct {
		name       string
		stored     bool
		wantEvents int
	}{
		{"stored, answer lost", true, 1},
		{"never stored", false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.stripe.SetClock(e.clock.Now)
			e.stripe.AddMeter("cygni_requests")
			hourly(t, e.db, series.Requests, "proj_a", 1, 1, func(int, int) float64 { return 42 })
			if tc.stored {
				e.stripe.FailAfterRecord(http.StatusInternalServerError)
			} else {
				e.stripe.Fail(http.StatusInternalServerError)
			}
			e.clock.Set(t0.Add(time.Hour + 15*time.Minute))
			b := e.biller(t, func(o *Options) {
				o.Backfill = time.Hour
				o.BaseBackoff = 30 * time.Hour
				o.MaxBackoff = 30 * time.Hour
			})
			cycle(t, b)
			if rs := reports(t, e.st, nil0()); rs[0].State != store.BillingPending || rs[0].Attempts != 1 {
				t.Fatalf("after the 500: %s, %d attempts", rs[0].State, rs[0].Attempts)
			}
			// A day and more later the server has forgotten the identifier (24 h).
			e.clock.Advance(30 * time.Hour)
			cycle(t, b)
			rs := reports(t, e.st, nil0())
			if rs[0].State != store.BillingSent {
				t.Fatalf("after the late resend: %s (%s), want sent", rs[0].State, rs[0].LastError)
			}
			if got := e.stripe.Total("cygni_requests", "cus_a"); got != 42 {
				t.Errorf("Stripe counts %d, want 42", got)
			}
			if n := len(e.stripe.Events()); n != tc.wantEvents {
				t.Errorf("Stripe holds %d events, want %d", n, tc.wantEvents)
			}
			if e.stripe.SummaryRequests() == 0 {
				t.Error("the late resend did not read Stripe's event summaries")
			}
			if tc.stored && (rs[0].Attempts != 1 || !strings.Contains(rs[0].LastError, "delivered: Stripe's summary")) {
				t.Errorf("stored: %d attempts, note %q; want 1 attempt and the summary as the reason", rs[0].Attempts, rs[0].LastError)
			}
		})
	}
}

func nil0() store.BillingReportFilter { return store.BillingReportFilter{} }

// A row parked as failed while Stripe had stored its event: the operator's retry resends it
// under a new key, Stripe answers "already exists", and the row is delivered.
func TestRetryOfAFailedRowThatStripeHolds(t *testing.T) {
	e := newEnv(t)
	e.stripe.SetClock(e.clock.Now)
	hourly(t, e.db, series.Requests, "proj_a", 1, 1, func(int, int) float64 { return 9 })
	e.stripe.FailAfterRecord(http.StatusBadRequest) // stored, then a permanent-looking answer
	e.clock.Set(t0.Add(time.Hour + 15*time.Minute))
	b := e.biller(t, func(o *Options) { o.Backfill = time.Hour })
	cycle(t, b)
	rs := reports(t, e.st, nil0())
	if rs[0].State != store.BillingFailed {
		t.Fatalf("row is %s, want failed", rs[0].State)
	}
	if err := e.st.RetryBillingReport(context.Background(), "team_a", rs[0].ID); err != nil {
		t.Fatal(err)
	}
	cycle(t, b)
	rs = reports(t, e.st, nil0())
	if rs[0].State != store.BillingSent || rs[0].KeyGeneration != 1 {
		t.Fatalf("after retry: %s, key generation %d (%s); want sent under key generation 1", rs[0].State, rs[0].KeyGeneration, rs[0].LastError)
	}
	if got := e.stripe.Total("cygni_requests", "cus_a"); got != 9 {
		t.Errorf("Stripe counts %d, want 9", got)
	}
}

func TestDuplicateIdentifierMatchesOnlyOurs(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		want bool
	}{
		{"An event already exists with identifier cygni-p-cpu-2026110200-r1.", true},
		{"An event already exists with identifier cygni-p-cpu-2026110200-r10.", false},
		{"An event already exists with identifier 'cygni-p-cpu-2026110200-r1'", true},
		{"No such customer: 'cus_x'", false},
	} {
		err := stripeErr(400, tc.msg)
		if got := duplicateIdentifier(err, "cygni-p-cpu-2026110200-r1"); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.msg, got, tc.want)
		}
	}
}

func stripeErr(status int, msg string) error {
	return &stripe.Error{HTTPStatusCode: status, Msg: msg, Type: stripe.ErrorTypeInvalidRequest}
}

// A late resend whose hour Stripe holds only part of (its records disagree with the outbox) is
// neither sent again nor recorded as sent: it is held with both numbers for an operator.
func TestLateResendHoldsWhenStripeHoldsPart(t *testing.T) {
	e := newEnv(t)
	e.stripe.SetClock(e.clock.Now)
	e.stripe.AddMeter("cygni_requests")
	hourly(t, e.db, series.Requests, "proj_a", 1, 1, func(int, int) float64 { return 42 })
	e.stripe.Fail(http.StatusInternalServerError) // not stored
	e.clock.Set(t0.Add(time.Hour + 15*time.Minute))
	b := e.biller(t, func(o *Options) {
		o.Backfill = time.Hour
		o.BaseBackoff = 30 * time.Hour
		o.MaxBackoff = 30 * time.Hour
	})
	cycle(t, b)
	e.stripe.AdjustSummary("cygni_requests", "cus_a", t0, 20) // Stripe holds 20 of the 42 somehow
	e.clock.Advance(30 * time.Hour)
	cycle(t, b)
	rs := reports(t, e.st, nil0())
	if rs[0].State != store.BillingHeld || !strings.Contains(rs[0].LastError, "is 20") || !strings.Contains(rs[0].LastError, "this row is 42") {
		t.Fatalf("row %s (%s), want held with Stripe's 20 and the row's 42", rs[0].State, rs[0].LastError)
	}
	if n := len(e.stripe.Events()); n != 0 {
		t.Errorf("Stripe got %d events, want none (no risk of a second charge)", n)
	}
}
