package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/shopspring/decimal"

	"github.com/cygni/usage/budget"
	"github.com/cygni/usage/query"
)

type dailyBudgetJSON struct {
	ProjectID   string  `json:"projectId"`
	DailyLimit  *number `json:"dailyLimit"` // null: none
	TimeZone    string  `json:"timeZone"`   // the team's; the day starts at local midnight
	DayStart    string  `json:"dayStart"`
	DayEnd      string  `json:"dayEnd"`
	Used        number  `json:"used"` // cost since local midnight
	PercentUsed *number `json:"percentUsed"`
	Exceeded    bool    `json:"exceeded"`
}

func (s *Server) registerDailyBudget(r *mux.Router) {
	r.Handle("/api/projects/{projectId}/daily-budget", s.authed(RoleMember, s.budgetHandler(s.getDailyBudget))).Methods(http.MethodGet)
	r.Handle("/api/projects/{projectId}/daily-budget", s.authed(RoleMember, s.budgetHandler(s.putDailyBudget))).Methods(http.MethodPut)
	r.Handle("/api/teams/{teamId}/time-zone", s.authed(RoleMember, s.budgetHandler(s.getTimeZone))).Methods(http.MethodGet)
	r.Handle("/api/teams/{teamId}/time-zone", s.authed(RoleMember, s.budgetHandler(s.putTimeZone))).Methods(http.MethodPut)
}

