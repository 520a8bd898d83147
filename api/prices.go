package api

// Negotiated prices (docs/api.md "Prices"): per-team and per-project overrides of the default
// price sheets. An override is a contract: a team's admin reads its own team's prices, only an
// operator token changes them; another team's prices answer 404 to everyone else.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/shopspring/decimal"

	"github.com/cygni/usage/config"
	"github.com/cygni/usage/query"
	"github.com/cygni/usage/store"
)

// PriceStore keeps the overrides and their audit trail (the metadata store).
type PriceStore interface {
	GetTeam(ctx context.Context, id string) (store.Team, error)
	GetProject(ctx context.Context, teamID, projectID string) (store.Project, error)
	ListPriceOverrides(ctx context.Context, teamID string) ([]store.PriceOverride, error)
	SetPriceOverride(ctx context.Context, teamID, projectID string, o config.PriceOverride, e store.AuditEvent) error
}

// PriceDeps are the dependencies of the price endpoints; nil PriceOverrides makes them answer
// 503.
type PriceDeps struct {
	PriceOverrides PriceStore
	// DefaultPrices are the sheets of the configuration (zero: the defaults).
	DefaultPrices query.Prices
	// PricesChanged, if set, is called (without blocking) after an override changed, so that the
	// derived cost gauges and the alerts price with it at once.
	PricesChanged func()
}

func (s *Server) registerPrices(r *mux.Router) {
	r.Handle("/api/teams/{teamId}/prices", s.authed(RoleMember, s.pricesHandler(s.getPrices))).Methods(http.MethodGet)
	r.Handle("/api/teams/{teamId}/prices", s.authed(RoleMember, s.pricesHandler(s.putPrices))).Methods(http.MethodPut)
	r.Handle("/api/teams/{teamId}/prices", s.authed(RoleMember, s.pricesHandler(s.deletePrices))).Methods(http.MethodDelete)
}

func (s *Server) pricesHandler(h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.opts.PriceOverrides == nil {
			WriteError(w, &Error{Kind: KindUnavailable, Code: "unavailable", Message: "the metadata store is not configured in this process"})
			return
		}
		if err := h(w, r); err != nil {
			var ae *Error
			if !errors.As(err, &ae) {
				var fe *config.PriceFieldError
				switch {
				case errors.As(err, &fe):
					err = BadParam(fe.Field, "%s", fe.Msg)
				case errors.Is(err, store.ErrNotFound):
					err = NotFound("%v", err)
				default:
					s.logger.Error("price endpoint", "path", r.URL.Path, "err", err)
					err = &Error{Kind: KindInternal, Code: "internal", Message: "internal error", Err: err}
				}
			}
			WriteError(w, err)
		}
	}
}

// isOperator reports whether the caller holds an operator token (an admin of operator_teams).
func (s *Server) isOperator(p Principal) bool {
	return p.Role == RoleAdmin && slices.Contains(s.opts.OperatorTeams, p.TeamID)
}

// priceScope resolves the route's team: the caller's own, or any team for an operator; else
// 404. change says whether the request changes prices (operators only: 403).
func (s *Server) priceScope(r *http.Request, change bool) (string, error) {
	p, _ := PrincipalFrom(r.Context())
	team := mux.Vars(r)["teamId"]
	op := s.isOperator(p)
	if team != p.TeamID && !op {
		return "", NotFound("team %q not found", team)
	}
	if change && !op {
		return "", Forbidden("negotiated prices are a contract: only an operator token (an admin of the configuration's operator_teams) may change them; the token has role %s in team %s", p.Role, p.TeamID)
	}
	if !change && !op && !p.Role.Allows(RoleAdmin) {
		return "", Forbidden("reading the team's prices needs the admin role; the token has %s", p.Role)
	}
	if _, err := s.opts.PriceOverrides.GetTeam(r.Context(), team); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return "", NotFound("team %q not found", team)
		}
		return "", err
	}
	return team, nil
}

// sheetJSON is one effective price sheet.
type sheetJSON struct {
	EffectiveFrom   *time.Time `json:"effectiveFrom"` // null: since always
	VCPUHour        string     `json:"vcpuHour"`
	MemoryGBHour    string     `json:"memoryGbHour"`
	EgressGB        string     `json:"egressGb"`
	StorageGBHour   string     `json:"storageGbHour"`
	MillionRequests string     `json:"millionRequests"`
}

