package api

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/cygni/usage/store"
)

// BillingReportStore is what the billing endpoints need from the metadata store.
type BillingReportStore interface {
	ListBillingReports(ctx context.Context, f store.BillingReportFilter) ([]store.BillingReport, error)
	RetryBillingReport(ctx context.Context, teamID string, id int64) error
	// BillingReportRef and ParseBillingReportRef turn a row id into the opaque id the API
	// shows (it reveals nothing of other tenants' volume) and back.
	BillingReportRef(teamID string, id int64) string
	ParseBillingReportRef(teamID, ref string) (int64, error)
}

// ReconcileFunc compares one month's usage of a team's projects with what was reported to
// Stripe; the result is rendered as JSON as it is.
type ReconcileFunc func(ctx context.Context, month time.Time, teamID string) (any, error)

// BillingDeps are the dependencies of the billing endpoints.
type BillingDeps struct {
	BillingReports BillingReportStore // nil: the endpoints answer 503
	Reconcile      ReconcileFunc      // nil: GET /api/billing/reconcile answers 503
	Linker         StripeLinker       // nil: the link endpoints answer 503
}

func (s *Server) registerBilling(r *mux.Router) {
	r.Handle("/api/billing/reports", s.authed(RoleAdmin, s.listBillingReports)).Methods(http.MethodGet)
	r.Handle("/api/billing/reports/{id}/retry", s.authed(RoleAdmin, s.retryBillingReport)).Methods(http.MethodPost)
	r.Handle("/api/billing/reconcile", s.authed(RoleAdmin, s.reconcileBilling)).Methods(http.MethodGet)
	s.registerBillingLinks(r)
}

// billingReportJSON is one outbox row in the API.
type billingReportJSON struct {
	ID            string  `json:"id"`
	ProjectID     string  `json:"projectId"`
	Metric        string  `json:"metric"`
	Hour          string  `json:"hour"`
	Revision      int     `json:"revision"`
	Amount        string  `json:"amount"`
	Quantity      int64   `json:"quantity"`
	Identifier    string  `json:"identifier"`
	State         string  `json:"state"`
	Attempts      int     `json:"attempts"`
	NextAttemptAt string  `json:"nextAttemptAt"`
	LastError     string  `json:"lastError"`
	StripeRef     string  `json:"stripeRef"`
	CreatedAt     string  `json:"createdAt"`
	SentAt        *string `json:"sentAt"`
}

type billingReportsJSON struct {
	Reports []billingReportJSON `json:"reports"`
	Counts  map[string]int      `json:"counts"`
}

var monthRE = regexp.MustCompile(`^\d{4}-\d{2}$`)

// parseMonth parses YYYY-MM into the first instant of that month in UTC.
func parseMonth(param, v string) (time.Time, error) {
	if !monthRE.MatchString(v) {
		return time.Time{}, BadParam(param, "%q is not a month; want YYYY-MM, e.g. 2026-11", v)
	}
	t, err := time.Parse("2006-01", v)
	if err != nil {
		return time.Time{}, BadParam(param, "%q is not a month; want YYYY-MM, e.g. 2026-11", v)
	}
	return t.UTC(), nil
}

func (s *Server) billingStore() (BillingReportStore, error) {
	if s.opts.BillingReports == nil {
		return nil, &Error{Kind: KindUnavailable, Code: "billing_unavailable", Message: "billing is not configured in this process"}
	}
	return s.opts.BillingReports, nil
}