func (s *Server) dailyAnswer(r *http.Request, teamID, projectID string) (dailyBudgetJSON, error) {
	if err := s.usageReady(); err != nil {
		return dailyBudgetJSON{}, err
	}
	ctx := r.Context()
	team, err := s.opts.Budgets.GetBudgetSettings(ctx, teamID, "")
	if err != nil {
		return dailyBudgetJSON{}, err
	}
	own, err := s.opts.Budgets.GetBudgetSettings(ctx, teamID, projectID)
	if err != nil {
		return dailyBudgetJSON{}, err
	}
	loc, err := budget.LoadTimeZone(team.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	now := s.opts.Usage.Now()
	start, end := budget.Day(now, loc)
	used := decimal.Zero
	if cut := now.Truncate(time.Minute); cut.After(start) {
		ru, err := s.opts.Usage.Rollup(ctx, []string{projectID}, []time.Time{start, cut}, query.ByProject)
		if err != nil {
			return dailyBudgetJSON{}, err
		}
		if row, ok := ru.Rows[query.Key{Project: projectID}]; ok && len(row) > 0 {
			used = row[0].Cost.Total()
		}
	}
	out := dailyBudgetJSON{ProjectID: projectID, TimeZone: loc.String(), DayStart: start.Format(time.RFC3339), DayEnd: end.Format(time.RFC3339), Used: numFixed(used, 2)}
	if l := own.DailyLimit; l != nil {
		lim, pct := numFixed(*l, 2), numFixed(budget.PercentUsed(used, *l), placesPercent)
		out.DailyLimit, out.PercentUsed, out.Exceeded = &lim, &pct, budget.IsExceeded(used, *l)
	}
	return out, nil
}

// getDailyBudget is GET /api/projects/{projectId}/daily-budget (member).
func (s *Server) getDailyBudget(w http.ResponseWriter, r *http.Request) error {
	teamID, projectID, err := s.thresholdScope(r)
	if err != nil {
		return err
	}
	out, err := s.dailyAnswer(r, teamID, projectID)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

// putDailyBudget is PUT /api/projects/{projectId}/daily-budget (admin), body {"dailyLimit": 10}
// or {"dailyLimit": null}.
func (s *Server) putDailyBudget(w http.ResponseWriter, r *http.Request) error {
	teamID, projectID, err := s.thresholdScope(r)
	if err != nil {
		return err
	}
	if p, _ := PrincipalFrom(r.Context()); !p.Role.Allows(RoleAdmin) {
		return Forbidden("changing a daily budget needs the admin role; the token has %s", p.Role)
	}
	var req struct {
		DailyLimit json.RawMessage `json:"dailyLimit"`
	}
	if err := decodeOptionalJSON(w, r, &req); err != nil {
		return err
	}
	limit, err := optionalAmount("dailyLimit", string(req.DailyLimit), MaxBudgetLimit)
	if err != nil {
		return err
	}
	if err := s.opts.Budgets.SetDailyBudget(r.Context(), teamID, projectID, limit, auditActor(r)); err != nil {
		return err
	}
	if s.opts.BudgetChanged != nil {
		s.opts.BudgetChanged()
	}
	out, err := s.dailyAnswer(r, teamID, projectID)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

// timeZoneJSON is the answer of GET and PUT /api/teams/{teamId}/time-zone; "UTC" when none is set.
type timeZoneJSON struct {
	TeamID   string `json:"teamId"`
	TimeZone string `json:"timeZone"`
}

func zoneName(zone string) string {
	if zone == "" {
		return "UTC"
	}
	return zone
}

// getTimeZone is GET /api/teams/{teamId}/time-zone (member): where the team's daily budgets reset.
func (s *Server) getTimeZone(w http.ResponseWriter, r *http.Request) error {
	teamID, _, err := s.thresholdScope(r)
	if err != nil {
		return err
	}
	if err := checkParams(r); err != nil {
		return err
	}
	set, err := s.opts.Budgets.GetBudgetSettings(r.Context(), teamID, "")
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, timeZoneJSON{TeamID: teamID, TimeZone: zoneName(set.TimeZone)})
	return nil
}

// putTimeZone is PUT /api/teams/{teamId}/time-zone (admin), body {"timeZone": "Europe/Berlin"}:
// where the team's daily budgets reset ("" = UTC).
func (s *Server) putTimeZone(w http.ResponseWriter, r *http.Request) error {
	teamID, _, err := s.thresholdScope(r)
	if err != nil {
		return err
	}
	if p, _ := PrincipalFrom(r.Context()); !p.Role.Allows(RoleAdmin) {
		return Forbidden("changing the time zone needs the admin role; the token has %s", p.Role)
	}
	var req struct {
		TimeZone *string `json:"timeZone"`
	}
	if err := decodeOptionalJSON(w, r, &req); err != nil {
		return err
	}
	if req.TimeZone == nil {
		return BadParam("timeZone", "is required (an IANA name such as Europe/Berlin, or \"\" for UTC)")
	}
	if _, err := budget.LoadTimeZone(*req.TimeZone); err != nil || strings.EqualFold(*req.TimeZone, "local") {
		return BadParam("timeZone", "%q is not an IANA time zone name (e.g. Europe/Berlin)", *req.TimeZone)
	}
	if err := s.opts.Budgets.SetTeamTimeZone(r.Context(), teamID, *req.TimeZone, auditActor(r)); err != nil {
		return err
	}
	if s.opts.BudgetChanged != nil {
		s.opts.BudgetChanged()
	}
	WriteJSON(w, http.StatusOK, timeZoneJSON{TeamID: teamID, TimeZone: zoneName(*req.TimeZone)})
	return nil
}

// optionalAmount parses a JSON amount in USD ("null": nil) for field.
func optionalAmount(field, raw string, maxAmount decimal.Decimal) (*decimal.Decimal, error) {
	raw = strings.TrimSpace(raw)
	switch raw {
	case "":
		return nil, BadParam(field, "is required (a positive amount in USD, or null for none)")
	case "null":
		return nil, nil
	}
	d, err := decimal.NewFromString(raw)
	switch {
	case err != nil || !strings.ContainsAny(raw[:1], "-0123456789"):
		return nil, BadParam(field, "%s is not a JSON number (e.g. 25 or 12.50)", raw)
	case !d.IsPositive():
		return nil, BadParam(field, "%s must be positive", d)
	case !d.Equal(d.Round(2)):
		return nil, BadParam(field, "%s has more than 2 decimals", raw)
	case d.GreaterThan(maxAmount):
		return nil, BadParam(field, "%s is above the maximum of %s USD", d, maxAmount)
	}
	d = d.Round(2)
	return &d, nil
}
