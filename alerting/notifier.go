package alerting

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/shopspring/decimal"

	"github.com/cygni/usage/budget"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/store"
)

// Notification types (store.Notification.Type) of the shipped rules; an alert names its type
// in the annotation "type".
const (
	TypeBudgetWarning    = "budget_warning"
	TypeBudgetExceeded   = "budget_exceeded"
	TypeForecastExceeded = "forecast_exceeded"
	TypeUsageAnomaly     = "usage_anomaly"
	TypeBudgetThreshold  = "budget_threshold" // a customer-set threshold (ProjectBudgetThreshold)
	TypeAlertResolved    = "alert_resolved"
	TypeAlert            = "alert" // an alert of a rule file that names no type
)

// LabelThreshold is the alert label that names a budget alert's threshold in percent of the
// limit ("80", "100"; any decimal). The notifier checks it against the exact amounts.
const LabelThreshold = "threshold"

// PeriodSettle is how long an alert that keeps firing across the start of a billing period
// still counts for the period in which it became active. Usage data arrives late, so the first
// minutes of a period can still show the previous period's month-to-date cost; an alert that is
// still firing an hour into the new period is the new period's.
const PeriodSettle = time.Hour

// DefaultResolveAfter is how long an alert must have stopped firing before its episode is
// resolved (NotifierOptions.ResolveAfter).
const DefaultResolveAfter = 5 * time.Minute

// Directory resolves projects to their teams and recipients (the metadata store).
type Directory interface {
	AllProjects(ctx context.Context) ([]store.Project, error)
	ListTeams(ctx context.Context) ([]store.Team, error)
	TeamAdmins(ctx context.Context, teamID string) ([]store.Member, error)
}

// State keeps the alert episodes, the notifications and the outbox (the metadata store).
type State interface {
	OpenAlertEpisodes(ctx context.Context) ([]store.AlertEpisode, error)
	StartAlertEpisode(ctx context.Context, ep store.AlertEpisode, supersede int64, reason string, n store.Notification, out []store.OutboxMessage) (store.AlertEpisode, bool, error)
	SetAlertEpisodeClear(ctx context.Context, id int64, since *time.Time, limit string) error
	ResolveAlertEpisode(ctx context.Context, id int64, at time.Time, n store.Notification, out []store.OutboxMessage) (bool, error)
}

// Costs are a project's exact amounts at one time: its cost in the billing period so far and
// the period's forecast (the query layer's read path, the same numbers as the budget endpoint).
type Costs struct {
	PeriodStart, PeriodEnd time.Time
	Used, Forecast         decimal.Decimal
}

// CostFunc returns the Costs at `at` of projects, all of one team whose billing anchor day is
// anchorDay.
type CostFunc func(ctx context.Context, projects []string, anchorDay int, at time.Time) (map[string]Costs, error)

// NotifierOptions configure a Notifier.
type NotifierOptions struct {
	Directory Directory // required
	State     State     // required
	Costs     CostFunc  // required
	// DayCosts reads the exact cost since local midnight for daily budget alerts; nil: they
	// cannot be confirmed and are skipped.
	DayCosts DayCostFunc
	// Webhook queues a webhook for every notification (a webhook URL is configured).
	Webhook bool
	// ResolvedEmails also e-mails resolutions (to the recipients of the firing e-mail). Default
	// off: a resolution is an in-app notification and a webhook.
	ResolvedEmails bool
	// ResolveAfter is how long an alert must have stopped firing, with fresh data, before its
	// episode is resolved (default DefaultResolveAfter); negative: at once.
	ResolveAfter time.Duration
	// Queued is called (without blocking) after messages were queued, to wake the senders.
	Queued func()
	// Metrics receives the notifier's counters; nil: a private set.
	Metrics *metrics.Set
}

// Notifier turns evaluated alerts into episodes: notifications and queued e-mails/webhooks.
// Its Reconcile method is the Manager's Options.Evaluated. It keeps no state of its own between
// evaluations: the episodes are in the store, so restarts and several replicas agree.
type Notifier struct {
	logger *slog.Logger
	opts   NotifierOptions
	tmpl   *templates

	created, resolved, superseded, stale, unconfirmed, skipped, failures *metrics.Counter
}

