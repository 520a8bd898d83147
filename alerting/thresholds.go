package alerting

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/shopspring/decimal"

	"github.com/cygni/usage/budget"
	"github.com/cygni/usage/store"
)

// LabelBasis is the alert label of a customer-set threshold that names what it is compared
// with: budget.BasisActual (the cost so far; the default) or budget.BasisForecast.
const LabelBasis = "basis"

// Settings gives the notifier the customers' thresholds, recipients and mutes (the metadata
// store). A Directory that is one sends every threshold alert to the recipients its team chose;
// otherwise warnings go to the billing contact and critical alerts to every admin.
type Settings interface {
	AllBudgetSettings(ctx context.Context) ([]store.BudgetSettings, error)
	Mutes(ctx context.Context, teamID string) (map[string][]string, error)
}

// thresholdCrossed reports whether the exact amounts reach a threshold alert's threshold, on
// the basis its labels name.
func thresholdCrossed(ls labels.Labels, percent decimal.Decimal, c Costs, limit decimal.Decimal) bool {
	basis := ls.Get(LabelBasis)
	if basis == "" {
		basis = budget.BasisActual
	}
	return budget.Threshold{Percent: percent, Basis: basis}.Crossed(c.Used, c.Forecast, limit)
}

// thresholdMessage is the message of a customer-set threshold's crossing.
func thresholdMessage(c content) string {
	if c.Basis == budget.BasisForecast {
		return fmt.Sprintf("%s is forecast to spend $%s this billing period, %s %% of its $%s budget, reaching its %s %% forecast threshold ($%s so far)",
			c.ProjectID, c.Forecast, c.ForecastPercent, c.Budget, c.Threshold, c.Used)
	}
	return fmt.Sprintf("%s has used $%s of its $%s budget (%s %%) this billing period, reaching its %s %% threshold",
		c.ProjectID, c.Used, c.Budget, c.Percent, c.Threshold)
}

// chosenRecipients returns the e-mail recipients of a notification and whether it goes to the
// webhook. A threshold alert (the shipped 80 % and 100 % included) goes to the recipients the
// project's (or its team's) list names for that threshold; any other alert to the billing
// contact (warning) or every admin (critical). Members who muted the project's warnings are left
// out, except admins of a critical alert: exceeded alerts to admins cannot be muted.
func (n *Notifier) chosenRecipients(ctx context.Context, c content, team store.Team) ([]string, bool, error) {
	ss, ok := n.opts.Directory.(Settings)
	if !ok {
		to, err := n.recipients(ctx, c.Severity, team)
		return to, n.opts.Webhook, err
	}
	all, err := ss.AllBudgetSettings(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("read the budget settings: %w", err)
	}
	var entry *budget.Threshold
	if c.Threshold != "" {
		if p, err := decimal.NewFromString(c.Threshold); err == nil {
			if t, ok := budget.Find(store.IndexBudgetSettings(all).Thresholds(team.ID, c.ProjectID), p, c.Basis); ok {
				entry = &t
			}
		}
	}
	var to []string
	webhook := n.opts.Webhook
	var admins []string
	listAdmins := func() error {
		ms, err := n.opts.Directory.TeamAdmins(ctx, team.ID)
		if err != nil {
			return fmt.Errorf("list admins of %s: %w", team.ID, err)
		}
		for _, m := range ms {
			if m.Email != "" {
				admins = append(admins, m.Email)
			}
		}
		return nil
	}
	if err := listAdmins(); err != nil {
		return nil, false, err
	}
	if entry == nil {
		if to, err = n.recipients(ctx, c.Severity, team); err != nil {
			return nil, false, err
		}
	} else {
		r := entry.Recipients
		webhook = webhook && r.Webhook
		if r.BillingContact {
			if team.BillingEmail != "" {
				to = append(to, team.BillingEmail)
			} else {
				to = append(to, admins...) // no billing contact: the admins stand in
			}
		}
		if r.Admins || c.Severity == "critical" {
			to = append(to, admins...)
		}
		to = append(to, r.Emails...)
		if len(to) == 0 && c.Severity == "critical" && team.BillingEmail != "" {
			to = append(to, team.BillingEmail)
		}
	}
	mutes, err := ss.Mutes(ctx, team.ID)
	if err != nil {
		return nil, false, err
	}
	muted := map[string]bool{}
	for _, e := range mutes[c.ProjectID] {
		muted[strings.ToLower(e)] = true
	}
	isAdmin := map[string]bool{}
	for _, a := range admins {
		isAdmin[strings.ToLower(a)] = true
	}
	seen := map[string]bool{}
	var out []string
	for _, e := range to {
		k := strings.ToLower(e)
		if seen[k] || (muted[k] && !(c.Severity == "critical" && isAdmin[k])) {
			continue
		}
		seen[k] = true
		out = append(out, e)
	}
	sort.Strings(out)
	return slices.Clip(out), webhook, nil
}
