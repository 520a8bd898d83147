package query

import (
	"context"
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// ProjectForecast is a project's cost in the current billing period so far and its forecast.
type ProjectForecast struct {
	PeriodStart, PeriodEnd time.Time
	MonthToDate            Cost
	// Forecast is MonthToDate plus the cost rate of the last 24 hours over the rest of the
	// period, unrounded.
	Forecast decimal.Decimal
}

// Forecast returns the billing period's cost so far and its end-of-period forecast for each
// project (all of one team, whose billing anchor day is anchorDay).
func (e *Engine) Forecast(ctx context.Context, projects []string, anchorDay int, now time.Time) (map[string]ProjectForecast, error) {
	start, end := BillingPeriod(now, anchorDay)
	cut := now.Truncate(time.Minute)
	out := make(map[string]ProjectForecast, len(projects))
	for _, p := range projects {
		out[p] = ProjectForecast{PeriodStart: start, PeriodEnd: end}
	}
	if len(projects) == 0 {
		return out, nil
	}
	mtd, err := e.Rollup(ctx, projects, []time.Time{start, cut}, ByProject)
	if err != nil {
		return nil, fmt.Errorf("month-to-date cost: %w", err)
	}
	win := cut.Add(-24 * time.Hour)
	recent, err := e.Rollup(ctx, projects, []time.Time{win, cut}, ByProject)
	if err != nil {
		return nil, fmt.Errorf("recent cost rate: %w", err)
	}
	remaining := decimal.NewFromInt(int64(end.Sub(cut) / time.Minute))
	day := decimal.NewFromInt(24 * 60)
	for _, p := range projects {
		f := out[p]
		if row, ok := mtd.Rows[Key{Project: p}]; ok {
			f.MonthToDate = row[0].Cost
		}
		f.Forecast = f.MonthToDate.Total()
		if row, ok := recent.Rows[Key{Project: p}]; ok {
			f.Forecast = f.Forecast.Add(row[0].Cost.Total().Mul(remaining).DivRound(day, costPrecision))
		}
		out[p] = f
	}
	return out, nil
}
