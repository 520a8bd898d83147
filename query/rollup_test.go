package query_test

import (
	"context"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/cygni/usage/config"
	"github.com/cygni/usage/query"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/simaws"
)

func mustLoc(tb testing.TB, name string) *time.Location {
	tb.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// rawFactor converts simaws.RawTruth (whole CloudWatch units) to quanta (PerUnit): a
// CPU-unit-minute is 60/1024 vCPU-seconds = 15/256, a MiB-minute is one memory quantum, a task
// 10^6, bytes per second × 60 seconds.
var rawFactor = [query.NumMetrics]int64{15, 15, 1, 1, 1_000_000, 60, 1, 0}

// truthQuanta is the simulator's exact ground truth for one metric of a row over [from, to), in
// quanta; query.Key{} is the total over every tagged project.
func truthQuanta(t *testing.T, sim *simaws.Sim, k query.Key, m query.Metric, from, to time.Time) query.Int128 {
	t.Helper()
	var total query.Int128
	for _, svc := range sim.Services() {
		if svc.Project == "" || (k.Project != "" && svc.Project != k.Project) || (k.Deployment != "" && svc.Deployment != k.Deployment) {
			continue
		}
		var overflow bool
		if total, overflow = total.Add64(sim.RawTruth(svc, query.SeriesOf(m), from, to) * rawFactor[m]); overflow {
			t.Fatalf("%v %s [%s, %s): the truth overflows 128 bits", k, query.SeriesOf(m), from, to)
		}
	}
	return total
}

// checkAmounts compares a bucket with the ground truth, exactly, for every metric (memory
// too: MiB-minutes).
func checkAmounts(t *testing.T, sim *simaws.Sim, k query.Key, b query.Bucket) {
	t.Helper()
	for _, m := range []query.Metric{query.CPUSeconds, query.CPUUsedSeconds, query.MemoryGBHours, query.MemoryUsedGBHours, query.TaskMinutes, query.EgressBytes, query.Requests} {
		if want, got := truthQuanta(t, sim, k, m, b.Start, b.End), b.Usage[m]; got != want {
			t.Errorf("%v %s [%s, %s): got %s quanta, truth %s", k, query.SeriesOf(m), b.Start, b.End, got, want)
		}
	}
}

func TestRollupMatchesGroundTruth(t *testing.T) {
	ny, kolkata := mustLoc(t, "America/New_York"), mustLoc(t, "Asia/Kolkata")
	utc := time.UTC
	d := func(y int, m time.Month, day, h int, loc *time.Location) time.Time {
		return time.Date(y, m, day, h, 0, 0, 0, loc)
	}
	cases := []struct {
		name     string
		from, to time.Time
		g        query.GroupBy
		loc      *time.Location
		buckets  int
		lengths  map[int]time.Duration // bucket index → expected length
	}{
		{"seed example by day", d(2024, 1, 1, 0, utc), time.Date(2024, 1, 31, 23, 59, 59, 0, utc), query.Day, utc, 31, nil},
		{"year boundary by hour", d(2023, 12, 31, 21, utc), d(2024, 1, 1, 3, utc), query.Hour, utc, 6, nil},
		{"leap day by day", d(2024, 2, 28, 0, utc), d(2024, 3, 2, 0, utc), query.Day, utc, 3, map[int]time.Duration{1: 24 * time.Hour}},
		{"leap day by hour", d(2024, 2, 29, 22, utc), d(2024, 3, 1, 2, utc), query.Hour, utc, 4, nil},
		{"months", d(2024, 1, 1, 0, utc), d(2024, 2, 29, 12, utc), query.Month, utc, 2, map[int]time.Duration{0: 31 * 24 * time.Hour, 1: 28*24*time.Hour + 12*time.Hour}},
		{"months clipped at both ends", d(2024, 1, 20, 0, utc), d(2024, 3, 5, 0, utc), query.Month, utc, 3, map[int]time.Duration{0: 12 * 24 * time.Hour, 1: 29 * 24 * time.Hour, 2: 4 * 24 * time.Hour}},
		{"week starting mid-week", d(2024, 1, 3, 0, utc), d(2024, 1, 10, 0, utc), query.Week, utc, 2, map[int]time.Duration{0: 5 * 24 * time.Hour, 1: 2 * 24 * time.Hour}},
		{"day clipped to a minute", time.Date(2024, 1, 2, 6, 30, 20, 0, utc), time.Date(2024, 1, 3, 8, 15, 0, 0, utc), query.Day, utc, 2, map[int]time.Duration{0: 17*time.Hour + 29*time.Minute, 1: 8*time.Hour + 15*time.Minute}},
		{"ISO weeks", d(2023, 12, 31, 0, utc), d(2024, 2, 1, 0, utc), query.Week, utc, 6, map[int]time.Duration{0: 24 * time.Hour, 1: 7 * 24 * time.Hour, 5: 3 * 24 * time.Hour}},
		{"DST spring New York", d(2024, 3, 9, 0, ny), d(2024, 3, 12, 0, ny), query.Day, ny, 3, map[int]time.Duration{1: 23 * time.Hour}},
		{"DST spring New York by hour", d(2024, 3, 10, 0, ny), d(2024, 3, 10, 5, ny), query.Hour, ny, 4, nil},
		{"DST fall New York", d(2024, 11, 2, 0, ny), d(2024, 11, 4, 0, ny), query.Day, ny, 2, map[int]time.Duration{1: 25 * time.Hour}},
		{"half-hour zone", d(2024, 1, 2, 0, kolkata), d(2024, 1, 4, 0, kolkata), query.Day, kolkata, 2, nil},
		{"half-hour zone by hour", d(2024, 1, 2, 0, kolkata), d(2024, 1, 2, 3, kolkata), query.Hour, kolkata, 3, nil},
		{"month in New York", d(2024, 2, 1, 0, ny), d(2024, 3, 1, 0, ny), query.Month, ny, 1, map[int]time.Duration{0: 29 * 24 * time.Hour}},
		{"one day of a month in New York", d(2024, 2, 1, 0, ny), d(2024, 2, 2, 0, ny), query.Month, ny, 1, map[int]time.Duration{0: 24 * time.Hour}},
	}
	first, last := fixtureRanges[0][0], fixtureRanges[0][1]
	modes := map[string]func() (time.Time, time.Time){
		"minute samples": nil,
		"hourly points":  spanRange(first, last),
	}
	for mode, hr := range modes {
		e := newEngine(t, shared.db, query.Prices{}, hr)
		for _, tc := range cases {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				bounds, err := query.Buckets(tc.from, tc.to, tc.g, tc.loc)
				if err != nil {
					t.Fatal(err)
				}
				if len(bounds)-1 != tc.buckets {
					t.Fatalf("%d buckets %v, want %d", len(bounds)-1, bounds, tc.buckets)
				}
				for i, want := range tc.lengths {
					if got := bounds[i+1].Sub(bounds[i]); got != want {
						t.Errorf("bucket %d is %s long, want %s", i, got, want)
					}
				}
				for _, g := range []query.Grouping{query.ByProject, query.ByDeployment} {
					r, err := e.Rollup(context.Background(), shared.projects(), bounds, g)
					if err != nil {
						t.Fatal(err)
					}
					wantRows := 2
					if g == query.ByDeployment {
						wantRows = 4
					}
					if len(r.Rows) != wantRows {
						t.Fatalf("grouping %d: %d rows %v, want %d (untagged services must not count)", g, len(r.Rows), r.Keys(), wantRows)
					}
					for _, k := range r.Keys() {
						for _, b := range r.Rows[k] {
							checkAmounts(t, shared.sim, k, b)
						}
					}
					total, err := r.Total()
					if err != nil {
						t.Fatal(err)
					}
					for i, b := range total {
						checkAmounts(t, shared.sim, query.Key{}, b)
						if b.Usage[query.CPUSeconds].IsZero() {
							t.Errorf("bucket %d [%s, %s) has no usage: the fixture does not cover it", i, b.Start, b.End)
						}
					}
				}
			})
		}
	}
}

