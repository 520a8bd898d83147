package alerting

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/shopspring/decimal"

	"github.com/cygni/usage/budget"
	"github.com/cygni/usage/store"
)

// TypeDailyBudgetExceeded is a project's daily budget reached (ProjectDailyBudgetExceeded).
const TypeDailyBudgetExceeded = "daily_budget_exceeded"

// LabelPeriod "day" marks an alert about a daily budget: one episode per local day of the
// team's time zone, confirmed on the exact cost since local midnight.
const LabelPeriod = "period"

// DayCostFunc returns the exact cost of projects in [from, to) (the query layer's read path).
type DayCostFunc func(ctx context.Context, projects []string, from, to time.Time) (map[string]decimal.Decimal, error)

func isDailyAlert(ls labels.Labels) bool { return ls.Get(LabelPeriod) == "day" }

// daily is a project's daily budget and the local day at t; ok=false when it set none.
func (n *Notifier) daily(ctx context.Context, p store.Project, at time.Time) (limit decimal.Decimal, start, end time.Time, zone string, ok bool, err error) {
	ss, isSettings := n.opts.Directory.(Settings)
	if !isSettings {
		return
	}
	all, err := ss.AllBudgetSettings(ctx)
	if err != nil {
		return limit, start, end, "", false, fmt.Errorf("read the budget settings: %w", err)
	}
	ix := store.IndexBudgetSettings(all)
	l := ix.Project(p.TeamID, p.ID).DailyLimit
	if l == nil {
		return
	}
	zone = ix.Team(p.TeamID).TimeZone
	loc, err := budget.LoadTimeZone(zone)
	if err != nil {
		loc, zone = time.UTC, ""
	}
	if zone == "" {
		zone = "UTC"
	}
	start, end = budget.Day(at, loc)
	return *l, start, end, zone, true, nil
}

func (n *Notifier) dayCost(ctx context.Context, p store.Project, start, at time.Time) (decimal.Decimal, error) {
	if n.opts.DayCosts == nil {
		return decimal.Zero, fmt.Errorf("no day cost function: daily budget alerts cannot be confirmed")
	}
	to := at.Truncate(time.Minute)
	if !to.After(start) {
		return decimal.Zero, nil
	}
	cs, err := n.opts.DayCosts(ctx, []string{p.ID}, start, to)
	if err != nil {
		return decimal.Zero, fmt.Errorf("read the day's cost of %s: %w", p.ID, err)
	}
	return cs[p.ID], nil
}

func dailyContent(typ, alert string, p store.Project, team store.Team, start, end time.Time, zone string, limit, used decimal.Decimal) content {
	cn := content{Type: typ, Severity: "warning", Alert: alert, ProjectID: p.ID, ProjectName: p.Name, TeamName: team.Name,
		PeriodStart: start, PeriodEnd: end, Zone: zone}
	if cn.ProjectName == "" {
		cn.ProjectName = p.ID
	}
	cn.Used, cn.Budget = used.StringFixed(2), limit.StringFixed(2)
	cn.Percent = percentUsed(used, limit).StringFixed(1)
	cn.Title = "Daily budget exceeded"
	cn.Message = fmt.Sprintf("%s has spent $%s today (%s, %s), reaching its daily budget of $%s (%s %%)",
		p.ID, cn.Used, start.Format(time.DateOnly), zone, cn.Budget, cn.Percent)
	return cn
}

