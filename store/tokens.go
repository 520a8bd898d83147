package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// TokenPrefix starts every API token: "cyg_<16 hex digits of the id>_<43 characters of secret>".
const TokenPrefix = "cyg_"

// lastUsedGranularity bounds how often VerifyToken writes last_used_at for one token.
const lastUsedGranularity = time.Minute

// CreateToken mints a token for a team with a role. The plaintext is returned once and never
// stored: the store keeps its SHA-256. An unknown team is ErrNotFound.
func (s *Store) CreateToken(ctx context.Context, teamID, role, name string) (string, Token, error) {
	return s.CreateTokenExpiring(ctx, teamID, role, name, time.Time{})
}

// CreateTokenExpiring is CreateToken for a token that VerifyToken refuses from expiresAt on;
// the zero time: never.
func (s *Store) CreateTokenExpiring(ctx context.Context, teamID, role, name string, expiresAt time.Time) (string, Token, error) {
	if !ValidRole(role) {
		return "", Token{}, fmt.Errorf("create token: role %q; want admin, billing or member", role)
	}
	var idb [8]byte
	var secret [32]byte
	_, _ = rand.Read(idb[:])
	_, _ = rand.Read(secret[:])
	idPart := hex.EncodeToString(idb[:])
	plaintext := TokenPrefix + idPart + "_" + base64.RawURLEncoding.EncodeToString(secret[:])
	sum := sha256.Sum256([]byte(plaintext))
	t := Token{ID: PrefixToken + idPart, TeamID: teamID, Role: role, Name: name, CreatedAt: s.now()}
	var exp any
	if !expiresAt.IsZero() {
		e := expiresAt.UTC().Truncate(time.Microsecond)
		if !e.After(t.CreatedAt) {
			return "", Token{}, fmt.Errorf("create token: it would expire at %s, not after now (%s)", e.Format(time.RFC3339), t.CreatedAt.Format(time.RFC3339))
		}
		t.ExpiresAt, exp = &e, e
	}
	_, err := s.exec(ctx, "INSERT INTO tokens (id, team_id, role, name, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
		t.ID, t.TeamID, t.Role, t.Name, sum[:], t.CreatedAt, exp)
	if isForeignKeyViolation(err) {
		return "", Token{}, fmt.Errorf("create token: team %s: %w", teamID, ErrNotFound)
	}
	if err != nil {
		return "", Token{}, fmt.Errorf("create token for team %s: %w", teamID, err)
	}
	return plaintext, t, nil
}

// parseToken returns the token id of a well-formed plaintext token.
func parseToken(plaintext string) (string, bool) {
	rest, ok := strings.CutPrefix(plaintext, TokenPrefix)
	if !ok {
		return "", false
	}
	idPart, secret, ok := strings.Cut(rest, "_")
	if !ok || len(idPart) != 16 || len(secret) != 43 {
		return "", false
	}
	if _, err := hex.DecodeString(idPart); err != nil {
		return "", false
	}
	return PrefixToken + idPart, true
}

const tokenColumns = "id, team_id, role, name, created_at, last_used_at, revoked_at, expires_at, member_email"

func scanToken(sc interface{ Scan(...any) error }, extra ...any) (Token, error) {
	var t Token
	var used, revoked, expires sql.NullTime
	if err := sc.Scan(append([]any{&t.ID, &t.TeamID, &t.Role, &t.Name, &t.CreatedAt, &used, &revoked, &expires, &t.MemberEmail}, extra...)...); err != nil {
		return Token{}, err
	}
	t.CreatedAt = t.CreatedAt.UTC()
	if used.Valid {
		u := used.Time.UTC()
		t.LastUsedAt = &u
	}
	if revoked.Valid {
		r := revoked.Time.UTC()
		t.RevokedAt = &r
	}
	if expires.Valid {
		e := expires.Time.UTC()
		t.ExpiresAt = &e
	}
	return t, nil
}

// VerifyToken resolves a plaintext token. Unknown, malformed, revoked and expired tokens are
// ErrInvalidToken. The hash is compared in constant time; last_used_at is written at most once
// a minute per token.
func (s *Store) VerifyToken(ctx context.Context, plaintext string) (Token, error) {
	id, ok := parseToken(plaintext)
	if !ok {
		return Token{}, ErrInvalidToken
	}
	var hash []byte
	t, err := scanToken(s.db.QueryRowContext(ctx, s.rebind("SELECT "+tokenColumns+", hash FROM tokens WHERE id = ?"), id), &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, ErrInvalidToken
	}
	if err != nil {
		return Token{}, fmt.Errorf("verify token: %w", err)
	}
	sum := sha256.Sum256([]byte(plaintext))
	if subtle.ConstantTimeCompare(sum[:], hash) != 1 || t.RevokedAt != nil {
		return Token{}, ErrInvalidToken
	}
	now := s.now()
	if t.ExpiresAt != nil && !now.Before(*t.ExpiresAt) {
		return Token{}, fmt.Errorf("token %s expired at %s: %w", t.ID, t.ExpiresAt.Format(time.RFC3339), ErrInvalidToken)
	}
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) >= lastUsedGranularity {
		if _, err := s.exec(ctx, "UPDATE tokens SET last_used_at = ? WHERE id = ?", now, t.ID); err != nil {
			s.logger.Warn("record token use; the token is accepted anyway", "token", t.ID, "err", err)
		} else {
			t.LastUsedAt = &now
		}
	}
	return t, nil
}

// RevokeToken revokes a team's token; ErrNotFound for another team's. Revoking twice keeps
// the first time.
func (s *Store) RevokeToken(ctx context.Context, teamID, tokenID string) error {
	res, err := s.exec(ctx, "UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? AND team_id = ?", s.now(), tokenID, teamID)
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", tokenID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("revoke token %s: %w", tokenID, ErrNotFound)
	}
	return nil
}

// ListTokens returns a team's tokens (never their secrets), oldest first.
func (s *Store) ListTokens(ctx context.Context, teamID string) ([]Token, error) {
	rows, err := s.db.QueryContext(ctx, s.rebind("SELECT "+tokenColumns+" FROM tokens WHERE team_id = ? ORDER BY created_at, id"), teamID)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var ts []Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		ts = append(ts, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return ts, nil
}
