package alerting

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/rules"
	"github.com/shopspring/decimal"

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
func writeDerived(t testing.TB, db *tsdb.DB, st *store.Store, ts time.Time, budget, mtd, forecast float64) {
	t.Helper()
	setLimit(t, st, budget)
	writeGauges(t, db, ts, budget, mtd, forecast)
}

// setLimit sets proj_001's budget limit in the store.
func setLimit(t testing.TB, st *store.Store, budget float64) {
	t.Helper()
	if err := st.SetBudgetLimit(context.Background(), "team_acme", "proj_001", decimal.NewFromFloat(budget)); err != nil {
		t.Fatal(err)
	}
}

// writeGauges writes the Deriver's gauges for proj_001 at ts, leaving the store alone.
func writeGauges(t testing.TB, db *tsdb.DB, ts time.Time, budget, mtd, forecast float64) {
	t.Helper()
	app := db.Appender(context.Background())
	for name, v := range map[string]float64{
		series.ProjectBudgetUSD:          budget,
		series.ProjectCostMonthToDateUSD: mtd,
		series.ProjectCostForecastUSD:    forecast,
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
func gaugeCosts(db *tsdb.DB) CostFunc {
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

// received is one message the SMTP server accepted.
type received struct {
	From    string
	To      []string
	Subject string
	Text    string
	HTML    string
	Header  mail.Header
}

// smtpServer is a real SMTP server (emersion/go-smtp) on loopback that keeps what it receives.
type smtpServer struct {
	mu   sync.Mutex
	msgs []received
	srv  *smtp.Server
	Addr string
}

type smtpSession struct {
	s    *smtpServer
	from string
	to   []string
}

func (s *smtpServer) NewSession(*smtp.Conn) (smtp.Session, error) { return &smtpSession{s: s}, nil }

func (ss *smtpSession) Reset()        { ss.from, ss.to = "", nil }
func (ss *smtpSession) Logout() error { return nil }
func (ss *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	ss.from = from
	return nil
}
func (ss *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}
func (ss *smtpSession) Data(r io.Reader) error {
	m, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	rc := received{From: ss.from, To: append([]string(nil), ss.to...), Header: m.Header}
	rc.Subject, _ = new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		return err
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart() // decodes quoted-printable
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(p)
		switch {
		case strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain"):
			rc.Text = string(b)
		case strings.HasPrefix(p.Header.Get("Content-Type"), "text/html"):
			rc.HTML = string(b)
		}
	}
	ss.s.mu.Lock()
	ss.s.msgs = append(ss.s.msgs, rc)
	ss.s.mu.Unlock()
	return nil
}

// startSMTP serves on addr ("127.0.0.1:0" for any port) until the test ends.
func startSMTP(t testing.TB, addr string) *smtpServer {
	t.Helper()
	s := &smtpServer{}
	s.srv = smtp.NewServer(s)
	s.srv.Domain = "localhost"
	s.srv.AllowInsecureAuth = true
	s.srv.ReadTimeout = 10 * time.Second
	s.srv.WriteTimeout = 10 * time.Second
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	go func() { _ = s.srv.Serve(ln) }()
	t.Cleanup(func() { _ = s.srv.Close() })
	return s
}

func (s *smtpServer) messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...)
}

func (s *smtpServer) port(t testing.TB) int {
	t.Helper()
	_, p, _ := net.SplitHostPort(s.Addr)
	var n int
	for _, c := range p {
		n = n*10 + int(c-'0')
	}
	return n
}
