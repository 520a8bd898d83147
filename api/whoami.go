package api

import (
	"net/http"
	"slices"
	"time"

	"github.com/gorilla/mux"
)

// whoamiJSON is the body of GET /api/whoami: who the token is, so that a client (the web
// console) shows only what the caller may do, and the server's clock, so that it picks ranges
// from the server's "now" rather than its own.
type whoamiJSON struct {
	TeamID   string `json:"teamId"`
	TeamName string `json:"teamName"`
	Role     Role   `json:"role"`
	TokenID  string `json:"tokenId"`
	// Member is the member (e-mail) the token belongs to; absent for a team token.
	Member string `json:"member,omitempty"`
	// Operator is true when the token may use the operator endpoints (GET /api/usage/unmapped).
	Operator bool   `json:"operator"`
	Now      string `json:"now,omitempty"` // RFC 3339; absent when the query layer is not in this process
}

func (s *Server) registerWhoami(r *mux.Router) {
	r.Handle("/api/whoami", s.authed(RoleMember, s.whoami)).Methods(http.MethodGet)
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r); err != nil {
		WriteError(w, err)
		return
	}
	p, _ := PrincipalFrom(r.Context())
	out := whoamiJSON{
		TeamID: p.TeamID, Role: p.Role, TokenID: p.TokenID, Member: p.MemberEmail,
		Operator: p.Role == RoleAdmin && slices.Contains(s.opts.OperatorTeams, p.TeamID),
	}
	if s.opts.UsageProjects != nil {
		team, err := s.opts.UsageProjects.GetTeam(r.Context(), p.TeamID)
		if err != nil {
			s.usageFail(w, r, err)
			return
		}
		out.TeamName = team.Name
	}
	if s.opts.Usage != nil {
		out.Now = s.opts.Usage.Now().UTC().Format(time.RFC3339)
	}
	WriteJSON(w, http.StatusOK, out)
}