// NewNotifier builds a Notifier.
func NewNotifier(logger *slog.Logger, opts NotifierOptions) (*Notifier, error) {
	if opts.Directory == nil || opts.State == nil || opts.Costs == nil {
		return nil, errors.New("notifier: directory, state and costs are required")
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.NewSet()
	}
	if opts.ResolveAfter == 0 {
		opts.ResolveAfter = DefaultResolveAfter
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	t, err := parseTemplates(templateFS)
	if err != nil {
		return nil, err
	}
	vm := opts.Metrics
	return &Notifier{
		logger:      logger.With("component", "notifier"),
		opts:        opts,
		tmpl:        t,
		created:     vm.GetOrCreateCounter(`cygni_alert_notifications_total{state="firing"}`),
		resolved:    vm.GetOrCreateCounter(`cygni_alert_notifications_total{state="resolved"}`),
		superseded:  vm.GetOrCreateCounter(`cygni_alert_episodes_superseded_total`),
		stale:       vm.GetOrCreateCounter(`cygni_alert_skipped_total{reason="stale"}`),
		unconfirmed: vm.GetOrCreateCounter(`cygni_alert_skipped_total{reason="no_fresh_data"}`),
		skipped:     vm.GetOrCreateCounter(`cygni_alert_skipped_total{reason="unknown_project"}`),
		failures:    vm.GetOrCreateCounter(`cygni_alert_notify_errors_total`),
	}, nil
}

// alertIdentity is the alert's name plus its labels other than project and severity.
func alertIdentity(ls labels.Labels) string {
	b := labels.NewBuilder(ls)
	b.Del("project", "severity")
	return b.Labels().String()
}

// BillingPeriod returns the billing period [start, end) that contains t: calendar months in UTC
// starting on anchorDay (1-28; anything else means 1).
func BillingPeriod(t time.Time, anchorDay int) (time.Time, time.Time) {
	return budget.Period(t, anchorDay)
}

// percentUsed and thresholdReached are the budget package's rules (one definition for the API,
// the notifier and the gauges).
func percentUsed(used, limit decimal.Decimal) decimal.Decimal { return budget.PercentUsed(used, limit) }

func thresholdReached(used, limit, th decimal.Decimal) bool { return budget.Reached(used, limit, th) }

// directory is one snapshot of the projects and teams, read once per evaluation.
type directory struct {
	projects map[string]store.Project
	teams    map[string]store.Team
}

func (n *Notifier) readDirectory(ctx context.Context) (*directory, error) {
	ps, err := n.opts.Directory.AllProjects(ctx)
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	ts, err := n.opts.Directory.ListTeams(ctx)
	if err != nil {
		return nil, fmt.Errorf("list teams: %w", err)
	}
	d := &directory{projects: make(map[string]store.Project, len(ps)), teams: make(map[string]store.Team, len(ts))}
	for _, p := range ps {
		d.projects[p.ID] = p
	}
	for _, t := range ts {
		d.teams[t.ID] = t
	}
	return d, nil
}

func (d *directory) lookup(projectID string) (store.Project, store.Team, bool) {
	p, ok := d.projects[projectID]
	if !ok {
		return store.Project{}, store.Team{}, false
	}
	t, ok := d.teams[p.TeamID]
	return p, t, ok
}

// pass is the work of one Reconcile: the evaluation, the directory snapshot and lazily read
// amounts.
type pass struct {
	ev    Evaluation
	dir   *directory
	fresh map[string]bool // projects with current derived series; nil until read
}

type episodeKey struct{ project, alert string }

// Reconcile brings the episodes in line with one evaluation (Manager's Options.Evaluated):
//   - a firing alert without an open episode starts one, with its notification, unless the exact
//     amounts disagree with a threshold alert (the derived gauges lag a budget change: the next
//     evaluation sees fresh ones);
//   - a firing alert whose open episode is of another billing period, or — for a budget alert
//     (threshold label or budget_usd annotation) — under another limit, ends it and starts a new
//     one: a changed limit is a new episode;
//   - an open episode whose healthy rule no longer fires is resolved once it has not fired for
//     ResolveAfter and the project's derived series are current (missing data never resolves),
//     and, for a threshold alert, the exact amounts are below the threshold or a new period began.
//
// A failed step is logged and retried at the next evaluation: everything is read from the state.
func (n *Notifier) Reconcile(ctx context.Context, ev Evaluation) {
	if err := n.reconcile(ctx, ev); err != nil {
		n.failures.Inc()
		n.logger.Warn("reconcile alerts; retrying at the next evaluation", "err", err)
	}
}

func (n *Notifier) reconcile(ctx context.Context, ev Evaluation) error {
	open, err := n.opts.State.OpenAlertEpisodes(ctx)
	if err != nil {
		return err
	}
	firing := 0
	for _, r := range ev.Rules {
		firing += len(r.Firing)
	}
	if firing == 0 && len(open) == 0 {
		return nil
	}
	dir, err := n.readDirectory(ctx)
	if err != nil {
		return err
	}
	ps := &pass{ev: ev, dir: dir}
	byKey := make(map[episodeKey]*store.AlertEpisode, len(open))
	for i := range open {
		byKey[episodeKey{open[i].ProjectID, open[i].Alert}] = &open[i]
	}
	seen := map[episodeKey]bool{}
	healthy := map[string]bool{}
	for _, r := range ev.Rules {
		if r.Healthy {
			healthy[r.Name] = true
		}
		for _, a := range r.Firing {
			key := episodeKey{a.Labels.Get("project"), alertIdentity(a.Labels)}
			seen[key] = true
			fire := n.firing
			switch {
			case isTeamAlert(a.Labels):
				fire = n.teamFiring
			case isDailyAlert(a.Labels):
				fire = n.dailyFiring
			}
			if err := fire(ctx, ps, r, a, byKey); err != nil {
				n.failures.Inc()
				n.logger.Warn("record firing alert; retrying at the next evaluation", "alert", r.Name, "project", key.project, "err", err)
			}
		}
	}
	for _, o := range open { // in id order, so that resolutions are recorded in a stable order
		key := episodeKey{o.ProjectID, o.Alert}
		ep := byKey[key]
		if ep == nil || ep.ID != o.ID || seen[key] || !healthy[ep.AlertName] {
			continue
		}
		clear := n.cleared
		if ep.ProjectID == "" {
			clear = n.teamCleared
		} else if ls, err := parser.NewParser(parser.Options{}).ParseMetric(ep.Alert); err == nil && isDailyAlert(ls) {
			clear = n.dailyCleared
		}
		if err := clear(ctx, ps, ep); err != nil {
			n.failures.Inc()
			n.logger.Warn("record cleared alert; retrying at the next evaluation", "alert", ep.AlertName, "project", ep.ProjectID, "err", err)
		}
	}
	return nil
}

// sameLimit reports whether an episode's recorded limit is limit.
func sameLimit(recorded string, limit decimal.Decimal) bool {
	d, err := decimal.NewFromString(recorded)
	return err == nil && d.Equal(limit)
}

// budgetBound reports whether an alert is about the budget: a changed limit starts a new
// episode of it.
func budgetBound(a *rules.Alert) bool {
	return a.Labels.Get(LabelThreshold) != "" || a.Annotations.Get("budget_usd") != ""
}

func (n *Notifier) firing(ctx context.Context, ps *pass, r RuleAlerts, a *rules.Alert, byKey map[episodeKey]*store.AlertEpisode) error {
	projectID := a.Labels.Get("project")
	p, team, ok := ps.dir.lookup(projectID)
	if !ok {
		// No project label, or usage of a project the store does not know (unmapped usage is
		// reported elsewhere).
		n.skipped.Inc()
		return nil
	}
	key := episodeKey{projectID, alertIdentity(a.Labels)}
	limit := store.EffectiveLimit(p, team)
	at := a.ActiveAt
	if settle := ps.ev.At.Add(-PeriodSettle); at.Before(settle) {
		at = settle
	}
	start, end := BillingPeriod(at, team.BillingAnchorDay)
	period := start.Format(time.DateOnly)
	bound := budgetBound(a)
	ep := byKey[key]
	if ep != nil && ep.Period == period && (ep.Limit == "" || !bound || sameLimit(ep.Limit, limit)) {
		// The same episode goes on.
		if ep.ClearSince != nil || ep.Limit == "" {
			if err := n.opts.State.SetAlertEpisodeClear(ctx, ep.ID, nil, limit.String()); err != nil {
				return err
			}
			ep.ClearSince, ep.Limit = nil, limit.String()
		}
		return nil
	}
	c, err := n.costs(ctx, p, team, ps.ev.At)
	if err != nil {
		return err
	}
	if t := a.Labels.Get(LabelThreshold); t != "" {
		if th, err := decimal.NewFromString(t); err == nil && !thresholdCrossed(a.Labels, th, c, limit) {
			// The alert was evaluated on derived gauges that lag the exact amounts (a budget was
			// just changed); the next evaluation, on fresh gauges, decides.
			n.stale.Inc()
			n.logger.Debug("threshold alert not confirmed by the exact amounts; waiting for fresh gauges", "alert", r.Name, "project", projectID,
				"used", c.Used.StringFixed(2), "limit", limit.String(), "threshold", t)
			return nil
		}
	}
	a.Annotations.Range(func(l labels.Label) {
		if strings.HasPrefix(l.Value, "<error expanding template") {
			n.logger.Warn("alert annotation template failed; the notification uses the exact amounts", "rule", r.Position, "alert", r.Name, "annotation", l.Name, "err", l.Value)
		}
	})
	cn := n.content(a, p, team, start, end, limit, c)
	note := store.Notification{
		ID: newNotificationID(), TeamID: team.ID, ProjectID: projectID, Type: cn.Type,
		Severity: cn.Severity, Message: cn.Message, Payload: cn.payload(), CreatedAt: ps.ev.At.UTC(),
	}
	out, err := n.outbox(ctx, note, cn, team)
	if err != nil {
		return err
	}
	var supersede int64
	reason := ""
	if ep != nil {
		supersede, reason = ep.ID, store.EndLimitChanged
		if ep.Period != period {
			reason = store.EndNewPeriod
		}
	}
	started, created, err := n.opts.State.StartAlertEpisode(ctx, store.AlertEpisode{
		ProjectID: projectID, Alert: key.alert, AlertName: r.Name, Type: cn.Type, Severity: cn.Severity,
		Period: period, Limit: limit.String(), StartedAt: ps.ev.At.UTC(),
	}, supersede, reason, note, out)
	if err != nil {
		return err
	}
	if created {
		byKey[key] = &started
		n.created.Inc()
		if supersede != 0 {
			n.superseded.Inc()
		}
		n.logger.Info("alert notification created", "alert", r.Name, "project", projectID, "period", period, "limit", limit.String(),
			"severity", cn.Severity, "used", cn.Used, "percent", cn.Percent, "supersedes", reason, "messages", len(out))
		n.queued(out)
	}
	return nil
}

// cleared handles an open episode whose alert did not fire in this evaluation.
func (n *Notifier) cleared(ctx context.Context, ps *pass, ep *store.AlertEpisode) error {
	at := ps.ev.At
	if ep.ClearSince == nil {
		if err := n.opts.State.SetAlertEpisodeClear(ctx, ep.ID, &at, ""); err != nil {
			return err
		}
		ep.ClearSince = &at
	}
	if at.Sub(*ep.ClearSince) < n.opts.ResolveAfter {
		return nil
	}
	p, team, ok := ps.dir.lookup(ep.ProjectID)
	if !ok {
		return nil // a deleted project: nobody to tell
	}
	fresh, err := n.freshProjects(ctx, ps)
	if err != nil {
		return err
	}
	if fresh != nil && !fresh[ep.ProjectID] {
		// The alert stopped firing because its data is missing, not because the condition
		// cleared.
		n.unconfirmed.Inc()
		n.logger.Debug("alert not firing but the project's derived series are missing; not resolved", "alert", ep.AlertName, "project", ep.ProjectID)
		return nil
	}
	c, err := n.costs(ctx, p, team, at)
	if err != nil {
		return err
	}
	limit := store.EffectiveLimit(p, team)
	start, end := BillingPeriod(at, team.BillingAnchorDay)
	newPeriod := start.Format(time.DateOnly) != ep.Period
	ls, _ := parser.NewParser(parser.Options{}).ParseMetric(ep.Alert)
	if t := ls.Get(LabelThreshold); t != "" && !newPeriod {
		if ls.Get(LabelBasis) == budget.BasisForecast {
			return nil // a forecast threshold notifies once per billing period and limit: its episode stays open
		}
		if th, err := decimal.NewFromString(t); err == nil && thresholdCrossed(ls, th, c, limit) {
			n.unconfirmed.Inc()
			n.logger.Debug("alert not firing but the exact amounts are over its threshold; not resolved", "alert", ep.AlertName, "project", ep.ProjectID)
			return nil
		}
	}
	cn := content{Type: ep.Type, Severity: ep.Severity, Alert: ep.AlertName, ProjectID: p.ID, ProjectName: p.Name, TeamName: team.Name,
		PeriodStart: start, PeriodEnd: end, Resolved: true, Threshold: ls.Get(LabelThreshold), Basis: ls.Get(LabelBasis)}
	if cn.ProjectName == "" {
		cn.ProjectName = p.ID
	}
	cn.setAmounts(limit, c)
	cn.Title = title(ep.Type, ep.AlertName)
	cn.Message = fmt.Sprintf("Resolved: %s for %s is no longer active (%s)", cn.Title, p.ID, resolvedReason(ep.Type, newPeriod))
	if cn.Used != "" {
		cn.Message += fmt.Sprintf("; $%s of its $%s budget (%s %%) used this billing period", cn.Used, cn.Budget, cn.Percent)
	}
	note := store.Notification{
		ID: newNotificationID(), TeamID: team.ID, ProjectID: p.ID, Type: TypeAlertResolved,
		Severity: "info", Message: cn.Message, Payload: cn.payload(), CreatedAt: at.UTC(),
	}
	note.Payload["resolvedType"] = ep.Type
	var out []store.OutboxMessage
	if n.opts.ResolvedEmails {
		var err error
		if out, err = n.outbox(ctx, note, cn, team); err != nil {
			return err
		}
	} else if n.opts.Webhook {
		b, err := json.Marshal(webhookBody(note, cn))
		if err != nil {
			return fmt.Errorf("encode webhook: %w", err)
		}
		out = append(out, store.OutboxMessage{Channel: store.ChannelWebhook, Payload: b})
	}
	done, err := n.opts.State.ResolveAlertEpisode(ctx, ep.ID, at.UTC(), note, out)
	if err != nil {
		return err
	}
	if done {
		n.resolved.Inc()
		n.logger.Info("alert resolution recorded", "alert", ep.AlertName, "project", p.ID, "used", cn.Used, "limit", cn.Budget)
		n.queued(out)
	}
	return nil
}

// freshProjects returns the projects whose derived month-to-date gauge is current at the
// evaluation (read once per pass); nil when the evaluation has no query function.
func (n *Notifier) freshProjects(ctx context.Context, ps *pass) (map[string]bool, error) {
	if ps.fresh != nil || ps.ev.Query == nil {
		return ps.fresh, nil
	}
	v, err := ps.ev.Query(ctx, "count by ("+series.LabelProject+") ("+series.ProjectCostMonthToDateUSD+")", ps.ev.At)
	if err != nil {
		return nil, fmt.Errorf("read the derived series: %w", err)
	}
	ps.fresh = make(map[string]bool, len(v))
	for _, s := range v {
		ps.fresh[s.Metric.Get(series.LabelProject)] = true
	}
	return ps.fresh, nil
}

func (n *Notifier) costs(ctx context.Context, p store.Project, t store.Team, at time.Time) (Costs, error) {
	cs, err := n.opts.Costs(ctx, []string{p.ID}, t.BillingAnchorDay, at)
	if err != nil {
		return Costs{}, fmt.Errorf("read the costs of %s: %w", p.ID, err)
	}
	return cs[p.ID], nil
}

func resolvedReason(typ string, newPeriod bool) string {
	if newPeriod {
		return "a new billing period began"
	}
	switch typ {
	case TypeBudgetWarning, TypeBudgetExceeded, TypeBudgetThreshold:
		return "the cost of the billing period is below the threshold: the budget was raised or the cost corrected"
	case TypeForecastExceeded:
		return "the forecast is within the budget again, or the budget is now exceeded"
	case TypeUsageAnomaly:
		return "the hourly cost is back near its usual level"
	}
	return "the alert condition no longer holds"
}

func (n *Notifier) queued(out []store.OutboxMessage) {
	if len(out) > 0 && n.opts.Queued != nil {
		n.opts.Queued()
	}
}

// outbox renders the e-mail (warning → the billing contact, critical → every team admin) and
// the webhook of a notification.
func (n *Notifier) outbox(ctx context.Context, note store.Notification, c content, team store.Team) ([]store.OutboxMessage, error) {
	var out []store.OutboxMessage
	to, webhook, err := n.chosenRecipients(ctx, c, team)
	if err != nil {
		return nil, err
	}
	if len(to) > 0 {
		e, err := n.tmpl.render(note, c, team, to)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("encode e-mail: %w", err)
		}
		out = append(out, store.OutboxMessage{Channel: store.ChannelEmail, Payload: b})
	} else {
		n.logger.Warn("no e-mail recipient for the team; the notification is in-app only", "team", team.ID, "severity", c.Severity)
	}
	if webhook {
		b, err := json.Marshal(webhookBody(note, c))
		if err != nil {
			return nil, fmt.Errorf("encode webhook: %w", err)
		}
		out = append(out, store.OutboxMessage{Channel: store.ChannelWebhook, Payload: b})
	}
	return out, nil
}