// expectedCost prices the ground truth hour by hour, exactly (to 30 decimals): each series'
// hourly amount times the price of the sheet in force at the hour's start.
func expectedCost(sim *simaws.Sim, p query.Prices, project string, from, to time.Time) decimal.Decimal {
	total := decimal.Zero
	for h := from; h.Before(to); h = h.Add(time.Hour) {
		s := p.SheetAt(h)
		for _, svc := range sim.Services() {
			if svc.Project != project {
				continue
			}
			// Exact rationals, to 30 decimals: CPU-unit-minutes × 60/1024 / 3600 vCPU-hours,
			// MiB-minutes / 61440 GB-hours, bytes/s × 60 / 2^30 GB, requests / 10^6.
			q := func(m query.Metric) decimal.Decimal {
				return decimal.NewFromInt(sim.RawTruth(svc, query.SeriesOf(m), h, h.Add(time.Hour)))
			}
			total = total.
				Add(q(query.CPUSeconds).Mul(s.VCPUHour.Decimal).DivRound(decimal.NewFromInt(1024*60), 30)).
				Add(q(query.MemoryGBHours).Mul(s.MemoryGBHour.Decimal).DivRound(decimal.NewFromInt(61440), 30)).
				Add(q(query.EgressBytes).Mul(decimal.NewFromInt(60)).Mul(s.EgressGB.Decimal).DivRound(decimal.NewFromInt(series.GiB), 30)).
				Add(q(query.Requests).Mul(s.MillionRequests.Decimal).DivRound(decimal.NewFromInt(1e6), 30))
		}
	}
	return total
}