type overrideJSON struct {
	ProjectID     string          `json:"projectId,omitempty"`
	EffectiveFrom time.Time       `json:"effectiveFrom"`
	Prices        json.RawMessage `json:"prices"` // {} : a reset to the sheet underneath
	UpdatedAt     time.Time       `json:"updatedAt"`
}

type projectPricesJSON struct {
	ProjectID string      `json:"projectId"`
	Effective []sheetJSON `json:"effective"`
}

type pricesJSON struct {
	TeamID    string              `json:"teamId"`
	Effective []sheetJSON         `json:"effective"` // the team's prices over time (a project without overrides of its own)
	Projects  []projectPricesJSON `json:"projects"`  // the projects with overrides of their own
	Overrides []overrideJSON      `json:"overrides"`
}

func sheetsJSON(p query.Prices) []sheetJSON {
	ss := p.EffectiveSheets()
	out := make([]sheetJSON, len(ss))
	for i, s := range ss {
		out[i] = sheetJSON{VCPUHour: s.VCPUHour.String(), MemoryGBHour: s.MemoryGBHour.String(), EgressGB: s.EgressGB.String(),
			StorageGBHour: s.StorageGBHour.String(), MillionRequests: s.MillionRequests.String()}
		if !s.EffectiveFrom.IsZero() {
			t := s.EffectiveFrom
			out[i].EffectiveFrom = &t
		}
	}
	return out
}

// pricesAnswer is the team's prices: the sheets in force over time for the team and for each
// project with its own overrides, and the override rows.
func (s *Server) pricesAnswer(ctx context.Context, teamID string) (pricesJSON, error) {
	rows, err := s.opts.PriceOverrides.ListPriceOverrides(ctx, teamID)
	if err != nil {
		return pricesJSON{}, err
	}
	var team []config.PriceOverride
	own := map[string][]config.PriceOverride{}
	out := pricesJSON{TeamID: teamID, Projects: []projectPricesJSON{}, Overrides: []overrideJSON{}}
	for _, r := range rows {
		if r.ProjectID == "" {
			team = append(team, r.PriceOverride)
		} else {
			own[r.ProjectID] = append(own[r.ProjectID], r.PriceOverride)
		}
		out.Overrides = append(out.Overrides, overrideJSON{ProjectID: r.ProjectID, EffectiveFrom: r.EffectiveFrom, Prices: json.RawMessage(r.PricesJSON()), UpdatedAt: r.UpdatedAt})
	}
	ov := map[string]query.ProjectOverrides{"": {Team: team}}
	for p, l := range own {
		ov[p] = query.ProjectOverrides{Team: team, Project: l}
	}
	def := s.opts.DefaultPrices.OrDefault()
	out.Effective = sheetsJSON(query.NewPriceList(def, map[string]query.ProjectOverrides{"": {Team: team}}).Of(""))
	ids := make([]string, 0, len(own))
	for p := range own {
		ids = append(ids, p)
	}
	slices.Sort(ids)
	for _, p := range ids {
		one := query.NewPriceList(def, map[string]query.ProjectOverrides{p: ov[p]})
		out.Projects = append(out.Projects, projectPricesJSON{ProjectID: p, Effective: sheetsJSON(one.Of(p))})
	}
	return out, nil
}

// getPrices is GET /api/teams/{teamId}/prices (the team's admins, operators).
func (s *Server) getPrices(w http.ResponseWriter, r *http.Request) error {
	team, err := s.priceScope(r, false)
	if err != nil {
		return err
	}
	if err := checkParams(r); err != nil {
		return err
	}
	out, err := s.pricesAnswer(r.Context(), team)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

// parseInstant reads an RFC 3339 instant of parameter name.
func parseInstant(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, BadParam(name, "is required (RFC 3339, e.g. 2026-12-15T00:00:00Z)")
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, BadParam(name, "%q is not an RFC 3339 instant (e.g. 2026-12-15T00:00:00Z)", v)
	}
	if t.Year() < 2000 || t.Year() > 9999 {
		return time.Time{}, BadParam(name, "%q is outside the years 2000 to 9999", v)
	}
	return t.UTC(), nil
}

// priceProject checks an optional project id of the team ("" : the team itself).
func (s *Server) priceProject(ctx context.Context, team, field, id string) error {
	if id == "" {
		return nil
	}
	if !store.ValidID(store.PrefixProject, id) {
		return BadParam(field, "%q is not a project id (proj_ followed by 1-64 letters, digits, '-' or '_')", id)
	}
	if _, err := s.opts.PriceOverrides.GetProject(ctx, team, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return NotFound("project %q not found in team %s", id, team)
		}
		return err
	}
	return nil
}

