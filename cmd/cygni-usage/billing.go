package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/alecthomas/kingpin/v2"
	"github.com/shopspring/decimal"

	"github.com/cygni/usage/billing"
	"github.com/cygni/usage/collector"
	"github.com/cygni/usage/store"
	"github.com/cygni/usage/tsdb"
)

// crashAfterSendEnv is a test hook: when set to 1, the billing sink kills its own process with
// SIGKILL right after Stripe answered a report and before the outbox records it, so that the
// end-to-end tests can prove that a restart neither loses nor duplicates the report.
const crashAfterSendEnv = "CYGNI_BILLING_TEST_CRASH_AFTER_SEND"

// newBiller builds the billing sink from the configuration, with its metrics on vm (nil: a
// private set, for a sink that is not run and must not shadow the running one's gauges). It
// starts nothing.
func (p *process) newBiller(vm *metrics.Set) (*billing.Biller, error) {
	c := p.cfg.Billing
	meters := map[string]billing.Meter{}
	for name, m := range c.Meters {
		if m.Disabled {
			continue
		}
		u, err := decimal.NewFromString(m.Unit)
		if err != nil {
			return nil, fmt.Errorf("billing.meters.%s.unit: %w", name, err)
		}
		meters[name] = billing.Meter{EventName: m.EventName, Unit: u}
	}
	opts := billing.Options{
		Queryable: p.db, Store: p.store, Metrics: vm,
		Mode: c.Mode, Meters: meters,
		StripeURL: c.Stripe.URL, StripeKey: c.Stripe.APIKey.Reveal(),
		SettleDelay: c.SettleDelay.D(), Interval: c.Interval.D(), RecheckWindow: c.RecheckWindow.D(), RecheckEvery: c.RecheckInterval.D(),
		Window: c.Window.D(), Backfill: c.Backfill.D(), MaxBackoff: c.MaxBackoff.D(),
		Now: p.now,
	}
	if c.WaitForCollector {
		opts.CollectedUntil = p.collectedUntil
	}
	if p.engine != nil {
		opts.Usage = p.engine // the API's hourly amounts, hourly tier included
	}
	if os.Getenv(crashAfterSendEnv) == "1" {
		opts.AfterSend = func(r store.BillingReport) {
			p.logger.Warn("test hook: killing the process between send and record", "identifier", r.Identifier)
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Minute)
		}
	}
	return billing.New(p.logger, p.reg, opts)
}

// collectedUntil is the collector's persisted watermark: in the data dir, or in remote mode
// the least of every shard's watermark in the store (a billing process of its own has no
// collector, and no watermark file, beside it).
func (p *process) collectedUntil() (time.Time, bool) {
	if p.cfg.Storage.Mode == tsdb.ModeRemote {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		u, ok, err := p.store.CollectedUntil(ctx)
		if err != nil {
			p.logger.Warn("read the collectors' watermarks; closing no billing hour until they are readable", "err", err)
			return time.Time{}, false
		}
		return u, ok
	}
	wm, ok, err := collector.ReadWatermark(p.cfg.DataDir)
	if err != nil {
		p.logger.Warn("read the collector's watermark; closing no billing hour until it is readable", "err", err)
		return time.Time{}, false
	}
	return wm, ok
}

// wireBillingAPI gives the API the billing endpoints (reports, retry, reconcile).
func (p *process) wireBillingAPI() error {
	b, err := p.newBiller(nil)
	if err != nil {
		return err
	}
	p.api.BillingReports = p.store
	p.api.Linker = billing.NewLinker(p.store, p.cfg.Billing.Stripe.URL, p.cfg.Billing.Stripe.APIKey.Reveal(), nil, p.now)
	p.api.Reconcile = func(ctx context.Context, month time.Time, teamID string) (any, error) {
		teams, err := projectTeams(ctx, p.store)
		if err != nil {
			return nil, err
		}
		return b.Reconcile(ctx, month, func(project, _ string) bool { return teams[project] == teamID })
	}
	return nil
}

// wireBilling adds the billing sink: it closes settled hours into the outbox and reports them
// to Stripe, as the one leader among the replicas that share the store.
func (p *process) wireBilling() error {
	if !p.cfg.Billing.Enabled {
		p.logger.Info("billing is disabled (billing.enabled: false)")
		return nil
	}
	b, err := p.newBiller(p.vm)
	if err != nil {
		return err
	}
	if p.cfg.Billing.Stripe.APIKey == "" {
		p.logger.Warn("no Stripe API key: hours are closed into the outbox and held until billing.stripe.api_key or CYGNI_STRIPE_API_KEY is set")
	}
	p.add("billing", b.Run)
	return nil
}

