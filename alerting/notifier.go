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
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/rules"
	"github.com/shopspring/decimal"

	"github.com/cygni/usage/store"
)

// Notification types (store.Notification.Type) of the shipped rules; an alert names its type
// in the annotation "type".
const (
	TypeBudgetWarning    = "budget_warning"
	TypeBudgetExceeded   = "budget_exceeded"
	TypeForecastExceeded = "forecast_exceeded"
	TypeUsageAnomaly     = "usage_anomaly"
	TypeAlertResolved    = "alert_resolved"
	TypeAlert            = "alert" // an alert of a rule file that names no type
)

// PeriodSettle is how long an alert that keeps firing across the start of a billing period
// still counts for the period in which it became active. Usage data arrives late, so the first
// minutes of a period can still show the previous period's month-to-date cost; an alert that is
// still firing an hour into the new period is the new period's.
const PeriodSettle = time.Hour

// Directory resolves projects to their teams and recipients (the metadata store).
type Directory interface {
	AllProjects(ctx context.Context) ([]store.Project, error)
	ListTeams(ctx context.Context) ([]store.Team, error)
	TeamAdmins(ctx context.Context, teamID string) ([]store.Member, error)
}

// State keeps the dedup state, the notifications and the outbox (the metadata store).
type State interface {
	AlertNotified(ctx context.Context, key store.AlertKey) (bool, error)
	AlertOpen(ctx context.Context, projectID, alert string) (bool, error)
	RecordAlertFiring(ctx context.Context, key store.AlertKey, alertName string, n store.Notification, out []store.OutboxMessage) (store.Notification, bool, error)
	RecordAlertResolved(ctx context.Context, projectID, alert string, n store.Notification, out []store.OutboxMessage) (store.Notification, bool, error)
}

// NotifierOptions configure a Notifier.
type NotifierOptions struct {
	Directory Directory // required
	State     State     // required
	// Webhook queues a webhook for every notification (a webhook URL is configured).
	Webhook bool
	// Queued is called (without blocking) after messages were queued, to wake the senders.
	Queued func()
	// Metrics receives the notifier's counters; nil: a private set.
	Metrics *metrics.Set
	// Now is the clock for alerts that carry no evaluation time; nil: time.Now.
	Now func() time.Time
}

// Notifier turns the rule manager's alerts into notifications and queued e-mails/webhooks.
// Its Notify method is the rule manager's NotifyFunc.
type Notifier struct {
	logger *slog.Logger
	opts   NotifierOptions
	tmpl   *templates

	mu        sync.Mutex
	projects  map[string]store.Project
	teams     map[string]store.Team
	refreshed time.Time

	created, resolved, skipped, failures *metrics.Counter
}

// directoryTTL is how long the project/team cache is trusted; an unknown project refreshes it
// at most every directoryMinRefresh.
const (
	directoryTTL        = time.Minute
	directoryMinRefresh = 10 * time.Second
)