// recipients: critical → every team admin (seed: "Email sent to all team admins"); otherwise
// the billing contact, or the admins when the team has none.
func (n *Notifier) recipients(ctx context.Context, severity string, team store.Team) ([]string, error) {
	if severity != "critical" && team.BillingEmail != "" {
		return []string{team.BillingEmail}, nil
	}
	admins, err := n.opts.Directory.TeamAdmins(ctx, team.ID)
	if err != nil {
		return nil, fmt.Errorf("list admins of %s: %w", team.ID, err)
	}
	var to []string
	for _, m := range admins {
		if m.Email != "" {
			to = append(to, m.Email)
		}
	}
	sort.Strings(to)
	if len(to) == 0 && team.BillingEmail != "" {
		to = []string{team.BillingEmail}
	}
	return to, nil
}

// content is what a notification says, in every channel.
type content struct {
	Type, Severity, Alert, Title, Message string
	ProjectID, ProjectName, TeamName      string
	PeriodStart, PeriodEnd                time.Time
	// Amounts in USD as exact decimal strings with two places ("" when unknown), the percentage
	// of the budget used with one place, and the anomaly factor.
	Used, Budget, Forecast, Hour, Baseline, Percent, Factor string
	Resolved                                                bool
	Summary                                                 string
	// Threshold and Basis are a threshold alert's labels (percent; actual|forecast); ForecastPercent
	// is the forecast as a percentage of the budget (one place).
	Threshold, Basis, ForecastPercent string
	// Zone is the time zone of a daily budget's day (PeriodStart, PeriodEnd are local midnights).
	Zone string
}

