package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/cygni/usage/budget"
)

// Thresholds, mutes and the audit trail on both backends: a change and its audit event are one
// transaction; the audit lists old → new with the actor, newest first, per team only.
func TestBudgetSettingsAndAudit(t *testing.T) {
	backendsWith(t, func(t *testing.T, open opener) {
		ctx := context.Background()
		now := time.Date(2025, 3, 30, 1, 30, 0, 0, time.UTC)
		s := open(t, Options{Now: func() time.Time { return now }})
		for _, id := range []string{"team_a", "team_b"} {
			if _, err := s.CreateTeam(ctx, Team{ID: id, Name: id}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.CreateProject(ctx, Project{ID: "proj_1", TeamID: "team_a", Name: "p"}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddMember(ctx, Member{TeamID: "team_a", Email: "dev@a.test", Role: "member"}); err != nil {
			t.Fatal(err)
		}
		list, err := budget.NormalizeThresholds([]budget.Threshold{{Percent: decimal.NewFromInt(50), Basis: budget.BasisForecast, Recipients: budget.Recipients{Emails: []string{"x@a.test"}}}})
		if err != nil {
			t.Fatal(err)
		}
		actor := AuditEvent{ActorToken: "tok_1", ActorMember: "ana@a.test", Actor: "api"}
		if err := s.SetThresholds(ctx, "team_a", "proj_1", list, actor); err != nil {
			t.Fatal(err)
		}
		if err := s.SetThresholds(ctx, "team_b", "proj_1", list, actor); !errors.Is(err, ErrNotFound) {
			t.Fatalf("another team's project: %v, want ErrNotFound", err)
		}
		got, err := s.GetBudgetSettings(ctx, "team_a", "proj_1")
		if err != nil {
			t.Fatal(err)
		}
		if EncodeThresholds(got.Thresholds) != EncodeThresholds(list) {
			t.Fatalf("read back %s, want %s", EncodeThresholds(got.Thresholds), EncodeThresholds(list))
		}
		if err := s.SetThresholds(ctx, "team_a", "proj_1", nil, actor); err != nil {
			t.Fatal(err)
		}
		if err := s.SetMute(ctx, "team_a", "proj_1", "DEV@a.test", true, AuditEvent{ActorToken: "tok_2", ActorMember: "dev@a.test"}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetMute(ctx, "team_a", "proj_1", "dev@a.test", true, AuditEvent{}); err != nil { // no change: no event
			t.Fatal(err)
		}
		if err := s.SetMute(ctx, "team_a", "proj_1", "eve@b.test", true, AuditEvent{}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("mute of a non-member: %v", err)
		}
		m, err := s.Mutes(ctx, "team_a")
		if err != nil || len(m["proj_1"]) != 1 || m["proj_1"][0] != "dev@a.test" {
			t.Fatalf("mutes %v %v", m, err)
		}
		evs, err := s.ListAudit(ctx, "team_a", AuditQuery{})
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, e := range evs {
			if !e.At.Equal(now) {
				t.Errorf("event %d at %s, want %s", e.ID, e.At, now)
			}
			lines = append(lines, e.ActorToken+" "+e.ActorMember+" "+e.Action+" "+e.Target+" "+e.Old+" -> "+e.New)
		}
		enc := EncodeThresholds(list)
		want := []string{
			"tok_2 dev@a.test notification_mute proj_1 dev@a.test unmuted -> muted",
			"tok_1 ana@a.test thresholds proj_1 " + enc + " -> ",
			"tok_1 ana@a.test thresholds proj_1  -> " + enc,
		}
		if len(lines) != len(want) {
			t.Fatalf("audit:\n%v\nwant:\n%v", lines, want)
		}
		for i := range want {
			if lines[i] != want[i] {
				t.Fatalf("audit[%d] = %q, want %q", i, lines[i], want[i])
			}
		}
		if evs, err := s.ListAudit(ctx, "team_b", AuditQuery{}); err != nil || len(evs) != 0 {
			t.Fatalf("team_b's audit: %v %v", evs, err)
		}
		if evs, err := s.ListAudit(ctx, "team_a", AuditQuery{Before: evs[0].ID, Limit: 1}); err != nil || len(evs) != 1 || evs[0].Action != AuditThresholds || evs[0].New != "" {
			t.Fatalf("page: %+v %v", evs, err)
		}
	})
}
