package rollup

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/shopspring/decimal"

	"github.com/cygni/usage/config"
	"github.com/cygni/usage/query"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/store"
)

func decp(s string) *decimal.Decimal { d := decimal.RequireFromString(s); return &d }

// The layers of a project's prices at each instant: the configured sheets (a change at 04:00),
// its team's override (from 02:00, reset at 06:00), its own (from 03:00, vCPU only): a price
// the project sets beats its team's, the ones it leaves out follow the team's, then the
// configured sheet's.
func TestPriceListLayers(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	h := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
	second := config.DefaultPriceSheet()
	second.EffectiveFrom, second.EgressGB = h(4), config.Decimal{Decimal: decimal.RequireFromString("0.08")}
	def := query.NewPrices(config.PricingConfig{Sheets: []config.PriceSheet{config.DefaultPriceSheet(), second}})
	team := []config.PriceOverride{{EffectiveFrom: h(2), VCPUHour: decp("0.04"), MemoryGBHour: decp("0.004")}, {EffectiveFrom: h(6)}}
	own := []config.PriceOverride{{EffectiveFrom: h(3), VCPUHour: decp("0.02")}}
	l := query.NewPriceList(def, map[string]query.ProjectOverrides{"proj_a": {Team: team, Project: own}, "proj_b": {Team: team}})
	for _, c := range []struct {
		project     string
		hour        int
		cpu, mem, e string
	}{
		{"proj_a", 1, "0.05", "0.005", "0.09"},
		{"proj_a", 2, "0.04", "0.004", "0.09"},
		{"proj_a", 3, "0.02", "0.004", "0.09"},
		{"proj_a", 5, "0.02", "0.004", "0.08"},
		{"proj_a", 7, "0.02", "0.005", "0.08"}, // the team's reset; the project's own stays
		{"proj_b", 3, "0.04", "0.004", "0.09"},
		{"proj_b", 7, "0.05", "0.005", "0.08"},
		{"proj_c", 3, "0.05", "0.005", "0.09"}, // no overrides
		{"proj_c", 5, "0.05", "0.005", "0.08"},
	} {
		s := l.Of(c.project).SheetAt(h(c.hour))
		if s.VCPUHour.String() != c.cpu || s.MemoryGBHour.String() != c.mem || s.EgressGB.String() != c.e {
			t.Errorf("%s at %02d:00: vcpu %s memory %s egress %s, want %s %s %s", c.project, c.hour, s.VCPUHour, s.MemoryGBHour, s.EgressGB, c.cpu, c.mem, c.e)
		}
	}
}

