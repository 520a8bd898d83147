package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/shopspring/decimal"

	"github.com/cygni/usage/budget"
)

type teamBudgetJSON struct {
	TeamID      string  `json:"teamId"`
	Limit       *number `json:"limit"` // null: no team budget
	Used        number  `json:"used"`
	Remaining   *number `json:"remaining"`
	PercentUsed *number `json:"percentUsed"`
	Status      string  `json:"status"` // ok | warning | exceeded; "none" without a team budget
	Forecast    number  `json:"forecast"`
	Projects    int     `json:"projects"`
	PeriodStart string  `json:"periodStart"`
	PeriodEnd   string  `json:"periodEnd"`
}

func (s *Server) registerTeamBudget(r *mux.Router) {
	r.Handle("/api/teams/{teamId}/budget", s.authed(RoleMember, s.budgetHandler(s.getTeamBudget))).Methods(http.MethodGet)
	r.Handle("/api/teams/{teamId}/budget", s.authed(RoleMember, s.budgetHandler(s.putTeamBudget))).Methods(http.MethodPut)
}

// teamBudgetAnswer computes a team's budget status from the exact sum of its projects' costs
// in the billing period so far, by the budget package's rules.
func (s *Server) teamBudgetAnswer(r *http.Request, teamID string) (teamBudgetJSON, error) {
	if err := s.usageReady(); err != nil {
		return teamBudgetJSON{}, err
	}
	ctx := r.Context()
	team, err := s.opts.UsageProjects.GetTeam(ctx, teamID)
	if err != nil {
		return teamBudgetJSON{}, err
	}
	set, err := s.opts.Budgets.GetBudgetSettings(ctx, teamID, "")
	if err != nil {
		return teamBudgetJSON{}, err
	}
	ps, err := s.opts.UsageProjects.ListProjects(ctx, teamID)
	if err != nil {
		return teamBudgetJSON{}, err
	}
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	now := s.opts.Usage.Now()
	f, err := s.opts.Usage.Forecast(ctx, ids, team.BillingAnchorDay, now)
	if err != nil {
		return teamBudgetJSON{}, err
	}
	used, forecast := decimal.Zero, decimal.Zero
	for _, id := range ids {
		used = used.Add(f[id].MonthToDate.Total())
		forecast = forecast.Add(f[id].Forecast)
	}
	start, end := budget.Period(now, team.BillingAnchorDay)
	out := teamBudgetJSON{TeamID: teamID, Used: numFixed(used, 2), Status: "none", Forecast: numFixed(forecast, 2), Projects: len(ids),
		PeriodStart: start.Format(time.RFC3339), PeriodEnd: end.Format(time.RFC3339)}
	if l := set.TeamLimit; l != nil {
		lim, rem, pct := numFixed(*l, 2), numFixed(decimal.Max(l.Sub(used.Round(2)), decimal.Zero), 2), numFixed(budget.PercentUsed(used, *l), placesPercent)
		out.Limit, out.Remaining, out.PercentUsed = &lim, &rem, &pct
		out.Status = budget.Status(used, *l)
	}
	return out, nil
}

// getTeamBudget is GET /api/teams/{teamId}/budget (member).
func (s *Server) getTeamBudget(w http.ResponseWriter, r *http.Request) error {
	teamID, _, err := s.thresholdScope(r)
	if err != nil {
		return err
	}
	out, err := s.teamBudgetAnswer(r, teamID)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

// putTeamBudget is PUT /api/teams/{teamId}/budget (admin), body {"limit": 500} or
// {"limit": null} (no team budget).
func (s *Server) putTeamBudget(w http.ResponseWriter, r *http.Request) error {
	teamID, _, err := s.thresholdScope(r)
	if err != nil {
		return err
	}
	if p, _ := PrincipalFrom(r.Context()); !p.Role.Allows(RoleAdmin) {
		return Forbidden("changing the team budget needs the admin role; the token has %s", p.Role)
	}
	var req struct {
		Limit json.RawMessage `json:"limit"`
	}
	if err := decodeOptionalJSON(w, r, &req); err != nil {
		return err
	}
	raw := strings.TrimSpace(string(req.Limit))
	var limit *decimal.Decimal
	switch raw {
	case "":
		return BadParam("limit", "is required (a positive amount in USD, or null for no team budget)")
	case "null":
	default:
		d, err := decimal.NewFromString(raw)
		switch {
		case err != nil || !strings.ContainsAny(raw[:1], "-0123456789"):
			return BadParam("limit", "%s is not a JSON number (e.g. 500 or 1250.50)", raw)
		case !d.IsPositive():
			return BadParam("limit", "%s must be positive", d)
		case !d.Equal(d.Round(2)):
			return BadParam("limit", "%s has more than 2 decimals", raw)
		case d.GreaterThan(MaxBudgetLimit.Mul(decimal.NewFromInt(100))):
			return BadParam("limit", "%s is above the maximum of %s USD", d, MaxBudgetLimit.Mul(decimal.NewFromInt(100)))
		}
		d = d.Round(2)
		limit = &d
	}
	if err := s.opts.Budgets.SetTeamBudget(r.Context(), teamID, limit, auditActor(r)); err != nil {
		return err
	}
	if s.opts.BudgetChanged != nil {
		s.opts.BudgetChanged()
	}
	out, err := s.teamBudgetAnswer(r, teamID)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}
