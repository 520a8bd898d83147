package rollup

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/shopspring/decimal"

	"github.com/cygni/usage/budget"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/store"
)

// The Deriver exports every customer-set threshold (not the fixed 80/100 %) of every project as
// cygni_project_alert_threshold_ratio: a project's own list, else its team's default.
func TestDeriverExportsThresholds(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	now := time.Date(2024, 5, 3, 12, 0, 0, 0, time.UTC)
	st, err := store.Open(ctx, nil, store.Options{DataDir: t.TempDir(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if _, err := st.CreateTeam(ctx, store.Team{ID: "team_a", Name: "A"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"proj_a", "proj_b"} {
		if _, err := st.CreateProject(ctx, store.Project{ID: id, TeamID: "team_a", Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	set := func(project string, ts ...budget.Threshold) {
		list, err := budget.NormalizeThresholds(ts)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SetThresholds(ctx, "team_a", project, list, store.AuditEvent{Actor: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	set("", budget.Threshold{Percent: decimal.NewFromInt(75), Basis: budget.BasisActual})
	set("proj_a", budget.Threshold{Percent: decimal.RequireFromString("50.5"), Basis: budget.BasisForecast}, budget.Threshold{Percent: decimal.NewFromInt(90)})
	d, _ := NewDeriver(nil, nil, DeriverOptions{Storage: db, Projects: st, Now: func() time.Time { return now }})
	if err := d.Step(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		project, threshold, basis string
		want                      []float64
	}{
		{"proj_a", "50.5", "forecast", []float64{0.505}},
		{"proj_a", "90", "actual", []float64{0.9}},
		{"proj_a", "75", "actual", nil}, // its own list replaces the team's
		{"proj_a", "80", "actual", nil}, // the fixed ones are the shipped alerts'
		{"proj_b", "75", "actual", []float64{0.75}},
		{"proj_b", "100", "actual", nil},
	} {
		got := samplesIn(t, db, labels.FromStrings(labels.MetricName, series.ProjectAlertThresholdRatio, series.LabelProject, c.project, "threshold", c.threshold, "basis", c.basis), now.Add(-time.Millisecond), now)
		if len(got) != len(c.want) || (len(got) == 1 && got[0] != c.want[0]) {
			t.Errorf("%s %s %% %s: %v, want %v", c.project, c.threshold, c.basis, got, c.want)
		}
	}
}

// A daily budget's day-to-date cost resets at the team's local midnight, on the day the clocks
// go forward too (Europe/Berlin, 2025-03-30: 23 hours); the team budget's gauges are the sum.
func TestDeriverDailyBudgetResetsAtLocalMidnight(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	var now time.Time
	st, err := store.Open(ctx, nil, store.Options{DataDir: t.TempDir(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if _, err := st.CreateTeam(ctx, store.Team{ID: "team_a", Name: "A"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateProject(ctx, store.Project{ID: "proj_a", TeamID: "team_a", Name: "a"}); err != nil {
		t.Fatal(err)
	}
	daily, team := decimal.NewFromInt(2), decimal.NewFromInt(40)
	if err := st.SetDailyBudget(ctx, "team_a", "proj_a", &daily, store.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetTeamTimeZone(ctx, "team_a", "Europe/Berlin", store.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetTeamBudget(ctx, "team_a", &team, store.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	// 1.2 vCPU all along: $0.06 an hour.
	cpu := labels.FromStrings(labels.MetricName, series.CPUSeconds, series.LabelProject, "proj_a", series.LabelDeployment, "web")
	from := time.Date(2025, 3, 28, 0, 0, 0, 0, time.UTC)
	fill := func(to time.Time) {
		for m := from; m.Before(to); m = m.Add(time.Minute) {
			appendSample(t, db, cpu, m.Add(time.Minute), 72)
		}
		from = to
	}
	d, _ := NewDeriver(nil, nil, DeriverOptions{Storage: db, Projects: st, Now: func() time.Time { return now }})
	at := func(name, key, value string) float64 {
		v := samplesIn(t, db, labels.FromStrings(labels.MetricName, name, key, value), now.Add(-time.Millisecond), now)
		if len(v) != 1 {
			t.Fatalf("%s at %s: %v", name, now, v)
		}
		return v[0]
	}
	for _, c := range []struct {
		now   string
		hours float64 // since local midnight
	}{
		{"2025-03-29T22:30:00Z", 23.5},      // 23:30 CET: the day began at 23:00 UTC the day before
		{"2025-03-29T23:10:00Z", 10.0 / 60}, // 00:10 CET on the 30th: reset
		{"2025-03-30T21:30:00Z", 22.5},      // 23:30 CEST: the 30th has 23 hours
		{"2025-03-30T22:20:00Z", 20.0 / 60}, // 00:20 CEST on the 31st: reset at 22:00 UTC
	} {
		now, _ = time.Parse(time.RFC3339, c.now)
		fill(now)
		if err := d.Step(ctx); err != nil {
			t.Fatal(err)
		}
		if got, want := at(series.ProjectCostDayToDateUSD, series.LabelProject, "proj_a"), c.hours*0.06; math.Abs(got-want) > 1e-9 {
			t.Errorf("%s: day to date %v, want %v", c.now, got, want)
		}
		if got := at(series.ProjectBudgetDailyUSD, series.LabelProject, "proj_a"); got != 2 {
			t.Errorf("daily budget %v", got)
		}
		mtd := at(series.ProjectCostMonthToDateUSD, series.LabelProject, "proj_a")
		if got := at(series.TeamCostMonthToDateUSD, series.LabelTeam, "team_a"); got != mtd {
			t.Errorf("team month to date %v, want the project's %v", got, mtd)
		}
		if got := at(series.TeamBudgetUSD, series.LabelTeam, "team_a"); got != 40 {
			t.Errorf("team budget %v", got)
		}
	}
}
