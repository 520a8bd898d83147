package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/cygni/usage/billing"
	"github.com/cygni/usage/store"
)

// StripeLinker links teams to Stripe customers and project metrics to subscription items, each
// checked against Stripe first (billing.Linker).
type StripeLinker interface {
	LinkTeamCustomer(ctx context.Context, teamID, customerID string) error
	LinkSubscriptionItem(ctx context.Context, projectID, metric, itemID string) error
}

func (s *Server) registerBillingLinks(r *mux.Router) {
	r.Handle("/api/teams/{teamId}/stripe-customer", s.operator(s.linkTeamCustomer)).Methods(http.MethodPut)
	r.Handle("/api/projects/{projectId}/subscription-items/{metric}", s.operator(s.linkSubscriptionItem)).Methods(http.MethodPut)
}

// linkError maps the linker's errors to API errors; field names the body field.
func (s *Server) linkError(w http.ResponseWriter, field, what string, err error) {
	switch {
	case errors.Is(err, billing.ErrMalformedStripeID):
		WriteError(w, BadParam(field, "%v", err))
	case errors.Is(err, billing.ErrNotInStripe):
		WriteError(w, &Error{Kind: KindBadRequest, Code: "not_in_stripe", Message: field + ": " + err.Error()})
	case errors.Is(err, billing.ErrStripeNotConfigured):
		WriteError(w, &Error{Kind: KindUnavailable, Code: "stripe_not_configured", Message: err.Error()})
	case errors.Is(err, store.ErrNotFound):
		WriteError(w, NotFound("%s", what))
	default:
		// Stripe could not be asked (network, 5xx, a rejected key): nothing was changed.
		s.logger.Warn("link to Stripe; nothing changed", "err", err)
		WriteError(w, &Error{Kind: KindUnavailable, Code: "stripe_unavailable", Message: "nothing changed: " + err.Error()})
	}
}

// linkTeamCustomer is PUT /api/teams/{teamId}/stripe-customer (operators), body
// {"stripeCustomerId": "cus_…"}: the customer must exist in Stripe; "" unlinks the team. The
// hours held for the missing customer are sent in the billing leader's next cycle.
func (s *Server) linkTeamCustomer(w http.ResponseWriter, r *http.Request) {
	if s.opts.Linker == nil {
		WriteError(w, &Error{Kind: KindUnavailable, Code: "billing_unavailable", Message: "billing is not configured in this process"})
		return
	}
	team := mux.Vars(r)["teamId"]
	var req struct {
		StripeCustomerID *string `json:"stripeCustomerId"`
	}
	if err := decodeOptionalJSON(w, r, &req); err != nil {
		WriteError(w, err)
		return
	}
	if req.StripeCustomerID == nil {
		WriteError(w, BadParam("stripeCustomerId", "is required (cus_…, or \"\" to unlink)"))
		return
	}
	old := ""
	if s.opts.Budgets != nil {
		if t, err := s.opts.Budgets.GetTeam(r.Context(), team); err == nil {
			old = t.StripeCustomerID
		}
	}
	if err := s.opts.Linker.LinkTeamCustomer(r.Context(), team, *req.StripeCustomerID); err != nil {
		s.linkError(w, "stripeCustomerId", "team "+team, err)
		return
	}
	if old != *req.StripeCustomerID {
		s.recordAudit(r, team, store.AuditStripeCustomer, team, old, *req.StripeCustomerID)
	}
	WriteJSON(w, http.StatusOK, map[string]string{"teamId": team, "stripeCustomerId": *req.StripeCustomerID})
}

// linkSubscriptionItem is PUT /api/projects/{projectId}/subscription-items/{metric}
// (operators), body {"subscriptionItemId": "si_…"} (billing.mode usage_records): the item must
// exist in Stripe; "" removes the mapping.
func (s *Server) linkSubscriptionItem(w http.ResponseWriter, r *http.Request) {
	if s.opts.Linker == nil {
		WriteError(w, &Error{Kind: KindUnavailable, Code: "billing_unavailable", Message: "billing is not configured in this process"})
		return
	}
	vars := mux.Vars(r)
	project, metric := vars["projectId"], vars["metric"]
	if _, ok := billing.Metrics[metric]; !ok {
		WriteError(w, BadParam("metric", "%q is not a billed metric; want cpu, memory, egress or requests", metric))
		return
	}
	var req struct {
		SubscriptionItemID *string `json:"subscriptionItemId"`
	}
	if err := decodeOptionalJSON(w, r, &req); err != nil {
		WriteError(w, err)
		return
	}
	if req.SubscriptionItemID == nil {
		WriteError(w, BadParam("subscriptionItemId", "is required (si_…, or \"\" to remove the mapping)"))
		return
	}
	if err := s.opts.Linker.LinkSubscriptionItem(r.Context(), project, metric, *req.SubscriptionItemID); err != nil {
		s.linkError(w, "subscriptionItemId", "project "+project, err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]string{"projectId": project, "metric": metric, "subscriptionItemId": *req.SubscriptionItemID})
}
