package billing

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/shopspring/decimal"

	"github.com/cygni/usage/billing/stripetest"
	"github.com/cygni/usage/internal/pgtest"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/store"
	"github.com/cygni/usage/tsdb"
)

// t0 is the first hour of every test's data.
var t0 = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time)         { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type env struct {
	dir    string
	db     *tsdb.DB
	st     *store.Store
	stripe *stripetest.Server
	clock  *clock
	vm     *metrics.Set
}

func openTSDB(t testing.TB, dir string) *tsdb.DB {
	t.Helper()
	db, err := tsdb.Open(nil, nil, tsdb.Options{Dir: filepath.Join(dir, "tsdb"), OutOfOrderWindow: 400 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func openStore(t testing.TB, driver, dsn, dir string, now func() time.Time) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), nil, store.Options{Driver: driver, DSN: dsn, DataDir: dir, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// newEnv opens a TSDB and a SQLite store in a temp dir, a recording Stripe server and one team
// (cus_a) with project proj_a.
func newEnv(t testing.TB) *env {
	t.Helper()
	dir := t.TempDir()
	c := &clock{t: t0}
	e := &env{dir: dir, db: openTSDB(t, dir), st: openStore(t, store.DriverSQLite, "", dir, c.Now), stripe: stripetest.New(t),
		clock: c, vm: metrics.NewSet()}
	e.team(t, "team_a", "cus_a", "proj_a")
	return e
}

func (e *env) team(t testing.TB, team, customer string, projects ...string) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.st.CreateTeam(ctx, store.Team{ID: team, Name: team, StripeCustomerID: customer}); err != nil {
		t.Fatal(err)
	}
	for _, p := range projects {
		if _, err := e.st.CreateProject(ctx, store.Project{ID: p, TeamID: team}); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *env) options() Options {
	return Options{
		Queryable: e.db, Store: e.st, Metrics: e.vm,
		Meters: map[string]Meter{
			"cpu":      {EventName: "cygni_vcpu_hours", Unit: decimal.RequireFromString("0.001")},
			"memory":   {EventName: "cygni_memory_gb_hours", Unit: decimal.RequireFromString("0.001")},
			"egress":   {EventName: "cygni_egress_gb", Unit: decimal.RequireFromString("0.001")},
			"requests": {EventName: "cygni_requests", Unit: decimal.NewFromInt(1)},
		},
		StripeURL: e.stripe.URL, StripeKey: e.stripe.Key,
		Now: e.clock.Now, BaseBackoff: time.Second, MaxBackoff: 4 * time.Second,
	}
}

func (e *env) biller(t testing.TB, mod func(*Options)) *Biller {
	t.Helper()
	o := e.options()
	if mod != nil {
		mod(&o)
	}
	b, err := New(nil, nil, o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// write appends samples to the TSDB: one series, value v at each timestamp.
func write(t testing.TB, db *tsdb.DB, name, project string, samples map[time.Time]float64) {
	t.Helper()
	app := db.Appender(context.Background())
	ls := labels.FromStrings(labels.MetricName, name, series.LabelProject, project, series.LabelDeployment, "web")
	for ts, v := range samples {
		if _, err := app.Append(0, ls, ts.UnixMilli(), v); err != nil {
			t.Fatalf("append %s@%s: %v", name, ts, err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
}

// cycle runs one billing cycle at the clock's time.
func cycle(t testing.TB, b *Biller) {
	t.Helper()
	if err := b.Cycle(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func reports(t testing.TB, st *store.Store, f store.BillingReportFilter) []store.BillingReport {
	t.Helper()
	rs, err := st.ListBillingReports(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// hourly writes `perHour` samples into each of n hours from t0, value f(hour, i), and returns
// their exact sum.
func hourly(t testing.TB, db *tsdb.DB, name, project string, n, perHour int, f func(h, i int) float64) decimal.Decimal {
	t.Helper()
	total := decimal.Zero
	samples := map[time.Time]float64{}
	step := time.Hour / time.Duration(perHour)
	for h := range n {
		for i := range perHour {
			v := f(h, i)
			samples[t0.Add(time.Duration(h)*time.Hour+time.Duration(i+1)*step)] = v
			total = total.Add(decimal.NewFromFloat(v))
		}
		if len(samples) > 5000 {
			write(t, db, name, project, samples)
			samples = map[time.Time]float64{}
		}
	}
	write(t, db, name, project, samples)
	return total
}

func TestCarryOver1000HoursEqualsExactTotal(t *testing.T) {
	e := newEnv(t)
	const hours = 1000
	// Fractions of a unit every hour: 0.001 vCPU-hour is 3.6 vCPU-seconds; samples are whole
	// CPU-unit-minutes × 60 / 1024, as the collector stores them.
	cpu := hourly(t, e.db, series.CPUSeconds, "proj_a", hours, 6, func(h, i int) float64 { return float64(12+((h*7+i)%13)*2) * 60 / 1024 })
	egress := hourly(t, e.db, series.EgressBytes, "proj_a", hours, 2, func(h, i int) float64 { return float64(123457 + h*31 + i) })
	e.clock.Set(t0.Add(hours*time.Hour + 20*time.Minute))
	b := e.biller(t, func(o *Options) { o.Window = 2000 * time.Hour; o.Backfill = hours * time.Hour })
	cycle(t, b)

	for _, tc := range []struct {
		metric, event string
		total         decimal.Decimal
		unit          decimal.Decimal
	}{
		{"cpu", "cygni_vcpu_hours", cpu, decimal.RequireFromString("3.6")},
		{"egress", "cygni_egress_gb", egress, decimal.RequireFromString("0.001").Mul(decimal.NewFromInt(series.GiB))},
	} {
		t.Run(tc.metric, func(t *testing.T) {
			want := floorDiv(tc.total, tc.unit).IntPart()
			rs := reports(t, e.st, store.BillingReportFilter{Metric: tc.metric})
			if len(rs) != hours {
				t.Fatalf("%d rows, want %d", len(rs), hours)
			}
			var sum int64
			for _, r := range rs {
				if r.State != store.BillingSent && r.State != store.BillingCarried {
					t.Fatalf("row %s is %s (%s)", r.Identifier, r.State, r.LastError)
				}
				sum += r.Quantity
			}
			if sum != want {
				t.Errorf("outbox quantities sum to %d, want floor(%s / %s) = %d", sum, tc.total, tc.unit, want)
			}
			if got := e.stripe.Total(tc.event, "cus_a"); got != want {
				t.Errorf("Stripe received %d, want %d", got, want)
			}
		})
	}
}

func TestRetriesOn500And429AreEventuallyExact(t *testing.T) {
	e := newEnv(t)
	total := hourly(t, e.db, series.Requests, "proj_a", 6, 4, func(h, i int) float64 { return float64(100*h + i) })
	e.stripe.Fail(500, 429, 503, 500, 429)
	e.clock.Set(t0.Add(6*time.Hour + 15*time.Minute))
	b := e.biller(t, func(o *Options) { o.Backfill = 6 * time.Hour })
	for range 40 {
		cycle(t, b)
		e.clock.Advance(5 * time.Second)
	}
	rs := reports(t, e.st, store.BillingReportFilter{})
	for _, r := range rs {
		if r.State != store.BillingSent {
			t.Fatalf("row %s is %s after retries (%s)", r.Identifier, r.State, r.LastError)
		}
	}
	if got, want := e.stripe.Total("cygni_requests", "cus_a"), total.IntPart(); got != want {
		t.Errorf("Stripe total %d, want %d", got, want)
	}
	if n := len(e.stripe.Events()); n != 6 {
		t.Errorf("%d events, want one per hour (6)", n)
	}
	if r := rs[0]; r.Attempts != 6 {
		t.Errorf("first row took %d attempts, want 6 (5 injected failures)", r.Attempts)
	}
	var sb strings.Builder
	e.vm.WritePrometheus(&sb)
	for _, want := range []string{`cygni_billing_send_errors_total{kind="retryable"} 5`, `cygni_billing_reports{state="sent"} 6`} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, sb.String())
		}
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	e := newEnv(t)
	b := e.biller(t, nil)
	for _, tc := range []struct {
		attempts int
		lo, hi   time.Duration
	}{{1, 500 * time.Millisecond, time.Second}, {2, time.Second, 2 * time.Second}, {3, 2 * time.Second, 4 * time.Second}, {10, 2 * time.Second, 4 * time.Second}} {
		t.Run(fmt.Sprint(tc.attempts), func(t *testing.T) {
			for range 50 {
				if d := b.backoff(tc.attempts); d < tc.lo || d > tc.hi {
					t.Fatalf("backoff(%d) = %s, want in [%s, %s]", tc.attempts, d, tc.lo, tc.hi)
				}
			}
		})
	}
}

func TestPermanentErrorIsParkedWithReason(t *testing.T) {
	e := newEnv(t)
	e.team(t, "team_b", "cus_gone", "proj_b")
	e.stripe.RejectCustomer("cus_gone")
	hourly(t, e.db, series.Requests, "proj_a", 1, 1, func(int, int) float64 { return 7 })
	hourly(t, e.db, series.Requests, "proj_b", 1, 1, func(int, int) float64 { return 9 })
	e.clock.Set(t0.Add(time.Hour + 15*time.Minute))
	b := e.biller(t, func(o *Options) { o.Backfill = time.Hour })
	cycle(t, b)
	rs := reports(t, e.st, store.BillingReportFilter{ProjectID: "proj_b"})
	if len(rs) != 1 || rs[0].State != store.BillingFailed || !strings.Contains(rs[0].LastError, "No such customer") {
		t.Fatalf("proj_b rows = %+v, want one failed with Stripe's reason", rs)
	}
	if rs[0].TeamID != "team_b" {
		t.Errorf("team = %q", rs[0].TeamID)
	}
	if got := e.stripe.Total("cygni_requests", "cus_a"); got != 7 {
		t.Errorf("proj_a total %d, want 7 (a failed row does not block others)", got)
	}
	var sb strings.Builder
	e.vm.WritePrometheus(&sb)
	if !strings.Contains(sb.String(), `cygni_billing_reports{state="failed"} 1`) {
		t.Errorf("failed gauge missing:\n%s", sb.String())
	}
	// An operator fixes the customer and retries the row.
	if err := e.st.SetTeamStripeCustomer(context.Background(), "team_b", "cus_b"); err != nil {
		t.Fatal(err)
	}
	if err := e.st.RetryBillingReport(context.Background(), "team_b", rs[0].ID); err != nil {
		t.Fatal(err)
	}
	cycle(t, b)
	if got := e.stripe.Total("cygni_requests", "cus_b"); got != 9 {
		t.Errorf("after retry cus_b total %d, want 9", got)
	}
}

func TestHeldUntilMappedThenSentOrExpired(t *testing.T) {
	e := newEnv(t)
	e.team(t, "team_c", "", "proj_c") // no Stripe customer yet
	hourly(t, e.db, series.Requests, "proj_c", 3, 1, func(h, _ int) float64 { return float64(10 + h) })
	hourly(t, e.db, series.Requests, "proj_x", 1, 1, func(int, int) float64 { return 5 }) // not in the store
	e.clock.Set(t0.Add(3*time.Hour + 15*time.Minute))
	// No Stripe key: everything is held.
	nokey := e.biller(t, func(o *Options) { o.StripeKey = ""; o.Backfill = 3 * time.Hour })
	cycle(t, nokey)
	for _, r := range reports(t, e.st, store.BillingReportFilter{}) {
		if r.State != store.BillingHeld || !strings.Contains(r.LastError, "not configured") {
			t.Fatalf("row %s: %s (%s), want held: not configured", r.Identifier, r.State, r.LastError)
		}
	}
	b := e.biller(t, nil)
	e.clock.Advance(2 * time.Minute)
	cycle(t, b)
	for _, r := range reports(t, e.st, store.BillingReportFilter{ProjectID: "proj_c"}) {
		if r.State != store.BillingHeld || !strings.Contains(r.LastError, "no Stripe customer") {
			t.Fatalf("row %s: %s (%s), want held: no Stripe customer", r.Identifier, r.State, r.LastError)
		}
	}
	if rs := reports(t, e.st, store.BillingReportFilter{ProjectID: "proj_x"}); rs[0].State != store.BillingHeld || !strings.Contains(rs[0].LastError, "not in the metadata store") {
		t.Fatalf("proj_x: %+v", rs[0])
	}
	// Mapped two weeks later: still inside the window, so reported.
	if err := e.st.SetTeamStripeCustomer(context.Background(), "team_c", "cus_c"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(14 * 24 * time.Hour)
	cycle(t, b)
	if got := e.stripe.Total("cygni_requests", "cus_c"); got != 10+11+12 {
		t.Errorf("cus_c total %d, want 33", got)
	}
	// proj_x is created 40 days later: its hour is out of the window and flagged, not sent.
	e.team(t, "team_x", "cus_x", "proj_x")
	e.clock.Advance(30 * 24 * time.Hour)
	cycle(t, b)
	rs := reports(t, e.st, store.BillingReportFilter{ProjectID: "proj_x"})
	if rs[0].State != store.BillingExpired || !strings.Contains(rs[0].LastError, "window") {
		t.Fatalf("proj_x: %s (%s), want expired", rs[0].State, rs[0].LastError)
	}
	if got := e.stripe.Total("cygni_requests", "cus_x"); got != 0 {
		t.Errorf("cus_x got %d", got)
	}
	rec, err := b.Reconcile(context.Background(), t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, d := range rec.Differences {
		if d.ProjectID == "proj_x" && d.Kind == DiffExpired && d.Quantity == 5 {
			found = true
		}
	}
	if !found {
		t.Errorf("reconciliation does not list proj_x as expired: %+v", rec.Differences)
	}
}

func TestLateDataIsCorrected(t *testing.T) {
	e := newEnv(t)
	hourly(t, e.db, series.CPUSeconds, "proj_a", 4, 1, func(int, int) float64 { return 624 * 60 / 1024. }) // 36.5625 vCPU-s, 10.156.. units/h
	e.clock.Set(t0.Add(4*time.Hour + 15*time.Minute))
	b := e.biller(t, func(o *Options) { o.Backfill = 4 * time.Hour; o.RecheckEvery = time.Nanosecond })
	cycle(t, b)
	if got := e.stripe.Total("cygni_vcpu_hours", "cus_a"); got != 40 { // floor(146.25/3.6) = 40
		t.Fatalf("before late data: %d, want 40", got)
	}
	steps := []struct {
		name  string
		delta float64
		want  int64 // Stripe's total afterwards
	}{
		{"upward", 1230 * 60 / 1024., 60},   // floor(218.3203125/3.6) = 60
		{"downward", -680 * 60 / 1024., 60}, // floor(178.4765625/3.6) = 49 < 60: nothing sent, carried
		{"absorbed", 1370 * 60 / 1024., 71}, // floor(258.75/3.6) = floor(71.875) = 71
	}
	for i, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			// A late correction inside hour 1, written as a further sample.
			write(t, e.db, series.CPUSeconds, "proj_a", map[time.Time]float64{t0.Add(time.Hour + time.Duration(10+i)*time.Minute): s.delta})
			e.clock.Advance(time.Minute)
			cycle(t, b)
			if got := e.stripe.Total("cygni_vcpu_hours", "cus_a"); got != s.want {
				t.Errorf("Stripe total %d, want %d", got, s.want)
			}
			rs := reports(t, e.st, store.BillingReportFilter{From: t0.Add(time.Hour), To: t0.Add(2 * time.Hour)})
			if last := rs[len(rs)-1]; last.Revision != i+1 {
				t.Errorf("last revision %d, want %d", last.Revision, i+1)
			}
		})
	}
	rec, err := b.Reconcile(context.Background(), t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Differences) != 0 {
		t.Errorf("differences after corrections: %+v", rec.Differences)
	}
	if tot := rec.Totals[0]; tot.Reported != 71 || tot.Usage != "71.875" || tot.Difference != "0.875" {
		t.Errorf("totals = %+v", tot)
	}
}

func TestUsageRecordsSetTheHourTotal(t *testing.T) {
	e := newEnv(t)
	hourly(t, e.db, series.Requests, "proj_a", 2, 2, func(h, i int) float64 { return float64(5 + h) })
	if err := e.st.SetBillingSubscriptionItem(context.Background(), "proj_a", "requests", "si_req"); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(t0.Add(2*time.Hour + 15*time.Minute))
	b := e.biller(t, func(o *Options) {
		o.Mode = ModeUsageRecords
		o.Backfill = 2 * time.Hour
		o.RecheckEvery = time.Nanosecond
	})
	cycle(t, b)
	if got := e.stripe.UsageAt("si_req", t0.Unix()); got != 10 {
		t.Errorf("hour 0 set to %d, want 10", got)
	}
	// cpu has no subscription item: held, not lost.
	write(t, e.db, series.CPUSeconds, "proj_a", map[time.Time]float64{t0.Add(30 * time.Minute): 123 * 60 / 1024.})
	write(t, e.db, series.Requests, "proj_a", map[time.Time]float64{t0.Add(40 * time.Minute): 3})
	e.clock.Advance(time.Minute)
	cycle(t, b)
	if got := e.stripe.UsageAt("si_req", t0.Unix()); got != 13 {
		t.Errorf("hour 0 after late data set to %d, want 13", got)
	}
	if got := e.stripe.UsageTotal("si_req"); got != 13+12 {
		t.Errorf("usage total %d, want 25", got)
	}
	rs := reports(t, e.st, store.BillingReportFilter{Metric: "cpu"})
	if len(rs) != 1 || rs[0].State != store.BillingHeld || !strings.Contains(rs[0].LastError, "subscription item") {
		t.Errorf("cpu rows %+v, want one held for its subscription item", rs)
	}
}

func TestStripeMockAcceptsMeterEvents(t *testing.T) {
	url := startStripeMock(t)
	e := newEnv(t)
	hourly(t, e.db, series.MemoryGBHours, "proj_a", 2, 3, func(int, int) float64 { return 0.25 })
	e.clock.Set(t0.Add(2*time.Hour + 15*time.Minute))
	b := e.biller(t, func(o *Options) { o.StripeURL = url; o.StripeKey = "sk_test_123"; o.Backfill = 2 * time.Hour })
	cycle(t, b)
	rs := reports(t, e.st, store.BillingReportFilter{})
	if len(rs) != 2 {
		t.Fatalf("%d rows, want 2", len(rs))
	}
	for _, r := range rs {
		if r.State != store.BillingSent || r.Quantity != 750 || r.StripeRef != "cus_a" {
			t.Errorf("row %s: %s q=%d ref=%s (%s), want sent 750 to cus_a", r.Identifier, r.State, r.Quantity, r.StripeRef, r.LastError)
		}
	}
}

// startStripeMock runs the real stripe-mock on loopback ports.
func startStripeMock(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("stripe-mock")
	if err != nil {
		gopath, _ := exec.Command("go", "env", "GOPATH").Output()
		bin = filepath.Join(strings.TrimSpace(string(gopath)), "bin", "stripe-mock")
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("stripe-mock is not installed (go install github.com/stripe/stripe-mock@v0.203.0): %v", err)
		}
		t.Skipf("stripe-mock is not installed; run go install github.com/stripe/stripe-mock@v0.203.0")
	}
	httpAddr, httpsAddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "-http-addr", httpAddr, "-https-addr", httpsAddr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := "http://" + httpAddr
	expired := time.After(20 * time.Second)
	for {
		resp, err := http.Get(url + "/v1/customers/cus_123")
		if err == nil {
			resp.Body.Close()
			return url
		}
		select {
		case <-expired:
			t.Fatalf("stripe-mock did not start: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// TestCrashBetweenSendAndRecord kills (SIGKILL) a real process right after Stripe answered and
// before the outbox recorded it; the restarted biller resends with the same key and Stripe's
// total is unchanged.
func TestCrashBetweenSendAndRecord(t *testing.T) {
	if os.Getenv("CYGNI_BILLING_CHILD") != "" {
		t.Skip("child process")
	}
	e := newEnv(t)
	total := hourly(t, e.db, series.Requests, "proj_a", 3, 2, func(h, i int) float64 { return float64(1000*h + i + 1) })
	if err := e.db.Close(); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(3*time.Hour + 15*time.Minute)
	cmd := exec.Command(os.Args[0], "-test.run=^TestBillingChildProcess$", "-test.v")
	cmd.Env = append(os.Environ(), "CYGNI_BILLING_CHILD="+strings.Join([]string{e.dir, e.stripe.URL, e.stripe.Key, now.Format(time.RFC3339)}, ","))
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v\n%s", err, out)
	}
	if n := len(e.stripe.Events()); n != 1 {
		t.Fatalf("Stripe has %d events after the crash, want 1", n)
	}
	rs := reports(t, e.st, store.BillingReportFilter{})
	if rs[0].State != store.BillingSending {
		t.Fatalf("first row is %s after the crash, want sending", rs[0].State)
	}
	// Restart.
	e.db = openTSDB(t, e.dir)
	e.clock.Set(now)
	b := e.biller(t, nil)
	cycle(t, b)
	if got := e.stripe.Total("cygni_requests", "cus_a"); got != total.IntPart() {
		t.Errorf("Stripe total %d, want %d", got, total.IntPart())
	}
	if _, replays, _ := e.stripe.Stats(); replays != 1 {
		t.Errorf("%d idempotent replays, want 1 (the report re-sent after the crash)", replays)
	}
	if n := len(e.stripe.Events()); n != 3 {
		t.Errorf("%d events, want 3", n)
	}
}

// TestBillingChildProcess is the crashing process of TestCrashBetweenSendAndRecord.
func TestBillingChildProcess(t *testing.T) {
	args := os.Getenv("CYGNI_BILLING_CHILD")
	if args == "" {
		t.Skip("runs only as the child of TestCrashBetweenSendAndRecord")
	}
	p := strings.Split(args, ",")
	now, _ := time.Parse(time.RFC3339, p[3])
	db := openTSDB(t, p[0])
	st := openStore(t, store.DriverSQLite, "", p[0], func() time.Time { return now })
	b, err := New(nil, nil, Options{
		Queryable: db, Store: st, StripeURL: p[1], StripeKey: p[2], Backfill: 3 * time.Hour,
		Meters: map[string]Meter{"requests": {EventName: "cygni_requests", Unit: decimal.NewFromInt(1)}},
		Now:    func() time.Time { return now },
		AfterSend: func(store.BillingReport) {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Minute)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = b.Cycle(context.Background())
	t.Fatal("the child survived its send")
}

// postgresDSN returns a DSN on a fresh schema, dropped afterwards; see pgtest.DSN.
func postgresDSN(t testing.TB) string {
	t.Helper()
	return pgtest.DSN(t, "billing")
}

func TestPostgresOneLeaderAndExactTotals(t *testing.T) {
	dsn := postgresDSN(t)
	e := newEnv(t)
	st1 := openStore(t, store.DriverPostgres, dsn, "", e.clock.Now)
	st2 := openStore(t, store.DriverPostgres, dsn, "", e.clock.Now)
	ctx := context.Background()
	l1, ok, err := st1.TryBillingLeader(ctx)
	if err != nil || !ok {
		t.Fatalf("first leader: ok=%v err=%v", ok, err)
	}
	if _, ok, err := st2.TryBillingLeader(ctx); err != nil || ok {
		t.Fatalf("second replica became leader too: ok=%v err=%v", ok, err)
	}
	l1.Release()
	l2, ok, err := st2.TryBillingLeader(ctx)
	if err != nil || !ok {
		t.Fatalf("second replica after release: ok=%v err=%v", ok, err)
	}
	l2.Release()

	// The same carry arithmetic on PostgreSQL's NUMERIC.
	e.st = st1
	e.team(t, "team_a", "cus_a", "proj_a")
	total := hourly(t, e.db, series.CPUSeconds, "proj_a", 50, 3, func(h, i int) float64 { return float64(22+h%5) * 60 / 1024 })
	e.clock.Set(t0.Add(50*time.Hour + 15*time.Minute))
	b := e.biller(t, func(o *Options) { o.Backfill = 50 * time.Hour })
	cycle(t, b)
	want := floorDiv(total, decimal.RequireFromString("3.6")).IntPart()
	if got := e.stripe.Total("cygni_vcpu_hours", "cus_a"); got != want {
		t.Errorf("Stripe total %d, want %d", got, want)
	}
}

func TestRunTakesLeadershipSendsAndStops(t *testing.T) {
	e := newEnv(t)
	hourly(t, e.db, series.Requests, "proj_a", 2, 1, func(h, _ int) float64 { return float64(h + 1) })
	e.clock.Set(t0.Add(2*time.Hour + 15*time.Minute))
	b := e.biller(t, func(o *Options) { o.Interval = 10 * time.Millisecond; o.Backfill = 2 * time.Hour })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	expired := time.After(10 * time.Second)
	for e.stripe.Total("cygni_requests", "cus_a") != 3 {
		select {
		case <-expired:
			t.Fatalf("Run sent %d, want 3", e.stripe.Total("cygni_requests", "cus_a"))
		case <-time.After(5 * time.Millisecond):
		}
	}
	var sb strings.Builder
	e.vm.WritePrometheus(&sb)
	if !strings.Contains(sb.String(), "cygni_billing_leader 1") {
		t.Errorf("leader gauge:\n%s", sb.String())
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestHoursCloseOnlyOnceCollected(t *testing.T) {
	e := newEnv(t)
	hourly(t, e.db, series.Requests, "proj_a", 3, 1, func(h, _ int) float64 { return float64(h + 1) })
	e.clock.Set(t0.Add(3*time.Hour + 15*time.Minute))
	var until time.Time
	var ok bool
	b := e.biller(t, func(o *Options) {
		o.Backfill = 3 * time.Hour
		o.CollectedUntil = func() (time.Time, bool) { return until, ok }
	})
	for _, tc := range []struct {
		name   string
		until  time.Time
		ok     bool
		closed time.Time
		stripe int64
	}{
		{"nothing collected yet", time.Time{}, false, time.Time{}, 0},
		{"collected into hour 1", t0.Add(time.Hour + 30*time.Minute), true, t0.Add(time.Hour), 1},
		{"collected past the settle delay", t0.Add(4 * time.Hour), true, t0.Add(3 * time.Hour), 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			until, ok = tc.until, tc.ok
			cycle(t, b)
			wm, err := e.st.BillingWatermark(context.Background())
			if err != nil || !wm.Equal(tc.closed) {
				t.Errorf("closed until %s (%v), want %s", wm, err, tc.closed)
			}
			if got := e.stripe.Total("cygni_requests", "cus_a"); got != tc.stripe {
				t.Errorf("Stripe total %d, want %d", got, tc.stripe)
			}
		})
	}
}
