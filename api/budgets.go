package api

// Budgets the way customers set them (docs/api.md "Alert thresholds", "Audit trail"): the
// threshold lists of a project and of a team (their default), a member's mute of a project's
// warnings, and the audit trail of every change.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/shopspring/decimal"

	"github.com/cygni/usage/budget"
	"github.com/cygni/usage/store"
)

// BudgetStore is what the threshold, mute and audit endpoints need (the metadata store).
type BudgetStore interface {
	GetTeam(ctx context.Context, id string) (store.Team, error)
	GetProject(ctx context.Context, teamID, projectID string) (store.Project, error)
	GetBudgetSettings(ctx context.Context, teamID, projectID string) (store.BudgetSettings, error)
	SetThresholds(ctx context.Context, teamID, projectID string, list []budget.Threshold, e store.AuditEvent) error
	SetTeamBudget(ctx context.Context, teamID string, limit *decimal.Decimal, e store.AuditEvent) error
	SetDailyBudget(ctx context.Context, teamID, projectID string, limit *decimal.Decimal, e store.AuditEvent) error
	SetTeamTimeZone(ctx context.Context, teamID, zone string, e store.AuditEvent) error
	SetMute(ctx context.Context, teamID, projectID, email string, muted bool, e store.AuditEvent) error
	Mutes(ctx context.Context, teamID string) (map[string][]string, error)
	ListAudit(ctx context.Context, teamID string, q store.AuditQuery) ([]store.AuditEvent, error)
	RecordAudit(ctx context.Context, e store.AuditEvent) error
}

// BudgetDeps are the dependencies of these endpoints; nil Budgets makes them answer 503.
type BudgetDeps struct {
	Budgets BudgetStore
	// BudgetChanged, if set, is called (without blocking) after thresholds changed, so that the
	// exported threshold series and the alerts see them at once.
	BudgetChanged func()
}

func (s *Server) registerBudgets(r *mux.Router) {
	r.Handle("/api/projects/{projectId}/thresholds", s.authed(RoleMember, s.budgetHandler(s.getThresholds))).Methods(http.MethodGet)
	r.Handle("/api/projects/{projectId}/thresholds", s.authed(RoleMember, s.budgetHandler(s.putThresholds))).Methods(http.MethodPut)
	r.Handle("/api/teams/{teamId}/thresholds", s.authed(RoleMember, s.budgetHandler(s.getThresholds))).Methods(http.MethodGet)
	r.Handle("/api/teams/{teamId}/thresholds", s.authed(RoleMember, s.budgetHandler(s.putThresholds))).Methods(http.MethodPut)
	r.Handle("/api/projects/{projectId}/mute", s.authed(RoleMember, s.budgetHandler(s.getMute))).Methods(http.MethodGet)
	r.Handle("/api/projects/{projectId}/mute", s.authed(RoleMember, s.budgetHandler(s.putMute))).Methods(http.MethodPut)
	r.Handle("/api/audit", s.authed(RoleAdmin, s.budgetHandler(s.listAudit))).Methods(http.MethodGet)
	s.registerTeamBudget(r)
	s.registerDailyBudget(r)
}

func (s *Server) budgetHandler(h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Budgets == nil {
			WriteError(w, &Error{Kind: KindUnavailable, Code: "unavailable", Message: "the metadata store is not configured in this process"})
			return
		}
		if err := h(w, r); err != nil {
			var ae *Error
			if !errors.As(err, &ae) {
				if errors.Is(err, store.ErrNotFound) {
					err = NotFound("%v", err)
				} else {
					s.logger.Error("budget endpoint", "path", r.URL.Path, "err", err)
					err = &Error{Kind: KindInternal, Code: "internal", Message: "internal error", Err: err}
				}
			}
			WriteError(w, err)
		}
	}
}

// auditActor is the caller as the audit trail names them.
func auditActor(r *http.Request) store.AuditEvent {
	p, _ := PrincipalFrom(r.Context())
	return store.AuditEvent{TeamID: p.TeamID, ActorToken: p.TokenID, ActorMember: p.MemberEmail, Actor: "api"}
}

// recordAudit appends an audit event of a change another endpoint made (when the store keeps
// an audit trail); a failure is logged, the change stands.
func (s *Server) recordAudit(r *http.Request, teamID, action, target, old, new string) {
	if s.opts.Budgets == nil {
		return
	}
	e := auditActor(r)
	e.TeamID, e.Action, e.Target, e.Old, e.New = teamID, action, target, old, new
	if err := s.opts.Budgets.RecordAudit(r.Context(), e); err != nil {
		s.logger.Error("record audit event; the change was made", "action", action, "target", target, "err", err)
	}
}