// priceAuditActor is the caller as the audit trail of a price change names them.
func priceAuditActor(r *http.Request) store.AuditEvent {
	e := auditActor(r)
	e.Actor = "operator-api"
	return e
}

// putPrices is PUT /api/teams/{teamId}/prices (operators), body {"projectId": "proj_…"
// (optional: the team's own prices without it), "effectiveFrom": "2026-12-15T00:00:00Z",
// "prices": {"vcpuHour": "0.04", …}}: from that instant on the prices given replace those
// underneath; the others follow the sheet underneath.
func (s *Server) putPrices(w http.ResponseWriter, r *http.Request) error {
	team, err := s.priceScope(r, true)
	if err != nil {
		return err
	}
	var req struct {
		ProjectID     string                     `json:"projectId"`
		EffectiveFrom *string                    `json:"effectiveFrom"`
		Prices        map[string]json.RawMessage `json:"prices"`
	}
	if err := decodeOptionalJSON(w, r, &req); err != nil {
		return err
	}
	if req.EffectiveFrom == nil {
		return BadParam("effectiveFrom", "is required (RFC 3339, e.g. 2026-12-15T00:00:00Z)")
	}
	from, err := parseInstant("effectiveFrom", *req.EffectiveFrom)
	if err != nil {
		return err
	}
	if len(req.Prices) == 0 {
		return BadParam("prices", "is required: at least one of %s (DELETE resets to the sheet underneath)", strings.Join(config.PriceFieldNames, ", "))
	}
	o := config.PriceOverride{EffectiveFrom: from}
	for name, raw := range req.Prices {
		field := "prices." + name
		if !slices.Contains(config.PriceFieldNames, name) {
			return BadParam(field, "is not a price (known: %s)", strings.Join(config.PriceFieldNames, ", "))
		}
		v, err := decimalValue(raw)
		if err != nil {
			return BadParam(field, "%v", err)
		}
		if err := o.SetField(name, &v); err != nil {
			return BadParam(field, "%v", err)
		}
	}
	if err := o.Validate(); err != nil {
		var fe *config.PriceFieldError
		if errors.As(err, &fe) && fe.Field != "effectiveFrom" {
			return BadParam("prices."+fe.Field, "%s", fe.Msg)
		}
		return err
	}
	return s.changePrices(w, r, team, req.ProjectID, "projectId", o)
}

// decimalValue reads a price: a JSON string ("0.04") or number (0.04), from its text.
func decimalValue(raw json.RawMessage) (decimal.Decimal, error) {
	t := string(bytes.TrimSpace(raw))
	if strings.HasPrefix(t, `"`) {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return decimal.Decimal{}, err
		}
		t = s
	}
	d, err := decimal.NewFromString(t)
	if err != nil || t == "" || !strings.ContainsAny(t[:1], "-0123456789") {
		return decimal.Decimal{}, errors.New(orNothing(t) + " is not a decimal price (e.g. \"0.04\")")
	}
	return d, nil
}

// deletePrices is DELETE /api/teams/{teamId}/prices?effectiveFrom=…[&projectId=…] (operators):
// from that instant on the team (or project) is priced by the sheet underneath again. The
// hours before keep the override; nothing is erased.
func (s *Server) deletePrices(w http.ResponseWriter, r *http.Request) error {
	team, err := s.priceScope(r, true)
	if err != nil {
		return err
	}
	if err := checkParams(r, "effectiveFrom", "projectId"); err != nil {
		return err
	}
	q := r.URL.Query()
	from, err := parseInstant("effectiveFrom", q.Get("effectiveFrom"))
	if err != nil {
		return err
	}
	return s.changePrices(w, r, team, q.Get("projectId"), "projectId", config.PriceOverride{EffectiveFrom: from})
}

func (s *Server) changePrices(w http.ResponseWriter, r *http.Request, team, project, field string, o config.PriceOverride) error {
	if err := s.priceProject(r.Context(), team, field, project); err != nil {
		return err
	}
	if err := s.opts.PriceOverrides.SetPriceOverride(r.Context(), team, project, o, priceAuditActor(r)); err != nil {
		return err
	}
	if s.opts.PricesChanged != nil {
		s.opts.PricesChanged()
	}
	out, err := s.pricesAnswer(r.Context(), team)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}
