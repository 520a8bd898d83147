package alerting

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/shopspring/decimal"

	"github.com/cygni/usage/series"
	"github.com/cygni/usage/store"
)

// Team budget alerts (TeamBudgetWarning, TeamBudgetExceeded) carry a team label and no project
// label. Their episodes have no project (ProjectID ""): the alert's identity names the team.
const (
	TypeTeamBudgetWarning  = "team_budget_warning"
	TypeTeamBudgetExceeded = "team_budget_exceeded"
)

// isTeamAlert reports whether an alert is about a whole team.
func isTeamAlert(ls labels.Labels) bool {
	return ls.Get(series.LabelProject) == "" && ls.Get(series.LabelTeam) != ""
}

// teamLimit is a team's budget over all its projects; ok=false when it set none (or the
// directory keeps no settings).
func (n *Notifier) teamLimit(ctx context.Context, teamID string) (decimal.Decimal, bool, error) {
	ss, ok := n.opts.Directory.(Settings)
	if !ok {
		return decimal.Zero, false, nil
	}
	all, err := ss.AllBudgetSettings(ctx)
	if err != nil {
		return decimal.Zero, false, fmt.Errorf("read the budget settings: %w", err)
	}
	l := store.IndexBudgetSettings(all).Team(teamID).TeamLimit
	if l == nil {
		return decimal.Zero, false, nil
	}
	return *l, true, nil
}

// teamCosts are the exact sums of a team's projects' Costs.
func (n *Notifier) teamCosts(ctx context.Context, ps *pass, team store.Team, at time.Time) (Costs, error) {
	var ids []string
	for _, p := range ps.dir.projects {
		if p.TeamID == team.ID {
			ids = append(ids, p.ID)
		}
	}
	var sum Costs
	sum.PeriodStart, sum.PeriodEnd = BillingPeriod(at, team.BillingAnchorDay)
	if len(ids) == 0 {
		return sum, nil
	}
	cs, err := n.opts.Costs(ctx, ids, team.BillingAnchorDay, at)
	if err != nil {
		return Costs{}, fmt.Errorf("read the costs of team %s: %w", team.ID, err)
	}
	for _, id := range ids {
		sum.Used = sum.Used.Add(cs[id].Used)
		sum.Forecast = sum.Forecast.Add(cs[id].Forecast)
	}
	return sum, nil
}

func teamContent(typ, severity, alert string, team store.Team, start, end time.Time, limit decimal.Decimal, c Costs, ls labels.Labels) content {
	cn := content{Type: typ, Severity: severity, Alert: alert, ProjectName: team.Name + " (all projects)", TeamName: team.Name,
		PeriodStart: start, PeriodEnd: end, Threshold: ls.Get(LabelThreshold)}
	if cn.Severity != "critical" {
		cn.Severity = "warning"
	}
	cn.setAmounts(limit, c)
	switch typ {
	case TypeTeamBudgetExceeded:
		cn.Title = "Team budget exceeded"
		cn.Message = fmt.Sprintf("Team %s has exceeded its team budget: $%s of $%s (%s %%) used this billing period over all its projects. Services keep running; reduce usage or raise the team budget",
			team.Name, cn.Used, cn.Budget, cn.Percent)
	default:
		cn.Title = "Team budget warning"
		cn.Message = fmt.Sprintf("Team %s has used $%s of its $%s team budget (%s %%) this billing period over all its projects", team.Name, cn.Used, cn.Budget, cn.Percent)
	}
	return cn
}

// teamFiring is firing for a team alert: one episode per alert, billing period and team budget.
func (n *Notifier) teamFiring(ctx context.Context, ps *pass, r RuleAlerts, a *rules.Alert, byKey map[episodeKey]*store.AlertEpisode) error {
	team, ok := ps.dir.teams[a.Labels.Get(series.LabelTeam)]
	if !ok {
		n.skipped.Inc()
		return nil
	}
	limit, ok, err := n.teamLimit(ctx, team.ID)
	if err != nil || !ok {
		return err // no team budget (any more): nothing to confirm
	}
	key := episodeKey{"", alertIdentity(a.Labels)}
	at := a.ActiveAt
	if settle := ps.ev.At.Add(-PeriodSettle); at.Before(settle) {
		at = settle
	}
	start, end := BillingPeriod(at, team.BillingAnchorDay)
	period := start.Format(time.DateOnly)
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
	c, err := n.teamCosts(ctx, ps, team, ps.ev.At)
	if err != nil {
		return err
	}
	if t := a.Labels.Get(LabelThreshold); t != "" {
		if th, err := decimal.NewFromString(t); err == nil && !thresholdCrossed(a.Labels, th, c, limit) {
			n.stale.Inc()
			return nil
		}
	}
	typ := a.Annotations.Get("type")
	cn := teamContent(typ, a.Labels.Get("severity"), r.Name, team, start, end, limit, c, a.Labels)
	note := store.Notification{
		ID: newNotificationID(), TeamID: team.ID, Type: cn.Type, Severity: cn.Severity, Message: cn.Message,
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
		Alert: key.alert, AlertName: r.Name, Type: cn.Type, Severity: cn.Severity,
		Period: period, Limit: limit.String(), StartedAt: ps.ev.At.UTC(),
	}, supersede, reason, note, out)
	if err != nil {
		return err
	}
	if created {
		byKey[key] = &started
		n.created.Inc()
		n.logger.Info("team budget notification created", "alert", r.Name, "team", team.ID, "period", period, "limit", limit.String(), "used", cn.Used)
		n.queued(out)
	}
	return nil
}

// teamCleared resolves a team alert's episode once it has not fired for ResolveAfter and the
// exact sum is below its threshold (or a new period began, or the team budget was removed).
func (n *Notifier) teamCleared(ctx context.Context, ps *pass, ep *store.AlertEpisode) error {
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
	team, ok := ps.dir.teams[ep.TeamID]
	if !ok {
		return nil
	}
	limit, ok, err := n.teamLimit(ctx, team.ID)
	if err != nil {
		return err
	}
	c, err := n.teamCosts(ctx, ps, team, at)
	if err != nil {
		return err
	}
	start, end := BillingPeriod(at, team.BillingAnchorDay)
	newPeriod := start.Format(time.DateOnly) != ep.Period
	ls, _ := parser.NewParser(parser.Options{}).ParseMetric(ep.Alert)
	if t := ls.Get(LabelThreshold); t != "" && ok && !newPeriod {
		if th, err := decimal.NewFromString(t); err == nil && thresholdCrossed(ls, th, c, limit) {
			n.unconfirmed.Inc()
			return nil
		}
	}
	if !ok {
		limit = decimal.Zero
	}
	cn := teamContent(ep.Type, ep.Severity, ep.AlertName, team, start, end, limit, c, ls)
	cn.Resolved = true
	cn.Message = fmt.Sprintf("Resolved: %s for team %s is no longer active (%s); $%s of its $%s team budget (%s %%) used this billing period",
		cn.Title, team.Name, resolvedReason(TypeBudgetWarning, newPeriod), cn.Used, cn.Budget, cn.Percent)
	note := store.Notification{
		ID: newNotificationID(), TeamID: team.ID, Type: TypeAlertResolved, Severity: "info", Message: cn.Message,
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