// Two projects priced differently: the total over them (ByTotal) is the sum of their own costs,
// not their summed usage at one price; the Deriver's hourly cost series price each project's
// hours with its own sheet, before and after its change at 01:00.
func TestOverridesInRollupsAndCostSeries(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	now := t0.Add(2*time.Hour + 30*time.Minute)
	app := db.Appender(ctx)
	for _, p := range []string{"proj_a", "proj_b"} {
		l := labels.FromStrings(labels.MetricName, series.CPUSeconds, series.LabelProject, p, series.LabelDeployment, "web")
		for m := 1; m <= 120; m++ {
			if _, err := app.Append(0, l, t0.Add(time.Duration(m)*time.Minute).UnixMilli(), 60); err != nil { // 1 vCPU
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	ov := map[string]query.ProjectOverrides{"proj_a": {Team: []config.PriceOverride{{EffectiveFrom: t0.Add(time.Hour), VCPUHour: decp("0.01")}}}}
	reads := 0
	overrides := func(_ context.Context, projects []string) (map[string]query.ProjectOverrides, error) {
		reads++
		return ov, nil
	}
	e, err := query.New(nil, nil, query.Options{Storage: db, Overrides: overrides})
	if err != nil {
		t.Fatal(err)
	}
	bounds := []time.Time{t0, t0.Add(2 * time.Hour)}
	total, err := e.Rollup(ctx, []string{"proj_a", "proj_b"}, bounds, query.ByTotal)
	if err != nil {
		t.Fatal(err)
	}
	// proj_a 0.05 + 0.01, proj_b 0.05 + 0.05.
	if got := total.Rows[query.Key{}][0].Cost.Total(); !got.Equal(decimal.RequireFromString("0.16")) {
		t.Errorf("total of both projects %s, want 0.06 + 0.10 = 0.16", got)
	}
	if reads != 1 {
		t.Errorf("the overrides were read %d times for one rollup, want 1", reads)
	}
	src := memProjects{
		projects: []store.Project{{ID: "proj_a", TeamID: "team_a"}, {ID: "proj_b", TeamID: "team_b"}},
		teams:    map[string]store.Team{"team_a": {ID: "team_a", BillingAnchorDay: 1}, "team_b": {ID: "team_b", BillingAnchorDay: 1}},
	}
	d, err := NewDeriver(nil, nil, DeriverOptions{Storage: db, Projects: src, Overrides: overrides, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Step(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		project string
		hour    int
		want    float64
	}{{"proj_a", 0, 0.05}, {"proj_a", 1, 0.01}, {"proj_b", 0, 0.05}, {"proj_b", 1, 0.05}} {
		l := labels.FromStrings(labels.MetricName, series.ProjectCostUSD, series.LabelProject, c.project, series.LabelResource, string(query.Compute))
		from := t0.Add(time.Duration(c.hour) * time.Hour)
		if got := samplesIn(t, db, l, from, from.Add(time.Hour)); len(got) != 1 || got[0] != c.want {
			t.Errorf("%s compute cost series in hour %d = %v, want [%v]", c.project, c.hour, got, c.want)
		}
	}
	l := labels.FromStrings(labels.MetricName, series.ProjectCostMonthToDateUSD, series.LabelProject, "proj_a")
	if got := samplesIn(t, db, l, now.Add(-time.Millisecond), now); len(got) != 1 || got[0] != 0.06 {
		t.Errorf("proj_a month-to-date gauge %v, want [0.06]", got)
	}
}

// A backdated override (set after its hours were priced, reaching back before the recent
// window) re-prices the hourly cost series back to its instant on the Deriver's next run, not
// only the hours that run re-derives anyway; another project's series stay as they were.
func TestBackdatedOverrideRepricesCostSeries(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	now := t0.Add(6*time.Hour + 30*time.Minute)
	app := db.Appender(ctx)
	for _, p := range []string{"proj_a", "proj_b"} {
		l := labels.FromStrings(labels.MetricName, series.CPUSeconds, series.LabelProject, p, series.LabelDeployment, "web")
		for m := 1; m <= 6*60; m++ {
			if _, err := app.Append(0, l, t0.Add(time.Duration(m)*time.Minute).UnixMilli(), 60); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	var ov map[string]query.ProjectOverrides
	overrides := func(context.Context, []string) (map[string]query.ProjectOverrides, error) { return ov, nil }
	src := memProjects{
		projects: []store.Project{{ID: "proj_a", TeamID: "team_a"}, {ID: "proj_b", TeamID: "team_b"}},
		teams:    map[string]store.Team{"team_a": {ID: "team_a", BillingAnchorDay: 1}, "team_b": {ID: "team_b", BillingAnchorDay: 1}},
	}
	clock := now
	d, err := NewDeriver(nil, nil, DeriverOptions{Storage: db, Projects: src, Overrides: overrides, Now: func() time.Time { return clock },
		RecentWindow: time.Hour, FullWindow: time.Hour, FullEvery: 1000 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Step(ctx); err != nil {
		t.Fatal(err)
	}
	ov = map[string]query.ProjectOverrides{"proj_a": {Team: []config.PriceOverride{{EffectiveFrom: t0.Add(time.Hour), VCPUHour: decp("0.02")}}}}
	clock = now.Add(time.Minute)
	if err := d.Step(ctx); err != nil {
		t.Fatal(err)
	}
	sum := func(project string, hour int) float64 {
		l := labels.FromStrings(labels.MetricName, series.ProjectCostUSD, series.LabelProject, project, series.LabelResource, string(query.Compute))
		from := t0.Add(time.Duration(hour) * time.Hour)
		var s float64
		for _, v := range samplesIn(t, db, l, from, from.Add(time.Hour)) { // a correction is stamped inside the hour
			s += v
		}
		return s
	}
	for h := range 6 {
		wantA := 0.02
		if h == 0 {
			wantA = 0.05
		}
		if got := sum("proj_a", h); math.Abs(got-wantA) > 1e-12 {
			t.Errorf("proj_a compute cost in hour %d = %v, want %v", h, got, wantA)
		}
		if got := sum("proj_b", h); got != 0.05 {
			t.Errorf("proj_b compute cost in hour %d = %v, want 0.05", h, got)
		}
	}
}