// NewNotifier builds a Notifier.
func NewNotifier(logger *slog.Logger, opts NotifierOptions) (*Notifier, error) {
	if opts.Directory == nil || opts.State == nil {
		return nil, errors.New("notifier: directory and state are required")
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.NewSet()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	t, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	return &Notifier{
		logger:   logger.With("component", "notifier"),
		opts:     opts,
		tmpl:     t,
		created:  opts.Metrics.GetOrCreateCounter(`cygni_alert_notifications_total{state="firing"}`),
		resolved: opts.Metrics.GetOrCreateCounter(`cygni_alert_notifications_total{state="resolved"}`),
		skipped:  opts.Metrics.GetOrCreateCounter(`cygni_alert_skipped_total`),
		failures: opts.Metrics.GetOrCreateCounter(`cygni_alert_notify_errors_total`),
	}, nil
}

// Notify is a rules.NotifyFunc. It records firing and resolved alerts; a failure is logged and
// retried when the rule manager re-sends the alert (every minute while it lasts).
func (n *Notifier) Notify(ctx context.Context, expr string, alerts ...*rules.Alert) {
	for _, a := range alerts {
		var err error
		switch {
		case a.State == rules.StateFiring:
			err = n.firing(ctx, a)
		case a.State == rules.StateInactive && !a.ResolvedAt.IsZero():
			err = n.resolvedAlert(ctx, a)
		}
		if err != nil {
			n.failures.Inc()
			n.logger.Warn("record alert; retrying when the rule manager re-sends it", "alert", a.Labels.Get(labels.AlertName), "project", a.Labels.Get("project"), "err", err)
		}
	}
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
	if anchorDay < 1 || anchorDay > 28 {
		anchorDay = 1
	}
	t = t.UTC()
	start := time.Date(t.Year(), t.Month(), anchorDay, 0, 0, 0, 0, time.UTC)
	if t.Before(start) {
		start = start.AddDate(0, -1, 0)
	}
	return start, start.AddDate(0, 1, 0)
}

// evalTime is the evaluation that reported a: the rule manager stamps LastSentAt with it.
func (n *Notifier) evalTime(a *rules.Alert) time.Time {
	if !a.LastSentAt.IsZero() {
		return a.LastSentAt
	}
	return n.opts.Now()
}

func (n *Notifier) firing(ctx context.Context, a *rules.Alert) error {
	projectID := a.Labels.Get("project")
	name := a.Labels.Get(labels.AlertName)
	if projectID == "" {
		n.skipped.Inc()
		n.logger.Debug("alert without a project label; not a notification", "alert", name)
		return nil
	}
	proj, team, err := n.lookup(ctx, projectID)
	if errors.Is(err, store.ErrNotFound) {
		// Usage of a project the store does not know (unmapped usage is reported elsewhere).
		n.skipped.Inc()
		n.logger.Debug("alert for an unknown project; not a notification", "alert", name, "project", projectID)
		return nil
	}
	if err != nil {
		return err
	}
	ts := n.evalTime(a)
	at := a.ActiveAt
	if settle := ts.Add(-PeriodSettle); at.Before(settle) {
		at = settle
	}
	start, end := BillingPeriod(at, team.BillingAnchorDay)
	key := store.AlertKey{ProjectID: projectID, Alert: alertIdentity(a.Labels), Period: start.Format(time.DateOnly)}
	done, err := n.opts.State.AlertNotified(ctx, key)
	if err != nil || done {
		return err
	}
	c := n.content(a, proj, team, start, end)
	note := store.Notification{
		ID: newNotificationID(), TeamID: team.ID, ProjectID: projectID, Type: c.Type,
		Severity: c.Severity, Message: c.Message, Payload: c.payload(), CreatedAt: ts.UTC(),
	}
	out, err := n.outbox(ctx, note, c, team)
	if err != nil {
		return err
	}
	_, created, err := n.opts.State.RecordAlertFiring(ctx, key, name, note, out)
	if err != nil {
		return err
	}
	if created {
		n.created.Inc()
		n.logger.Info("alert notification created", "alert", name, "project", projectID, "period", key.Period, "severity", c.Severity, "emails", len(out))
		n.queued(out)
	}
	return nil
}

func (n *Notifier) resolvedAlert(ctx context.Context, a *rules.Alert) error {
	projectID := a.Labels.Get("project")
	if projectID == "" {
		return nil
	}
	identity := alertIdentity(a.Labels)
	open, err := n.opts.State.AlertOpen(ctx, projectID, identity)
	if err != nil || !open {
		return err
	}
	proj, team, err := n.lookup(ctx, projectID)
	if err != nil {
		return err
	}
	start, end := BillingPeriod(a.ResolvedAt, team.BillingAnchorDay)
	c := n.content(a, proj, team, start, end)
	c.Resolved = true
	c.Message = fmt.Sprintf("Resolved: %s for %s is no longer active (%s).", c.Title, projectID, resolvedReason(c.Type))
	note := store.Notification{
		ID: newNotificationID(), TeamID: team.ID, ProjectID: projectID, Type: TypeAlertResolved,
		Severity: "info", Message: c.Message, Payload: c.payload(), CreatedAt: a.ResolvedAt.UTC(),
	}
	note.Payload["resolvedType"] = c.Type
	var out []store.OutboxMessage
	if n.opts.Webhook {
		b, err := json.Marshal(webhookBody(note, c))
		if err != nil {
			return fmt.Errorf("encode webhook: %w", err)
		}
		out = append(out, store.OutboxMessage{Channel: store.ChannelWebhook, Payload: b})
	}
	_, created, err := n.opts.State.RecordAlertResolved(ctx, projectID, identity, note, out)
	if err != nil {
		return err
	}
	if created {
		n.resolved.Inc()
		n.logger.Info("alert resolution recorded", "alert", a.Labels.Get(labels.AlertName), "project", projectID)
		n.queued(out)
	}
	return nil
}

func resolvedReason(typ string) string {
	switch typ {
	case TypeBudgetWarning, TypeBudgetExceeded:
		return "the cost of the billing period is below the threshold again: a new period began or the budget was raised"
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
	to, err := n.recipients(ctx, c.Severity, team)
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
	if n.opts.Webhook {
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

// lookup returns a project and its team from a cache refreshed every directoryTTL, or sooner
// for an unknown project.
func (n *Notifier) lookup(ctx context.Context, projectID string) (store.Project, store.Team, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	p, ok := n.projects[projectID]
	stale := now.Sub(n.refreshed) > directoryTTL
	if stale || (!ok && now.Sub(n.refreshed) > directoryMinRefresh) {
		ps, err := n.opts.Directory.AllProjects(ctx)
		if err != nil {
			return store.Project{}, store.Team{}, fmt.Errorf("list projects: %w", err)
		}
		ts, err := n.opts.Directory.ListTeams(ctx)
		if err != nil {
			return store.Project{}, store.Team{}, fmt.Errorf("list teams: %w", err)
		}
		n.projects = make(map[string]store.Project, len(ps))
		for _, p := range ps {
			n.projects[p.ID] = p
		}
		n.teams = make(map[string]store.Team, len(ts))
		for _, t := range ts {
			n.teams[t.ID] = t
		}
		n.refreshed = now
		p, ok = n.projects[projectID]
	}
	if !ok {
		return store.Project{}, store.Team{}, fmt.Errorf("project %s: %w", projectID, store.ErrNotFound)
	}
	t, ok := n.teams[p.TeamID]
	if !ok {
		return store.Project{}, store.Team{}, fmt.Errorf("team %s of project %s: %w", p.TeamID, projectID, store.ErrNotFound)
	}
	return p, t, nil
}

// content is what a notification says, in every channel.
type content struct {
	Type, Severity, Alert, Title, Message string
	ProjectID, ProjectName, TeamName      string
	PeriodStart, PeriodEnd                time.Time
	// Amounts in USD as exact decimal strings with two places ("" when unknown), and the
	// percentage of the budget used with one place.
	Used, Budget, Forecast, Hour, Baseline, Percent string
	Resolved                                        bool
	Summary                                         string
}

func (c content) payload() map[string]any {
	p := map[string]any{
		"alert":       c.Alert,
		"periodStart": c.PeriodStart.Format(time.DateOnly),
		"periodEnd":   c.PeriodEnd.Format(time.DateOnly),
	}
	for k, v := range map[string]string{"used": c.Used, "limit": c.Budget, "forecast": c.Forecast, "hourCost": c.Hour, "baseline": c.Baseline, "percentUsed": c.Percent} {
		if v != "" {
			p[k] = v
		}
	}
	return p
}

// money parses an annotation amount and renders it with two decimal places.
func money(s string) (decimal.Decimal, string, bool) {
	d, err := decimal.NewFromString(strings.TrimSpace(s))
	if err != nil {
		return decimal.Decimal{}, "", false
	}
	return d, d.StringFixed(2), true
}

// content builds the texts of an alert from its labels and the amounts in its annotations.
func (n *Notifier) content(a *rules.Alert, p store.Project, t store.Team, start, end time.Time) content {
	ann := a.Annotations
	c := content{
		Type: ann.Get("type"), Severity: a.Labels.Get("severity"), Alert: a.Labels.Get(labels.AlertName),
		ProjectID: p.ID, ProjectName: p.Name, TeamName: t.Name, PeriodStart: start, PeriodEnd: end,
		Summary: ann.Get("summary"),
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
	used, usedS, okU := money(ann.Get("used_usd"))
	budget, budgetS, okB := money(ann.Get("budget_usd"))
	c.Used, c.Budget = usedS, budgetS
	if okU && okB && budget.IsPositive() {
		c.Percent = used.Mul(decimal.NewFromInt(100)).Div(budget).StringFixed(1)
	}
	_, c.Forecast, _ = money(ann.Get("forecast_usd"))
	_, c.Hour, _ = money(ann.Get("hour_usd"))
	_, c.Baseline, _ = money(ann.Get("baseline_usd"))

	switch c.Type {
	case TypeBudgetWarning:
		c.Title = "Budget warning"
		if okU && okB && c.Percent != "" {
			c.Message = fmt.Sprintf("%s has used $%s of its $%s budget (%s %%) this billing period", p.ID, c.Used, c.Budget, c.Percent)
		}
	case TypeBudgetExceeded:
		c.Title = "Budget exceeded"
		if okU && okB && c.Percent != "" {
			c.Message = fmt.Sprintf("%s has exceeded its budget: $%s of $%s (%s %%) used this billing period. Services keep running; reduce usage or raise the limit", p.ID, c.Used, c.Budget, c.Percent)
		}
	case TypeForecastExceeded:
		c.Title = "Forecast over budget"
		if c.Forecast != "" && okB {
			c.Message = fmt.Sprintf("%s is forecast to spend $%s this billing period, over its $%s budget", p.ID, c.Forecast, c.Budget)
			if okU {
				c.Message += fmt.Sprintf(" ($%s so far)", c.Used)
			}
		}
	case TypeUsageAnomaly:
		c.Title = "Unusual usage"
		if c.Hour != "" && c.Baseline != "" {
			c.Message = fmt.Sprintf("%s cost $%s in the last hour, more than three times its usual $%s an hour", p.ID, c.Hour, c.Baseline)
		}
	default:
		c.Title = c.Alert
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
