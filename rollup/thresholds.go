package rollup

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/shopspring/decimal"

	"github.com/cygni/usage/budget"
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
	w.add(l(series.TeamBudgetUsedPercent), ts, budget.PercentUsed(sum, *limit).InexactFloat64())
}

// writeDaily writes cygni_project_budget_daily_usd{project} and
// cygni_project_cost_day_to_date_usd{project} (the exact cost since local midnight in the team's
// time zone) for every project of team that set a daily budget.
func (d *Deriver) writeDaily(ctx context.Context, w *writer, ix store.SettingsIndex, team store.Team, ps []store.Project, now time.Time) error {
	if ix == nil {
		return nil
	}
	var ids []string
	for _, p := range ps {
		if ix.Project(team.ID, p.ID).DailyLimit != nil {
			ids = append(ids, p.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	loc, err := budget.LoadTimeZone(ix.Team(team.ID).TimeZone)
	if err != nil {
		d.logger.Warn("team time zone unknown; daily budgets reset at midnight UTC", "team", team.ID, "err", err)
		loc = time.UTC
	}
	start, _ := budget.Day(now, loc)
	cut := now.Truncate(time.Minute)
	costs := map[string]decimal.Decimal{}
	if cut.After(start) {
		ru, err := d.engine.Rollup(ctx, ids, []time.Time{start, cut}, query.ByProject)
		if err != nil {
			return fmt.Errorf("day-to-date costs of team %s: %w", team.ID, err)
		}
		for _, id := range ids {
			if row, ok := ru.Rows[query.Key{Project: id}]; ok && len(row) > 0 {
				costs[id] = row[0].Cost.Total()
			}
		}
	}
	ts := now.UnixMilli()
	for _, id := range ids {
		l := func(name string) labels.Labels {
			return labels.FromStrings(labels.MetricName, name, series.LabelProject, id)
		}
		w.add(l(series.ProjectBudgetDailyUSD), ts, ix.Project(team.ID, id).DailyLimit.InexactFloat64())
		w.add(l(series.ProjectCostDayToDateUSD), ts, costs[id].InexactFloat64())
		w.add(l(series.ProjectBudgetDailyUsedPercent), ts, budget.PercentUsed(costs[id], *ix.Project(team.ID, id).DailyLimit).InexactFloat64())
	}
	return nil
}