func projectTeams(ctx context.Context, st *store.Store) (map[string]string, error) {
	ps, err := st.AllProjects(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(ps))
	for _, x := range ps {
		m[x.ID] = x.TeamID
	}
	return m, nil
}

type reconcileCmd struct {
	month  string
	asJSON bool
	server string
	token  string
}

func registerBillingReconcile(app *kingpin.Application) (string, command) {
	c := &reconcileCmd{}
	cl := groupClause(app, "billing", "Billing to Stripe.").Command("reconcile",
		"Compare a month's hourly usage with what the outbox recorded, what was reported to Stripe and what Stripe itself holds (its meter event or usage record summaries), and list every difference with its cause. Exits 3 when there are differences.")
	cl.Flag("month", "The month, YYYY-MM (UTC).").Required().StringVar(&c.month)
	cl.Flag("json", "Print the reconciliation as JSON.").BoolVar(&c.asJSON)
	cl.Flag("server", "Ask this running server (e.g. http://127.0.0.1:8080) instead of opening the data directory; needs --token.").StringVar(&c.server)
	cl.Flag("token", "An admin token for --server (or CYGNI_TOKEN).").Envar("CYGNI_TOKEN").StringVar(&c.token)
	return cl.FullCommand(), c
}

func (c *reconcileCmd) run(g *globals) error {
	month, err := time.Parse("2006-01", c.month)
	if err != nil {
		return fmt.Errorf("--month %q is not YYYY-MM", c.month)
	}
	var rec *billing.Reconciliation
	if c.server != "" {
		rec = &billing.Reconciliation{}
		err = c.fetch(rec)
	} else {
		rec, err = c.local(g, month)
	}
	if err != nil {
		return err
	}
	if c.asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rec); err != nil {
			return err
		}
	} else if err := printReconciliation(os.Stdout, rec); err != nil {
		return fmt.Errorf("print the reconciliation: %w", err)
	}
	if len(rec.Differences) > 0 {
		os.Exit(3)
	}
	return nil
}

// local reconciles from the data directory (and the configured store).
func (c *reconcileCmd) local(g *globals, month time.Time) (*billing.Reconciliation, error) {
	cfg, err := loadConfig(g)
	if err != nil {
		return nil, err
	}
	cfg.LogLevel = "warn"
	p, err := open(cfg, openOptions{})
	if err != nil {
		if strings.Contains(err.Error(), "lock") {
			return nil, fmt.Errorf("%w\nthe TSDB is in use by a running server: stop it, or ask it with --server URL --token ADMIN_TOKEN", err)
		}
		return nil, err
	}
	defer p.close()
	b, err := p.newBiller(nil)
	if err != nil {
		return nil, err
	}
	sctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(sctx, 10*time.Minute)
	defer cancel()
	return b.Reconcile(ctx, month, nil)
}