// thresholdScope resolves the route's team or project: the caller's own, else 404.
func (s *Server) thresholdScope(r *http.Request) (teamID, projectID string, err error) {
	p, _ := PrincipalFrom(r.Context())
	vars := mux.Vars(r)
	if t, ok := vars["teamId"]; ok {
		if t != p.TeamID {
			return "", "", NotFound("team %q not found", t)
		}
		return t, "", nil
	}
	projectID = vars["projectId"]
	if !store.ValidID(store.PrefixProject, projectID) {
		return "", "", BadParam("projectId", "%q is not a project id (proj_ followed by 1-64 letters, digits, '-' or '_')", projectID)
	}
	if _, err := s.opts.Budgets.GetProject(r.Context(), p.TeamID, projectID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return "", "", NotFound("project %q not found", projectID)
		}
		return "", "", err
	}
	return p.TeamID, projectID, nil
}

// recipientsJSON is budget.Recipients with emails always a list.
type thresholdJSON struct {
	Percent    json.Number       `json:"percent"`
	Basis      string            `json:"basis"`
	Recipients budget.Recipients `json:"recipients"`
	Fixed      bool              `json:"fixed"`
}

type thresholdsJSON struct {
	TeamID     string          `json:"teamId"`
	ProjectID  string          `json:"projectId,omitempty"`
	Source     string          `json:"source"` // project | team | default: where the list in force comes from
	Thresholds []thresholdJSON `json:"thresholds"`
}

func toThresholdsJSON(list []budget.Threshold) []thresholdJSON {
	out := make([]thresholdJSON, len(list))
	for i, t := range list {
		r := t.Recipients
		if r.Emails == nil {
			r.Emails = []string{}
		}
		out[i] = thresholdJSON{Percent: json.Number(t.Percent.String()), Basis: t.Basis, Recipients: r, Fixed: t.Fixed()}
	}
	return out
}

func (s *Server) thresholdsAnswer(ctx context.Context, teamID, projectID string) (thresholdsJSON, error) {
	team, err := s.opts.Budgets.GetBudgetSettings(ctx, teamID, "")
	if err != nil {
		return thresholdsJSON{}, err
	}
	out := thresholdsJSON{TeamID: teamID, ProjectID: projectID, Source: "default"}
	list := budget.DefaultThresholds()
	if team.Thresholds != nil {
		out.Source, list = "team", team.Thresholds
	}
	if projectID != "" {
		own, err := s.opts.Budgets.GetBudgetSettings(ctx, teamID, projectID)
		if err != nil {
			return thresholdsJSON{}, err
		}
		if own.Thresholds != nil {
			out.Source, list = "project", own.Thresholds
		}
	}
	out.Thresholds = toThresholdsJSON(list)
	return out, nil
}

