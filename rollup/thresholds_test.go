package rollup

import (
	"context"
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