func (c *reconcileCmd) fetch(rec *billing.Reconciliation) error {
	if c.token == "" {
		return fmt.Errorf("--server needs --token (an admin token) or CYGNI_TOKEN")
	}
	u := strings.TrimRight(c.server, "/") + "/api/billing/reconcile?month=" + url.QueryEscape(c.month)
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := (&http.Client{Timeout: 10 * time.Minute}).Do(req)
	if err != nil {
		return fmt.Errorf("ask %s: %w", c.server, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s: %s", u, resp.Status, strings.TrimSpace(string(b)))
	}
	return json.Unmarshal(b, rec)
}

func printReconciliation(out io.Writer, rec *billing.Reconciliation) error {
	closed := "nothing closed yet"
	if rec.ClosedUntil != nil {
		closed = "hours closed until " + rec.ClosedUntil.Format(time.RFC3339)
	}
	fmt.Fprintf(out, "Billing reconciliation for %s (%s)\n\n", rec.Month, closed)
	if !rec.StripeChecked {
		fmt.Fprintf(out, "%s\n\n", rec.StripeError)
	}
	var rows [][]string
	for _, t := range rec.Totals {
		stripe := "-"
		if t.Stripe != nil {
			stripe = fmt.Sprint(*t.Stripe)
		}
		rows = append(rows, []string{t.ProjectID, t.Metric, t.Unit, t.Usage, t.Recorded, fmt.Sprint(t.Reported), stripe, fmt.Sprint(t.Unsent), fmt.Sprint(t.Lost), t.Difference})
	}
	if err := table(out, "PROJECT\tMETRIC\tUNIT\tUSAGE\tRECORDED\tREPORTED\tSTRIPE\tUNSENT\tLOST\tDIFFERENCE", rows); err != nil {
		return err
	}
	if len(rec.Differences) == 0 {
		_, err := fmt.Fprintln(out, "\nNo differences: every hour's usage was recorded and reported.")
		return err
	}
	fmt.Fprintf(out, "\n%d differences:\n", len(rec.Differences))
	rows = rows[:0]
	for _, d := range rec.Differences {
		project := d.ProjectID
		if project == "" {
			project = d.Customer
		}
		rows = append(rows, []string{d.Hour.Format(time.RFC3339), project, d.Metric, d.Kind, d.Usage, d.Recorded, fmt.Sprint(d.Quantity), d.Detail})
	}
	return table(out, "HOUR\tPROJECT\tMETRIC\tKIND\tUSAGE\tRECORDED\tQUANTITY\tDETAIL", rows)
}

func registerBillingSubscriptionItem(app *kingpin.Application) (string, command) {
	var project, metric, item string
	cl := groupClause(app, "billing", "Billing to Stripe.").Command("subscription-item",
		"Map a project's billed metric to a Stripe subscription item (billing.mode: usage_records), checked against Stripe; the hours held for it are sent in the billing leader's next cycle. An empty item removes the mapping.")
	cl.Arg("project", "The project id.").Required().StringVar(&project)
	cl.Arg("metric", "cpu, memory, egress or requests.").Required().EnumVar(&metric, "cpu", "memory", "egress", "requests")
	cl.Arg("item", "The subscription item id (si_…).").StringVar(&item)
	return cl.FullCommand(), &adminCmd{link: func(ctx context.Context, l *billing.Linker, st *store.Store, out io.Writer) error {
		old, _ := st.BillingSubscriptionItem(ctx, project, metric)
		if err := l.LinkSubscriptionItem(ctx, project, metric, item); err != nil {
			return linkErr(err)
		}
		if old != item {
			teams, err := projectTeams(ctx, st)
			if err != nil {
				return err
			}
			if err := cliAudit(ctx, st, teams[project], store.AuditSubscriptionItem, project+" "+metric, old, item); err != nil {
				return err
			}
		}
		fmt.Fprintf(out, "%s %s → %q\n", project, metric, item)
		return nil
	}}
}

func registerTeamSetStripeCustomer(app *kingpin.Application) (string, command) {
	var team, customer string
	cl := teamClause(app).Command("set-stripe-customer",
		"Link a team to its Stripe customer, checked against Stripe (the customer must exist); the hours held for it are sent in the billing leader's next cycle. An empty customer (\"\") unlinks the team.")
	cl.Arg("team", "The team id.").Required().StringVar(&team)
	cl.Arg("customer", "The Stripe customer id (cus_…).").Required().StringVar(&customer)
	return cl.FullCommand(), &adminCmd{link: func(ctx context.Context, l *billing.Linker, st *store.Store, out io.Writer) error {
		old := ""
		if t, err := st.GetTeam(ctx, team); err == nil {
			old = t.StripeCustomerID
		}
		if err := l.LinkTeamCustomer(ctx, team, customer); err != nil {
			return linkErr(err)
		}
		if old != customer {
			if err := cliAudit(ctx, st, team, store.AuditStripeCustomer, team, old, customer); err != nil {
				return err
			}
		}
		if customer == "" {
			fmt.Fprintf(out, "%s is not linked to a Stripe customer; its hours are held\n", team)
			return nil
		}
		fmt.Fprintf(out, "%s → Stripe customer %s; held hours are sent in the billing leader's next cycle\n", team, customer)
		return nil
	}}
}

// linkErr says what to do about a link that failed.
func linkErr(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w (see team list / project list)", err)
	case errors.Is(err, billing.ErrNotInStripe):
		return fmt.Errorf("%w: check the id in the Stripe dashboard (test and live mode have different customers); nothing changed", err)
	case errors.Is(err, billing.ErrStripeNotConfigured):
		return fmt.Errorf("%w: the link is checked against Stripe; nothing changed", err)
	}
	return fmt.Errorf("%w; nothing changed", err)
}