// dailyFiring is firing for a daily budget alert: one episode per local day and daily budget.
func (n *Notifier) dailyFiring(ctx context.Context, ps *pass, r RuleAlerts, a *rules.Alert, byKey map[episodeKey]*store.AlertEpisode) error {
	p, team, ok := ps.dir.lookup(a.Labels.Get("project"))
	if !ok {
		n.skipped.Inc()
		return nil
	}
	limit, start, end, zone, ok, err := n.daily(ctx, p, ps.ev.At)
	if err != nil || !ok {
		return err
	}
	key := episodeKey{p.ID, alertIdentity(a.Labels)}
	period := "day:" + start.Format(time.DateOnly)
	ep := byKey[key]
	if ep != nil && ep.Period == period && sameLimit(ep.Limit, limit) {
		if ep.ClearSince != nil {
			if err := n.opts.State.SetAlertEpisodeClear(ctx, ep.ID, nil, ""); err != nil {
				return err
			}
			ep.ClearSince = nil
		}
		return nil
	}
	used, err := n.dayCost(ctx, p, start, ps.ev.At)
	if err != nil {
		return err
	}
	if th, err := decimal.NewFromString(a.Labels.Get(LabelThreshold)); err == nil && !budget.Reached(used, limit, th) {
		n.stale.Inc()
		return nil
	}
	typ := a.Annotations.Get("type")
	if typ == "" {
		typ = TypeDailyBudgetExceeded
	}
	cn := dailyContent(typ, r.Name, p, team, start, end, zone, limit, used)
	note := store.Notification{
		ID: newNotificationID(), TeamID: team.ID, ProjectID: p.ID, Type: cn.Type, Severity: cn.Severity, Message: cn.Message,
		Payload: cn.payload(), CreatedAt: ps.ev.At.UTC(),
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
		ProjectID: p.ID, Alert: key.alert, AlertName: r.Name, Type: cn.Type, Severity: cn.Severity,
		Period: period, Limit: limit.String(), StartedAt: ps.ev.At.UTC(),
	}, supersede, reason, note, out)
	if err != nil {
		return err
	}
	if created {
		byKey[key] = &started
		n.created.Inc()
		n.logger.Info("daily budget notification created", "project", p.ID, "day", period, "limit", limit.String(), "used", cn.Used)
		n.queued(out)
	}
	return nil
}

// dailyCleared resolves a daily budget episode once the alert has not fired for ResolveAfter and
// a new local day began or the day's exact cost is below the daily budget.
func (n *Notifier) dailyCleared(ctx context.Context, ps *pass, ep *store.AlertEpisode) error {
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
		return nil
	}
	limit, start, end, zone, ok, err := n.daily(ctx, p, at)
	if err != nil {
		return err
	}
	used := decimal.Zero
	newDay := !ok || "day:"+start.Format(time.DateOnly) != ep.Period
	if ok {
		if used, err = n.dayCost(ctx, p, start, at); err != nil {
			return err
		}
		ls, _ := parser.NewParser(parser.Options{}).ParseMetric(ep.Alert)
		if th, err := decimal.NewFromString(ls.Get(LabelThreshold)); err == nil && !newDay && budget.Reached(used, limit, th) {
			n.unconfirmed.Inc()
			return nil
		}
	}
	cn := dailyContent(ep.Type, ep.AlertName, p, team, start, end, zone, limit, used)
	cn.Resolved = true
	why := "the day's cost is below the daily budget"
	if newDay {
		why = "a new day began"
	}
	cn.Message = fmt.Sprintf("Resolved: Daily budget exceeded for %s is no longer active (%s); $%s of its $%s daily budget spent today (%s, %s)",
		p.ID, why, cn.Used, cn.Budget, start.Format(time.DateOnly), zone)
	note := store.Notification{
		ID: newNotificationID(), TeamID: team.ID, ProjectID: p.ID, Type: TypeAlertResolved, Severity: "info", Message: cn.Message,
		Payload: cn.payload(), CreatedAt: at.UTC(),
	}
	note.Payload["resolvedType"] = ep.Type
	var out []store.OutboxMessage
	if n.opts.ResolvedEmails || n.opts.Webhook {
		all, err := n.outbox(ctx, note, cn, team)
		if err != nil {
			return err
		}
		for _, m := range all {
			if m.Channel == store.ChannelWebhook || n.opts.ResolvedEmails {
				out = append(out, m)
			}
		}
	}
	done, err := n.opts.State.ResolveAlertEpisode(ctx, ep.ID, at.UTC(), note, out)
	if err != nil {
		return err
	}
	if done {
		n.resolved.Inc()
		n.queued(out)
	}
	return nil
}
