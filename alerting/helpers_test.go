package alerting

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/rules"
	"github.com/shopspring/decimal"

	"github.com/cygni/usage/budget"
	"github.com/cygni/usage/internal/smtptest"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/store"
	"github.com/cygni/usage/tsdb"
)

func openTSDB(t testing.TB) *tsdb.DB {
	t.Helper()
	db, err := tsdb.Open(nil, prometheus.NewRegistry(), tsdb.Options{Dir: filepath.Join(t.TempDir(), "tsdb")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func openStore(t testing.TB, dir string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), nil, store.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// seedTeam creates team_acme (billing contact billing@acme.test, admins ana@ and bob@) with
// project proj_001 "Web shop".
func seedTeam(t testing.TB, s *store.Store, anchor int) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.CreateTeam(ctx, store.Team{ID: "team_acme", Name: "Acme", BillingEmail: "billing@acme.test", BillingAnchorDay: anchor}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []store.Member{
		{TeamID: "team_acme", Email: "bob@acme.test", Name: "Bob", Role: "admin"},
		{TeamID: "team_acme", Email: "ana@acme.test", Name: "Ana", Role: "admin"},
		{TeamID: "team_acme", Email: "dev@acme.test", Name: "Dev", Role: "member"},
	} {
		if err := s.AddMember(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateProject(ctx, store.Project{ID: "proj_001", TeamID: "team_acme", Name: "Web shop"}); err != nil {
		t.Fatal(err)
	}
}

// writeDerived writes one sample of the Deriver's gauges for proj_001 at ts. The store's budget
// limit is set to budget first (the gauge is what the Deriver would write from it).
func writeDerived(t testing.TB, db tsdb.Storage, st *store.Store, ts time.Time, budget, mtd, forecast float64) {
	t.Helper()
	setLimit(t, st, budget)
	writeGauges(t, db, ts, budget, mtd, forecast)
}

// budgetPercent is the Deriver's cygni_project_budget_used_percent for these dollar amounts.
func budgetPercent(mtd, limit float64) float64 {
	return budget.PercentUsed(decimal.NewFromFloat(mtd), decimal.NewFromFloat(limit)).InexactFloat64()
}

// setLimit sets proj_001's budget limit in the store.
func setLimit(t testing.TB, st *store.Store, budget float64) {
	t.Helper()
	if err := st.SetBudgetLimit(context.Background(), "team_acme", "proj_001", decimal.NewFromFloat(budget)); err != nil {
		t.Fatal(err)
	}
}

// writeGauges writes the Deriver's gauges for proj_001 at ts, leaving the store alone.
func writeGauges(t testing.TB, db tsdb.Storage, ts time.Time, budget, mtd, forecast float64) {
	t.Helper()
	app := db.Appender(context.Background())
	for name, v := range map[string]float64{
		series.ProjectBudgetUSD:          budget,
		series.ProjectCostMonthToDateUSD: mtd,
		series.ProjectCostForecastUSD:    forecast,
		series.ProjectBudgetUsedPercent:  budgetPercent(mtd, budget),
	} {
		if _, err := app.Append(0, labels.FromStrings("__name__", name, series.LabelProject, "proj_001"), ts.UnixMilli(), v); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
}

// gaugeCosts is a CostFunc that reads the amounts of the Deriver's gauges back from the TSDB
// (with the real PromQL engine): in production the query layer computes them from the usage
// samples, and the gauges are written from the same numbers.
func gaugeCosts(db tsdb.Storage) CostFunc {
	eng := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	q := rules.EngineQueryFunc(eng, db)
	return func(ctx context.Context, projects []string, anchor int, at time.Time) (map[string]Costs, error) {
		out := map[string]Costs{}
		for _, p := range projects {
			c := Costs{}
			c.PeriodStart, c.PeriodEnd = BillingPeriod(at, anchor)
			for name, dst := range map[string]*decimal.Decimal{series.ProjectCostMonthToDateUSD: &c.Used, series.ProjectCostForecastUSD: &c.Forecast} {
				v, err := q(ctx, fmt.Sprintf("%s{project=%q}", name, p), at)
				if err != nil {
					return nil, err
				}
				if len(v) == 1 {
					*dst = decimal.NewFromFloat(v[0].F)
				}
			}
			out[p] = c
		}
		return out, nil
	}
}

// recordingState is the real store, remembering the notifications it created.
type recordingState struct {
	*store.Store
	mu    sync.Mutex
	notes []store.Notification
}

func (r *recordingState) StartAlertEpisode(ctx context.Context, ep store.AlertEpisode, supersede int64, reason string, n store.Notification, out []store.OutboxMessage) (store.AlertEpisode, bool, error) {
	ep, ok, err := r.Store.StartAlertEpisode(ctx, ep, supersede, reason, n, out)
	if ok {
		r.mu.Lock()
		r.notes = append(r.notes, n)
		r.mu.Unlock()
	}
	return ep, ok, err
}

func (r *recordingState) ResolveAlertEpisode(ctx context.Context, id int64, at time.Time, n store.Notification, out []store.OutboxMessage) (bool, error) {
	ok, err := r.Store.ResolveAlertEpisode(ctx, id, at, n, out)
	if ok {
		r.mu.Lock()
		r.notes = append(r.notes, n)
		r.mu.Unlock()
	}
	return ok, err
}

func (r *recordingState) created() []store.Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]store.Notification(nil), r.notes...)
}

// smtpServer is the in-test SMTP server.
type smtpServer struct{ *smtptest.Server }

// startSMTP serves on addr ("127.0.0.1:0" for any port) until the test ends.
func startSMTP(t testing.TB, addr string) *smtpServer { return &smtpServer{smtptest.Start(t, addr)} }

func (s *smtpServer) messages() []smtptest.Message { return s.Messages() }

func (s *smtpServer) port(testing.TB) int { return s.Port() }
