package billing

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/cygni/usage/billing/stripetest"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/store"
)

// BenchmarkCloseDay closes one day of 50 projects × 4 metrics (one sample a minute: 288,000
// samples, 4,800 outbox rows) from the TSDB into a fresh SQLite outbox, without sending.
//
//	go test -run '^$' -bench BenchmarkCloseDay -benchtime 3x ./billing/
func BenchmarkCloseDay(b *testing.B) {
	e := newEnv(b)
	const projects = 50
	names := []string{series.CPUSeconds, series.MemoryGBHours, series.EgressBytes, series.Requests}
	for p := range projects {
		for _, n := range names {
			hourly(b, e.db, n, fmt.Sprintf("proj_%03d", p), 24, 60, func(h, i int) float64 { return float64(h*60+i) * 0.37 })
		}
	}
	e.clock.Set(t0.Add(24*time.Hour + 15*time.Minute))
	var rows int
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		st := openStore(b, store.DriverSQLite, "", b.TempDir(), e.clock.Now)
		o := e.options()
		o.Store, o.Metrics, o.Backfill = st, metrics.NewSet(), 24*time.Hour
		bl, err := New(nil, nil, o)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := bl.closeHours(context.Background(), e.clock.Now()); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		rs, _ := st.ListBillingReports(context.Background(), store.BillingReportFilter{})
		rows = len(rs)
		b.StartTimer()
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(projects*len(names)*24*60)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkSend sends 1,000 pending rows as meter events to the recording Stripe server over
// loopback HTTP, with the outbox's two state updates per row on SQLite.
//
//	go test -run '^$' -bench BenchmarkSend -benchtime 3x ./billing/
func BenchmarkSend(b *testing.B) {
	e := newEnv(b)
	hourly(b, e.db, series.Requests, "proj_a", 1000, 1, func(h, i int) float64 { return 3 })
	e.clock.Set(t0.Add(1000*time.Hour + 15*time.Minute))
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		st := openStore(b, store.DriverSQLite, "", b.TempDir(), e.clock.Now)
		if _, err := st.CreateTeam(context.Background(), store.Team{ID: "team_a", Name: "a", StripeCustomerID: "cus_a"}); err != nil {
			b.Fatal(err)
		}
		if _, err := st.CreateProject(context.Background(), store.Project{ID: "proj_a", TeamID: "team_a"}); err != nil {
			b.Fatal(err)
		}
		o := e.options()
		o.Store, o.Metrics, o.Backfill, o.Window = st, metrics.NewSet(), 1000*time.Hour, 2000*time.Hour
		o.StripeURL = stripetest.New(b).URL
		bl, err := New(nil, nil, o)
		if err != nil {
			b.Fatal(err)
		}
		now := e.clock.Now()
		if err := bl.closeHours(context.Background(), now); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := bl.sendDue(context.Background(), now); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(1000*float64(b.N)/b.Elapsed().Seconds(), "reports/s")
}
