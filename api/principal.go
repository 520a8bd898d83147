package api

import "context"

// Role is what a token may do.
type Role string

// Roles, from most to least powerful.
const (
	RoleAdmin   Role = "admin"
	RoleBilling Role = "billing"
	RoleMember  Role = "member"
)

// Principal is the authenticated caller: a token of one team with one role.
type Principal struct {
	TeamID  string
	Role    Role
	TokenID string
	// MemberEmail is the member the token belongs to; "" for a team token.
	MemberEmail string
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the caller set by the auth middleware.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