// getThresholds is GET /api/projects/{projectId}/thresholds and GET /api/teams/{teamId}/thresholds
// (member): the list in force and where it comes from.
func (s *Server) getThresholds(w http.ResponseWriter, r *http.Request) error {
	teamID, projectID, err := s.thresholdScope(r)
	if err != nil {
		return err
	}
	out, err := s.thresholdsAnswer(r.Context(), teamID, projectID)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

// putThresholds is PUT …/thresholds (admin), body {"thresholds": [{"percent": 50, "basis":
// "forecast", "recipients": {…}}]}; {"thresholds": null} clears the list (the project inherits
// its team's, the team the seed's). The fixed 80 % and 100 % thresholds are always kept.
func (s *Server) putThresholds(w http.ResponseWriter, r *http.Request) error {
	teamID, projectID, err := s.thresholdScope(r)
	if err != nil {
		return err
	}
	if p, _ := PrincipalFrom(r.Context()); !p.Role.Allows(RoleAdmin) {
		return Forbidden("changing thresholds needs the admin role; the token has %s", p.Role)
	}
	var req struct {
		Thresholds json.RawMessage `json:"thresholds"`
	}
	if err := decodeOptionalJSON(w, r, &req); err != nil {
		return err
	}
	var entries []struct {
		Percent    json.RawMessage    `json:"percent"`
		Basis      string             `json:"basis"`
		Recipients *budget.Recipients `json:"recipients"`
	}
	switch strings.TrimSpace(string(req.Thresholds)) {
	case "":
		return BadParam("thresholds", "is required (a list, or null to inherit)")
	case "null":
	default:
		if err := strictJSON(req.Thresholds, &entries); err != nil {
			return BadParam("thresholds", "%v", err)
		}
		if entries == nil {
			entries = []struct {
				Percent    json.RawMessage    `json:"percent"`
				Basis      string             `json:"basis"`
				Recipients *budget.Recipients `json:"recipients"`
			}{}
		}
	}
	var list []budget.Threshold
	if entries != nil {
		if len(entries) > budget.MaxThresholds {
			return BadParam("thresholds", "at most %d thresholds, got %d", budget.MaxThresholds, len(entries))
		}
		list = []budget.Threshold{}
		for i, t := range entries {
			p := strings.TrimSpace(string(t.Percent))
			d, err := decimal.NewFromString(p)
			if p == "" || p == "null" || err != nil || !strings.ContainsAny(p[:1], "-0123456789") {
				return BadParam("thresholds["+strconv.Itoa(i)+"].percent", "%s is not a JSON number (e.g. 50 or 75.5)", orNothing(p))
			}
			th := budget.Threshold{Percent: d, Basis: t.Basis}
			if t.Recipients != nil {
				th.Recipients = *t.Recipients
			} else {
				th.Recipients = budget.Recipients{BillingContact: true, Webhook: true}
			}
			list = append(list, th)
		}
		n, err := budget.NormalizeThresholds(list)
		if err != nil {
			var te *budget.ThresholdError
			if errors.As(err, &te) && te.Index >= 0 {
				return BadParam("thresholds["+strconv.Itoa(te.Index)+"]."+te.Field, "%s", te.Msg)
			}
			return BadParam("thresholds", "%v", err)
		}
		list = n
	}
	if err := s.opts.Budgets.SetThresholds(r.Context(), teamID, projectID, list, auditActor(r)); err != nil {
		return err
	}
	if s.opts.BudgetChanged != nil {
		s.opts.BudgetChanged()
	}
	out, err := s.thresholdsAnswer(r.Context(), teamID, projectID)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

// strictJSON decodes b into dst, refusing unknown fields.
func strictJSON(b []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(dst)
}

func orNothing(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

// noMember is the answer to a mute of a token that belongs to no member.
var noMember = &Error{Kind: KindBadRequest, Code: "no_member", Message: "this token belongs to no member; mute with a member's token (cygni-usage token create --member EMAIL)"}

// getMute is GET /api/projects/{projectId}/mute (member): whether the token's member muted the
// project's warnings.
func (s *Server) getMute(w http.ResponseWriter, r *http.Request) error {
	teamID, projectID, err := s.thresholdScope(r)
	if err != nil {
		return err
	}
	if err := checkParams(r); err != nil {
		return err
	}
	p, _ := PrincipalFrom(r.Context())
	if p.MemberEmail == "" {
		return noMember
	}
	mutes, err := s.opts.Budgets.Mutes(r.Context(), teamID)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, map[string]any{"projectId": projectID, "member": p.MemberEmail, "muted": slices.Contains(mutes[projectID], strings.ToLower(p.MemberEmail))})
	return nil
}

// putMute is PUT /api/projects/{projectId}/mute (member), body {"muted": true|false}: the
// token's member stops (or resumes) getting the project's warnings. Exceeded alerts to admins
// are never muted.
func (s *Server) putMute(w http.ResponseWriter, r *http.Request) error {
	teamID, projectID, err := s.thresholdScope(r)
	if err != nil {
		return err
	}
	p, _ := PrincipalFrom(r.Context())
	if p.MemberEmail == "" {
		return noMember
	}
	var req struct {
		Muted *bool `json:"muted"`
	}
	if err := decodeOptionalJSON(w, r, &req); err != nil {
		return err
	}
	if req.Muted == nil {
		return BadParam("muted", "is required (true or false)")
	}
	if err := s.opts.Budgets.SetMute(r.Context(), teamID, projectID, p.MemberEmail, *req.Muted, auditActor(r)); err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, map[string]any{"projectId": projectID, "member": p.MemberEmail, "muted": *req.Muted})
	return nil
}

type auditJSON struct {
	ID          int64     `json:"id"`
	At          time.Time `json:"at"`
	ActorToken  string    `json:"actorToken"`
	ActorMember string    `json:"actorMember"`
	Actor       string    `json:"actor"`
	Action      string    `json:"action"`
	Target      string    `json:"target"`
	Old         string    `json:"old"`
	New         string    `json:"new"`
}

// listAudit is GET /api/audit (admin): the team's changes, newest first; ?before=<id> pages,
// ?limit= (1-1000, default 100), ?action= filters. There is no endpoint that edits it.
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) error {
	p, _ := PrincipalFrom(r.Context())
	q := store.AuditQuery{Limit: 100}
	v := r.URL.Query()
	for k := range v {
		switch k {
		case "before", "limit", "action":
		default:
			return BadParam(k, "is not a parameter of /api/audit (known: before, limit, action)")
		}
	}
	if b := v.Get("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return BadParam("before", "%q is not a positive event id", b)
		}
		q.Before = n
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return BadParam("limit", "%q is not a whole number from 1 to 1000", l)
		}
		q.Limit = n
	}
	q.Action = v.Get("action")
	evs, err := s.opts.Budgets.ListAudit(r.Context(), p.TeamID, q)
	if err != nil {
		return err
	}
	out := struct {
		Events []auditJSON `json:"events"`
		Next   string      `json:"next,omitempty"`
	}{Events: []auditJSON{}}
	for _, e := range evs {
		out.Events = append(out.Events, auditJSON{ID: e.ID, At: e.At, ActorToken: e.ActorToken, ActorMember: e.ActorMember, Actor: e.Actor,
			Action: e.Action, Target: e.Target, Old: e.Old, New: e.New})
	}
	if len(evs) == q.Limit && len(evs) > 0 {
		out.Next = "/api/audit?before=" + strconv.FormatInt(evs[len(evs)-1].ID, 10) + "&limit=" + strconv.Itoa(q.Limit)
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}