// listBillingReports is GET /api/billing/reports?state=&projectId=&month=&limit= (admin): the
// outbox rows of the caller's team, with the reason of every held or failed one.
func (s *Server) listBillingReports(w http.ResponseWriter, r *http.Request) {
	st, err := s.billingStore()
	if err != nil {
		WriteError(w, err)
		return
	}
	p, _ := PrincipalFrom(r.Context())
	q := r.URL.Query()
	f := store.BillingReportFilter{TeamID: p.TeamID, ProjectID: q.Get("projectId"), Metric: q.Get("metric"), Limit: 100}
	if v := q.Get("state"); v != "" {
		if !slices.Contains(store.BillingStates, v) {
			WriteError(w, BadParam("state", "%q is not a state; want one of %v", v, store.BillingStates))
			return
		}
		f.State = v
	}
	if v := q.Get("month"); v != "" {
		m, err := parseMonth("month", v)
		if err != nil {
			WriteError(w, err)
			return
		}
		f.From, f.To = m, m.AddDate(0, 1, 0)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			WriteError(w, BadParam("limit", "%q is not a number between 1 and 10000", v))
			return
		}
		f.Limit = n
	}
	rows, err := st.ListBillingReports(r.Context(), f)
	if err != nil {
		s.logger.Error("list billing reports", "err", err)
		WriteError(w, err)
		return
	}
	out := billingReportsJSON{Reports: make([]billingReportJSON, 0, len(rows)), Counts: map[string]int{}}
	for _, st := range store.BillingStates {
		out.Counts[st] = 0
	}
	for _, x := range rows {
		j := billingReportJSON{
			ID: st.BillingReportRef(p.TeamID, x.ID), ProjectID: x.ProjectID, Metric: x.Metric, Hour: x.Hour.UTC().Format(time.RFC3339), Revision: x.Revision,
			Amount: x.Amount.String(), Quantity: x.Quantity, Identifier: x.Identifier, State: x.State, Attempts: x.Attempts,
			NextAttemptAt: x.NextAttemptAt.UTC().Format(time.RFC3339), LastError: x.LastError, StripeRef: x.StripeRef,
			CreatedAt: x.CreatedAt.UTC().Format(time.RFC3339),
		}
		if x.SentAt != nil {
			v := x.SentAt.UTC().Format(time.RFC3339)
			j.SentAt = &v
		}
		out.Reports = append(out.Reports, j)
		out.Counts[x.State]++
	}
	WriteJSON(w, http.StatusOK, out)
}

// retryBillingReport is POST /api/billing/reports/{id}/retry (admin): a failed, held or expired
// row goes back to pending under a new idempotency key.
func (s *Server) retryBillingReport(w http.ResponseWriter, r *http.Request) {
	st, err := s.billingStore()
	if err != nil {
		WriteError(w, err)
		return
	}
	p, _ := PrincipalFrom(r.Context())
	raw := mux.Vars(r)["id"]
	if !strings.HasPrefix(raw, store.PrefixBillingReport) {
		WriteError(w, BadParam("id", "%q is not a billing report id (%s…, as listed by GET /api/billing/reports)", raw, store.PrefixBillingReport))
		return
	}
	id, err := st.ParseBillingReportRef(p.TeamID, raw)
	if err != nil {
		WriteError(w, NotFound("billing report %s", raw))
		return
	}
	switch err := st.RetryBillingReport(r.Context(), p.TeamID, id); {
	case errors.Is(err, store.ErrNotFound):
		WriteError(w, NotFound("billing report %s", raw))
	case errors.Is(err, store.ErrConflict):
		WriteError(w, &Error{Kind: KindConflict, Code: "not_retryable", Message: "billing report " + raw + " is not failed, held or expired"})
	case err != nil:
		s.logger.Error("retry billing report", "id", id, "err", err)
		WriteError(w, err)
	default:
		WriteJSON(w, http.StatusOK, map[string]any{"id": raw, "state": store.BillingPending})
	}
}

// reconcileBilling is GET /api/billing/reconcile?month=YYYY-MM (admin).
func (s *Server) reconcileBilling(w http.ResponseWriter, r *http.Request) {
	if s.opts.Reconcile == nil {
		WriteError(w, &Error{Kind: KindUnavailable, Code: "billing_unavailable", Message: "billing is not configured in this process"})
		return
	}
	v := r.URL.Query().Get("month")
	if v == "" {
		WriteError(w, BadParam("month", "is required (YYYY-MM)"))
		return
	}
	m, err := parseMonth("month", v)
	if err != nil {
		WriteError(w, err)
		return
	}
	p, _ := PrincipalFrom(r.Context())
	rec, err := s.opts.Reconcile(r.Context(), m, p.TeamID)
	if err != nil {
		s.logger.Error("reconcile billing", "month", v, "err", err)
		WriteError(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, rec)
}