func TestCostWithMidMonthPriceChange(t *testing.T) {
	change := time.Date(2024, 1, 15, 12, 0, 0, 0, time.UTC)
	prices := query.NewPrices(config.PricingConfig{Sheets: []config.PriceSheet{
		config.DefaultPriceSheet(),
		{EffectiveFrom: change, VCPUHour: dec("0.08"), MemoryGBHour: dec("0.01"), EgressGB: dec("0.12"), StorageGBHour: dec("0.0001"), MillionRequests: dec("0.55")},
	}})
	jan := []time.Time{time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC)}
	for mode, hr := range map[string]func() (time.Time, time.Time){"minute samples": nil, "hourly points": spanRange(fixtureRanges[0][0], fixtureRanges[0][1])} {
		t.Run(mode, func(t *testing.T) {
			e := newEngine(t, shared.db, prices, hr)
			r, err := e.Rollup(context.Background(), shared.projects(), jan, query.ByProject)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range shared.projects() {
				got := r.Rows[query.Key{Project: p}][0].Cost.Total()
				want := expectedCost(shared.sim, prices, p, jan[0], jan[1])
				if !got.Round(10).Equal(want.Round(10)) {
					t.Errorf("%s January cost = %s, want %s", p, got.Round(10), want.Round(10))
				}
				// Priced with the old sheet only, the month must differ: the change is visible.
				old := expectedCost(shared.sim, query.NewPrices(config.PricingConfig{}), p, jan[0], jan[1])
				if got.Round(2).Equal(old.Round(2)) {
					t.Errorf("%s: the price change did not change the cost (%s)", p, got)
				}
			}
		})
	}
}

func dec(s string) config.Decimal { return config.Decimal{Decimal: decimal.RequireFromString(s)} }

// TestHourlyAmountsAreTheRollupsHours checks the one read of hourly amounts (billing's and the
// Deriver's) against the simulator's truth and the API's rollup, from 1-minute samples and from
// the hourly tier.
func TestHourlyAmountsAreTheRollupsHours(t *testing.T) {
	from := time.Date(2024, 1, 30, 20, 0, 0, 0, time.UTC)
	to := from.Add(30 * time.Hour)
	for mode, hr := range map[string]func() (time.Time, time.Time){"minute samples": nil, "hourly points": spanRange(fixtureRanges[0][0], fixtureRanges[0][1])} {
		t.Run(mode, func(t *testing.T) {
			e := newEngine(t, shared.db, query.Prices{}, hr)
			bounds, err := query.Buckets(from, to, query.Hour, time.UTC)
			if err != nil {
				t.Fatal(err)
			}
			r, err := e.Rollup(context.Background(), shared.projects(), bounds, query.ByProject)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			last := ""
			err = e.HourlyAmounts(context.Background(), nil, from, to, func(p string, h time.Time, a *query.Amounts) error {
				if k := h.Format(time.RFC3339) + p; k <= last {
					t.Errorf("%s after %s: not in hour, project order", k, last)
				} else {
					last = k
				}
				i := int(h.Sub(from) / time.Hour)
				b := r.Rows[query.Key{Project: p}][i]
				if *a != b.Usage {
					t.Errorf("%s %s: HourlyAmounts %v, Rollup %v", p, h, a, b.Usage)
				}
				checkAmounts(t, shared.sim, query.Key{Project: p}, query.Bucket{Start: h, End: h.Add(time.Hour), Usage: *a})
				n++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if want := 30 * len(shared.projects()); n != want {
				t.Errorf("%d project-hours, want %d", n, want)
			}
		})
	}
}
