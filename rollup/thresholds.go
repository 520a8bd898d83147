package rollup

import (
	"context"
	"fmt"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/shopspring/decimal"

	"github.com/cygni/usage/query"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/store"
)

// SettingsSource lists the customers' budget settings (the metadata store). A ProjectSource
// that is one also gets its projects' alert thresholds exported as series.
type SettingsSource interface {
	AllBudgetSettings(ctx context.Context) ([]store.BudgetSettings, error)
}

// budgetSettings reads every team's and project's settings once per run (nil when the project
// source keeps none).
func (d *Deriver) budgetSettings(ctx context.Context) (store.SettingsIndex, error) {
	ss, ok := d.opts.Projects.(SettingsSource)
	if !ok {
		return nil, nil
	}
	all, err := ss.AllBudgetSettings(ctx)
	if err != nil {
		return nil, fmt.Errorf("list budget settings: %w", err)
	}
	return store.IndexBudgetSettings(all), nil
}

// writeThresholds writes cygni_project_alert_threshold_ratio{project,threshold,basis} for every
// effective threshold of p other than the seed's fixed ones (the shipped rule compares them).
func writeThresholds(w *writer, ix store.SettingsIndex, p store.Project, ts int64) {
	if ix == nil {
		return
	}
	for _, t := range ix.Thresholds(p.TeamID, p.ID) {
		if t.Fixed() {
			continue
		}
		w.add(labels.FromStrings(labels.MetricName, series.ProjectAlertThresholdRatio, series.LabelProject, p.ID,
			"threshold", t.Percent.String(), "basis", t.Basis), ts, t.Ratio().InexactFloat64())
	}
}

// writeTeamBudget writes cygni_team_budget_usd{team} and cygni_team_cost_month_to_date_usd{team}
// (the exact sum of its projects' costs) for a team that set a team budget.
func writeTeamBudget(w *writer, ix store.SettingsIndex, team store.Team, ps []store.Project, f map[string]query.ProjectForecast, ts int64) {
	if ix == nil {
		return
	}
	limit := ix.Team(team.ID).TeamLimit
	if limit == nil {
		return
	}
	sum := decimal.Zero
	for _, p := range ps {
		sum = sum.Add(f[p.ID].MonthToDate.Total())
	}
	l := func(name string) labels.Labels {
		return labels.FromStrings(labels.MetricName, name, series.LabelTeam, team.ID)
	}
	w.add(l(series.TeamBudgetUSD), ts, limit.InexactFloat64())
	w.add(l(series.TeamCostMonthToDateUSD), ts, sum.InexactFloat64())
}
