package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/cygni/usage/config"
)

// Price overrides round-trip on both backends: exact decimals and instants, the team's and a
// project's resolved per project, a reset, a replaced instant, and each change audited old → new.
func TestPriceOverrides(t *testing.T) {
	backendsWith(t, func(t *testing.T, open opener) {
		ctx := context.Background()
		now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
		s := open(t, Options{Now: func() time.Time { return now }})
		mustTeam(t, s, "team_a")
		mustTeam(t, s, "team_b")
		mustProject(t, s, "team_a", "proj_a1")
		mustProject(t, s, "team_a", "proj_a2")
		mustProject(t, s, "team_b", "proj_b1")
		d := func(s string) *decimal.Decimal { v := decimal.RequireFromString(s); return &v }
		dec1 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		dec15 := time.Date(2026, 12, 15, 0, 0, 0, 0, time.UTC)
		actor := AuditEvent{ActorToken: "tok_op", ActorMember: "ops@cygni.test", Actor: "operator-api"}
		if err := s.SetPriceOverride(ctx, "team_a", "", config.PriceOverride{EffectiveFrom: dec1, VCPUHour: d("0.04")}, actor); err != nil {
			t.Fatal(err)
		}
		if err := s.SetPriceOverride(ctx, "team_a", "", config.PriceOverride{EffectiveFrom: dec15, VCPUHour: d("0.030000000001"), EgressGB: d("0")}, actor); err != nil {
			t.Fatal(err)
		}
		if err := s.SetPriceOverride(ctx, "team_a", "proj_a2", config.PriceOverride{EffectiveFrom: dec1, MemoryGBHour: d("0.004")}, AuditEvent{Actor: "cli:ops"}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetPriceOverride(ctx, "team_b", "proj_a1", config.PriceOverride{EffectiveFrom: dec1, VCPUHour: d("1")}, actor); !errors.Is(err, ErrNotFound) {
			t.Fatalf("another team's project: %v, want ErrNotFound", err)
		}
		var fe *config.PriceFieldError
		if err := s.SetPriceOverride(ctx, "team_a", "", config.PriceOverride{EffectiveFrom: dec1, StorageGBHour: d("-1")}, actor); !errors.As(err, &fe) || fe.Field != "storageGbHour" {
			t.Fatalf("negative price: %v", err)
		}
		// The same instant again replaces the row (old is the replaced prices).
		if err := s.SetPriceOverride(ctx, "team_a", "", config.PriceOverride{EffectiveFrom: dec15, VCPUHour: d("0.03")}, actor); err != nil {
			t.Fatal(err)
		}
		got, err := s.ProjectPriceOverrides(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		show := func(l []config.PriceOverride) string {
			out := ""
			for _, o := range l {
				out += o.EffectiveFrom.Format(time.RFC3339) + " " + o.PricesJSON() + "; "
			}
			return out
		}
		if len(got) != 2 {
			t.Fatalf("overrides of %d projects, want 2 (team_b has none): %+v", len(got), got)
		}
		wantTeam := `2026-12-01T00:00:00Z {"vcpuHour":"0.04"}; 2026-12-15T00:00:00Z {"vcpuHour":"0.03"}; `
		if g := show(got["proj_a1"].Team); g != wantTeam || len(got["proj_a1"].Project) != 0 {
			t.Fatalf("proj_a1: team %s own %s", g, show(got["proj_a1"].Project))
		}
		if g, o := show(got["proj_a2"].Team), show(got["proj_a2"].Project); g != wantTeam || o != `2026-12-01T00:00:00Z {"memoryGbHour":"0.004"}; ` {
			t.Fatalf("proj_a2: team %s own %s", g, o)
		}
		if only, err := s.ProjectPriceOverrides(ctx, []string{"proj_a2", "proj_b1"}); err != nil || len(only) != 1 || len(only["proj_a2"].Project) != 1 {
			t.Fatalf("for two projects: %+v, %v", only, err)
		}
		// A reset from Jan 1.
		jan1 := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
		if err := s.SetPriceOverride(ctx, "team_a", "", config.PriceOverride{EffectiveFrom: jan1}, actor); err != nil {
			t.Fatal(err)
		}
		rows, err := s.ListPriceOverrides(ctx, "team_a")
		if err != nil || len(rows) != 4 || rows[3].ProjectID != "proj_a2" || !rows[2].IsReset() || !rows[2].EffectiveFrom.Equal(jan1) {
			t.Fatalf("ListPriceOverrides = %+v, %v", rows, err)
		}
		if rows, err := s.ListPriceOverrides(ctx, "team_b"); err != nil || len(rows) != 0 {
			t.Fatalf("team_b's rows %+v, %v", rows, err)
		}
		ev, err := s.ListAudit(ctx, "team_a", AuditQuery{Action: AuditPriceOverride})
		if err != nil {
			t.Fatal(err)
		}
		want := []struct{ actor, target, old, new string }{
			{"operator-api", "team_a from 2027-01-01T00:00:00Z", `{"vcpuHour":"0.03"}`, `{}`},
			{"operator-api", "team_a from 2026-12-15T00:00:00Z", `{"vcpuHour":"0.030000000001","egressGb":"0"}`, `{"vcpuHour":"0.03"}`},
			{"cli:ops", "proj_a2 from 2026-12-01T00:00:00Z", ``, `{"memoryGbHour":"0.004"}`},
			{"operator-api", "team_a from 2026-12-15T00:00:00Z", `{"vcpuHour":"0.04"}`, `{"vcpuHour":"0.030000000001","egressGb":"0"}`},
			{"operator-api", "team_a from 2026-12-01T00:00:00Z", ``, `{"vcpuHour":"0.04"}`},
		}
		if len(ev) != len(want) {
			t.Fatalf("%d audit events, want %d: %+v", len(ev), len(want), ev)
		}
		for i, w := range want {
			e := ev[i]
			if e.Actor != w.actor || e.Target != w.target || e.Old != w.old || e.New != w.new || !e.At.Equal(now) {
				t.Errorf("audit[%d] = %+v, want %+v", i, e, w)
			}
		}
		if ev[0].ActorToken != "tok_op" || ev[0].ActorMember != "ops@cygni.test" {
			t.Errorf("actor of %+v", ev[0])
		}
		// A project moved to another team leaves its own prices behind and takes the new team's.
		if err := s.MoveProject(ctx, "proj_a2", "team_b"); err != nil {
			t.Fatal(err)
		}
		if got, err := s.ProjectPriceOverrides(ctx, []string{"proj_a2"}); err != nil || len(got) != 0 {
			t.Errorf("moved proj_a2 keeps overrides %+v, %v", got, err)
		}
		if rows, err := s.ListPriceOverrides(ctx, "team_a"); err != nil || len(rows) != 3 {
			t.Errorf("team_a lists %d rows after the move (%+v), want its own 3", len(rows), err)
		}
	})
}
