package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cygni/usage/store"
)

// TokenVerifier resolves a bearer token to its caller. It returns store.ErrInvalidToken (or an
// error wrapping it) for an unknown, malformed or revoked token.
type TokenVerifier interface {
	VerifyToken(ctx context.Context, token string) (Principal, error)
}

// AuthDeps are the dependencies of the auth middleware.
type AuthDeps struct {
	Tokens TokenVerifier
}

// rank orders roles: admin may do what billing may, billing what member may.
var rank = map[Role]int{RoleMember: 1, RoleBilling: 2, RoleAdmin: 3}

// Allows reports whether a caller with role r may use an endpoint that needs min.
func (r Role) Allows(min Role) bool { return rank[r] >= rank[min] && rank[r] > 0 }

// authed wraps h so that it runs only for a valid bearer token whose role allows min; the
// Principal is in the request's context (PrincipalFrom). Missing or invalid token → 401,
// insufficient role → 403, both with the JSON error body. h then runs within the REST limits
// (restLimited). The Prometheus API uses promAuthed instead.
func (s *Server) authed(min Role, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r)
		if err != nil {
			WriteError(w, err)
			return
		}
		if !p.Role.Allows(min) {
			WriteError(w, Forbidden("this endpoint needs the %s role; the token has %s", min, p.Role))
			return
		}
		s.restLimited(w, r.WithContext(WithPrincipal(r.Context(), p)), h)
	})
}

// restLimited runs h within one of the team's REST slots and limits.rest.timeout; an answer
// that failed because the timeout passed is replaced by a 422 naming the limit.
func (s *Server) restLimited(w http.ResponseWriter, r *http.Request, h http.HandlerFunc) {
	ctx, cancel := context.WithTimeout(r.Context(), s.lim.RESTTimeout)
	defer cancel()
	p, _ := PrincipalFrom(ctx)
	release, err := s.restSlots.acquire(ctx, p.TeamID)
	if err != nil {
		var le *limitError
		switch {
		case errors.As(err, &le):
			if le.status == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "1")
			}
			WriteError(w, le.restError())
		case errors.Is(err, context.DeadlineExceeded):
			WriteError(w, restTimeout(s.lim.RESTTimeout).restError())
		}
		return // else the client left
	}
	defer release()
	hw := &holdWriter{ResponseWriter: w}
	hw.replace = func(status int) bool {
		if status >= 500 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			WriteError(w, restTimeout(s.lim.RESTTimeout).restError())
			return true
		}
		return false
	}
	h(hw, r.WithContext(ctx))
	hw.finish()
}

func restTimeout(d time.Duration) *limitError {
	return refuse(http.StatusUnprocessableEntity, "limits.rest.timeout", "the request took longer than %s; narrow the range or the projects", d)
}

// operator wraps h so that it runs only for an admin token of one of the operator teams
// (Options.OperatorTeams): the endpoints that act across every team. Any other valid token is
// a 403 that says why.
func (s *Server) operator(h http.HandlerFunc) http.Handler {
	return s.authed(RoleAdmin, func(w http.ResponseWriter, r *http.Request) {
		p, _ := PrincipalFrom(r.Context())
		if !slices.Contains(s.opts.OperatorTeams, p.TeamID) {
			WriteError(w, Forbidden("this endpoint acts across all teams and is for operators; team %s is not in the configuration's operator_teams", p.TeamID))
			return
		}
		h(w, r)
	})
}

// authenticate resolves the request's bearer token: a missing, malformed, unknown or revoked
// token is a 401; a verifier failure is a 500 (logged), never an accidental pass.
func (s *Server) authenticate(r *http.Request) (Principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return Principal{}, Unauthorized("missing bearer token: send the header \"Authorization: Bearer\" followed by the token")
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return Principal{}, Unauthorized("the Authorization header is not \"Bearer\" followed by a token")
	}
	if s.opts.Tokens == nil {
		return Principal{}, Unauthorized("authentication is not configured")
	}
	p, err := s.opts.Tokens.VerifyToken(r.Context(), strings.TrimSpace(token))
	if errors.Is(err, store.ErrInvalidToken) {
		return Principal{}, Unauthorized("invalid, revoked or expired token")
	}
	if err != nil {
		s.logger.Error("verify bearer token; answering 500", "err", err)
		return Principal{}, &Error{Kind: KindInternal, Code: "internal", Message: "verify token", Err: err}
	}
	return p, nil
}

// TokenStore is what StoreTokens needs from the metadata store.
type TokenStore interface {
	VerifyToken(ctx context.Context, plaintext string) (store.Token, error)
}

// StoreTokens adapts the metadata store's tokens to a TokenVerifier.
func StoreTokens(ts TokenStore) TokenVerifier { return storeTokens{ts} }

type storeTokens struct{ ts TokenStore }

func (a storeTokens) VerifyToken(ctx context.Context, token string) (Principal, error) {
	t, err := a.ts.VerifyToken(ctx, token)
	if err != nil {
		return Principal{}, err
	}
	return Principal{TeamID: t.TeamID, Role: Role(t.Role), TokenID: t.ID, MemberEmail: t.MemberEmail}, nil
}
