package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A team's cursor names a position in its own list only: another team's list refuses it, and it
// does not contain the global sequence number in any readable form.
func TestOpaqueCursorsAndBillingRefs(t *testing.T) {
	backendsWith(t, func(t *testing.T, open opener) {
		ctx := context.Background()
		s := open(t, Options{})
		mustTeam(t, s, "team_a")
		mustTeam(t, s, "team_b")
		for range 3 {
			if _, err := s.CreateNotification(ctx, Notification{TeamID: "team_a", Type: "usage_anomaly", Severity: "info", Message: "a"}); err != nil {
				t.Fatal(err)
			}
		}
		p, err := s.ListNotifications(ctx, "team_a", NotificationQuery{Limit: 1})
		if err != nil || p.NextCursor == "" {
			t.Fatalf("page %+v %v", p, err)
		}
		if _, err := s.ListNotifications(ctx, "team_b", NotificationQuery{Limit: 1, Cursor: p.NextCursor}); !errors.Is(err, ErrBadCursor) {
			t.Fatalf("team_b with team_a's cursor: %v, want ErrBadCursor", err)
		}
		// The key is the installation's: a second store on the same database reads the cursor.
		s2 := open(t, Options{})
		p2, err := s2.ListNotifications(ctx, "team_a", NotificationQuery{Limit: 1, Cursor: p.NextCursor})
		if err != nil || len(p2.Items) != 1 {
			t.Fatalf("second store: %+v %v", p2, err)
		}
		// Consecutive row ids give unrelated refs, each valid only for its team.
		r1, r2 := s.BillingReportRef("team_a", 1), s.BillingReportRef("team_a", 2)
		if r1 == r2 || r1[:8] == r2[:8] {
			t.Fatalf("refs %q and %q share a prefix beyond brp_", r1, r2)
		}
		if id, err := s2.ParseBillingReportRef("team_a", r2); err != nil || id != 2 {
			t.Fatalf("parse %q = %d, %v", r2, id, err)
		}
		for _, bad := range []string{r2[:len(r2)-1], "brp_", "2", s.BillingReportRef("team_b", 2), s.encodeCursor("team_a", 2)} {
			if _, err := s.ParseBillingReportRef("team_a", bad); !errors.Is(err, ErrNotFound) {
				t.Errorf("parse %q: %v, want ErrNotFound", bad, err)
			}
		}
	})
}

func TestTokenExpiry(t *testing.T) {
	backendsWith(t, func(t *testing.T, open opener) {
		ctx := context.Background()
		now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
		s := open(t, Options{Now: func() time.Time { return now }})
		mustTeam(t, s, "team_a")
		plain, tok, err := s.CreateTokenExpiring(ctx, "team_a", "member", "ci", now.Add(90*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if tok.ExpiresAt == nil || !tok.ExpiresAt.Equal(now.Add(90*24*time.Hour)) {
			t.Fatalf("expires %v", tok.ExpiresAt)
		}
		if _, err := s.VerifyToken(ctx, plain); err != nil {
			t.Fatalf("before expiry: %v", err)
		}
		ts, err := s.ListTokens(ctx, "team_a")
		if err != nil || len(ts) != 1 || ts[0].ExpiresAt == nil || ts[0].LastUsedAt == nil || !ts[0].LastUsedAt.Equal(now) {
			t.Fatalf("list %+v %v", ts, err)
		}
		now = now.Add(90 * 24 * time.Hour)
		if _, err := s.VerifyToken(ctx, plain); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("at expiry: %v, want ErrInvalidToken", err)
		}
		never, _, err := s.CreateToken(ctx, "team_a", "member", "forever")
		if err != nil {
			t.Fatal(err)
		}
		now = now.Add(10 * 365 * 24 * time.Hour)
		if _, err := s.VerifyToken(ctx, never); err != nil {
			t.Fatalf("token without expiry: %v", err)
		}
		if _, _, err := s.CreateTokenExpiring(ctx, "team_a", "member", "past", now.Add(-time.Second)); err == nil {
			t.Fatal("a token expiring in the past was created")
		}
	})
}