func (c content) payload() map[string]any {
	p := map[string]any{
		"alert":       c.Alert,
		"periodStart": c.PeriodStart.Format(time.DateOnly),
		"periodEnd":   c.PeriodEnd.Format(time.DateOnly),
	}
	for k, v := range c.amounts() {
		p[k] = v
	}
	return p
}

// amounts are the non-empty amounts by their payload names.
func (c content) amounts() map[string]string {
	out := map[string]string{}
	for k, v := range map[string]string{"used": c.Used, "limit": c.Budget, "forecast": c.Forecast, "hourCost": c.Hour, "baseline": c.Baseline, "percentUsed": c.Percent} {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

// setAmounts fills the budget amounts from the exact costs and limit at the notification's time
// (amounts rounded once to cents, the percent floored to one decimal: the budget endpoint's
// rules).
func (c *content) setAmounts(limit decimal.Decimal, cs Costs) {
	c.Used, c.Budget = cs.Used.StringFixed(2), limit.StringFixed(2)
	c.Percent = percentUsed(cs.Used, limit).StringFixed(1)
	c.Forecast = cs.Forecast.StringFixed(2)
	c.ForecastPercent = percentUsed(cs.Forecast, limit).StringFixed(1)
}

// money parses an annotation amount and renders it with two decimal places.
func money(s string) (string, bool) {
	d, err := decimal.NewFromString(strings.TrimSpace(s))
	if err != nil {
		return "", false
	}
	return d.StringFixed(2), true
}

func title(typ, alert string) string {
	switch typ {
	case TypeBudgetWarning:
		return "Budget warning"
	case TypeBudgetExceeded:
		return "Budget exceeded"
	case TypeForecastExceeded:
		return "Forecast over budget"
	case TypeUsageAnomaly:
		return "Unusual usage"
	case TypeBudgetThreshold:
		return "Budget threshold"
	}
	return alert
}

// content builds the texts of a firing alert: the budget amounts from the exact costs and
// limit, the anomaly amounts from its annotations.
func (n *Notifier) content(a *rules.Alert, p store.Project, t store.Team, start, end time.Time, limit decimal.Decimal, cs Costs) content {
	ann := a.Annotations
	c := content{
		Type: ann.Get("type"), Severity: a.Labels.Get("severity"), Alert: a.Labels.Get(labels.AlertName),
		ProjectID: p.ID, ProjectName: p.Name, TeamName: t.Name, PeriodStart: start, PeriodEnd: end,
		Summary: ann.Get("summary"), Threshold: a.Labels.Get(LabelThreshold), Basis: a.Labels.Get(LabelBasis),
	}
	if c.Type == "" {
		c.Type = TypeAlert
	}
	if c.Severity != "critical" && c.Severity != "info" {
		c.Severity = "warning"
	}
	if c.ProjectName == "" {
		c.ProjectName = p.ID
	}
	c.setAmounts(limit, cs)
	c.Hour, _ = money(ann.Get("hour_usd"))
	c.Baseline, _ = money(ann.Get("baseline_usd"))
	if f, err := decimal.NewFromString(strings.TrimSpace(ann.Get("factor"))); err == nil {
		c.Factor = f.String()
	}
	c.Title = title(c.Type, c.Alert)
	switch c.Type {
	case TypeBudgetWarning:
		c.Message = fmt.Sprintf("%s has used $%s of its $%s budget (%s %%) this billing period", p.ID, c.Used, c.Budget, c.Percent)
	case TypeBudgetExceeded:
		c.Message = fmt.Sprintf("%s has exceeded its budget: $%s of $%s (%s %%) used this billing period. Services keep running; reduce usage or raise the limit", p.ID, c.Used, c.Budget, c.Percent)
	case TypeForecastExceeded:
		c.Message = fmt.Sprintf("%s is forecast to spend $%s this billing period, over its $%s budget ($%s so far)", p.ID, c.Forecast, c.Budget, c.Used)
	case TypeBudgetThreshold:
		c.Message = thresholdMessage(c)
	case TypeUsageAnomaly:
		if c.Hour != "" && c.Baseline != "" {
			factor := "several"
			if c.Factor != "" {
				factor = c.Factor
			}
			c.Message = fmt.Sprintf("%s cost $%s in the last hour, more than %s times its usual $%s an hour", p.ID, c.Hour, factor, c.Baseline)
		}
	}
	if c.Message == "" {
		c.Message = c.Summary
	}
	if c.Message == "" {
		c.Message = fmt.Sprintf("%s is firing for %s", c.Alert, p.ID)
	}
	return c
}

func newNotificationID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return store.PrefixNotification + hex.EncodeToString(b[:])
}
