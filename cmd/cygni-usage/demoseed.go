package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/cygni/usage/config"
	"github.com/cygni/usage/query"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/simaws"
	"github.com/cygni/usage/store"
)

// demoProject is one project of the demo with the budget status it is seeded to show.
type demoProject struct {
	project store.Project
	// used is the share of its budget the project has used when the demo starts: the budget is
	// the month-to-date cost of the backfilled window divided by it.
	used float64
	// crossIn, if set, makes the project cross 80 % of its budget about this long after the
	// start (the budget then follows from the last hour's cost rate, and used is ignored).
	crossIn time.Duration
}

// demoTeams is the demo's metadata, matching the simulated fleet's projects proj_001..proj_004
// (simaws' defaults). The fleet's untagged service stays unmapped on purpose.
var demoTeams = []struct {
	team     store.Team
	members  []store.Member
	projects []demoProject
}{
	{
		team: store.Team{ID: "team_acme", Name: "Acme", BillingEmail: "billing@acme.example"},
		members: []store.Member{
			{Email: "ada@acme.example", Name: "Ada", Role: "admin"},
			{Email: "bill@acme.example", Name: "Bill", Role: "billing"},
			{Email: "max@acme.example", Name: "Max", Role: "member"},
		},
		projects: []demoProject{
			{project: store.Project{ID: "proj_001", Name: "Acme web"}, crossIn: 3 * time.Minute},
			{project: store.Project{ID: "proj_002", Name: "Acme workers"}, used: 1.25},
		},
	},
	{
		team: store.Team{ID: "team_globex", Name: "Globex", BillingEmail: "finance@globex.example", BillingAnchorDay: 15},
		members: []store.Member{
			{Email: "hank@globex.example", Name: "Hank", Role: "admin"},
		},
		projects: []demoProject{
			{project: store.Project{ID: "proj_003", Name: "Globex API"}, used: 0.5},
			{project: store.Project{ID: "proj_004", Name: "Globex batch"}, used: 0.3},
		},
	},
}

// demoOversized is the simulated service that reserves far more than it uses, so that the
// right-sizing recommendations have something to say from the first start.
var demoOversized = []string{"proj_001-web"}

// seedDemo creates the demo teams, members and projects on the first start (later starts keep
// what is there, including an operator's changes) and mints fresh demo tokens on every start,
// since a token is shown only once. It returns the tokens, labelled, in print order.
func (p *process) seedDemo() ([]demoToken, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	teams, err := p.store.ListTeams(ctx)
	if err != nil {
		return nil, err
	}
	if len(teams) == 0 {
		now := p.now()
		prices := query.NewPrices(p.cfg.Pricing).SheetAt(now)
		for _, dt := range demoTeams {
			if _, err := p.store.CreateTeam(ctx, dt.team); err != nil {
				return nil, fmt.Errorf("seed the demo: %w", err)
			}
			for _, m := range dt.members {
				m.TeamID = dt.team.ID
				if err := p.store.AddMember(ctx, m); err != nil {
					return nil, fmt.Errorf("seed the demo: %w", err)
				}
			}
			for _, dp := range dt.projects {
				pr := dp.project
				pr.TeamID = dt.team.ID
				limit, err := demoBudget(p.sim, dp, dt.team.BillingAnchorDay, now, p.cfg.Collector.Backfill.D(), prices)
				if err != nil {
					return nil, fmt.Errorf("seed the demo budget of %s: %w", pr.ID, err)
				}
				pr.BudgetLimit = &limit
				if _, err := p.store.CreateProject(ctx, pr); err != nil {
					return nil, fmt.Errorf("seed the demo: %w", err)
				}
			}
		}
		p.logger.Info("demo teams, members and projects created", "teams", len(demoTeams))
	}
	var out []demoToken
	for _, tk := range []demoToken{
		{team: "team_acme", role: "admin", member: "ada@acme.example", label: "admin token (Acme, operator)"},
		{team: "team_acme", role: "member", member: "max@acme.example", label: "member token (Acme)"},
		{team: "team_globex", role: "admin", member: "hank@globex.example", label: "admin token (Globex)"},
	} {
		plain, t, err := p.store.CreateToken(ctx, tk.team, tk.role, "demo "+tk.role)
		if err != nil {
			return nil, fmt.Errorf("mint the demo tokens: %w", err)
		}
		// Each token belongs to a seeded member, so the audit trail names them and the member
		// can mute a project's warnings (PUT /api/projects/{id}/mute). An operator may have
		// removed the member since the first start: the token then stays a team token.
		if err := p.store.SetTokenMember(ctx, tk.team, t.ID, tk.member); errors.Is(err, store.ErrNotFound) {
			p.logger.Warn("demo member is gone; its token is a team token", "member", tk.member, "team", tk.team)
		} else if err != nil {
			return nil, fmt.Errorf("tie the demo token to %s: %w", tk.member, err)
		}
		tk.token = plain
		out = append(out, tk)
	}
	return out, nil
}

// demoToken is a token minted for the banner.
type demoToken struct{ team, role, member, label, token string }

// demoBudget returns the budget that gives project dp its intended status when the demo starts
// at now: from the simulator's truth of what the first backfill collects inside the current
// billing period (the period's start or now − backfill, whichever is later), priced at the
// sheet in force now. Budgets are whole cents, rounded so that the status still holds, and at
// least one cent.
func demoBudget(sim *simaws.Sim, dp demoProject, anchorDay int, now time.Time, backfill time.Duration, sheet config.PriceSheet) (decimal.Decimal, error) {
	to := now.Truncate(time.Minute)
	start, _ := query.BillingPeriod(now, anchorDay)
	from := to.Add(-backfill)
	if from.Before(start) {
		from = start
	}
	cost := func(from, to time.Time) (decimal.Decimal, error) {
		if sim == nil || !from.Before(to) {
			return decimal.Zero, nil
		}
		// The simulator's exact integer truth as the collector's quanta, priced by the one
		// pricing arithmetic (query.Prices) with the sheet in force now.
		var a query.Amounts
		for _, svc := range sim.Services() {
			if svc.Project != dp.project.ID {
				continue
			}
			for _, q := range []struct {
				m    query.Metric
				per  int64 // quanta per raw CloudWatch unit
				name string
			}{
				{query.CPUSeconds, 15, series.CPUSeconds},      // a CPU-unit-minute is 60/1024 vCPU-s = 15/256
				{query.MemoryGBHours, 1, series.MemoryGBHours}, // MiB-minutes
				{query.EgressBytes, 60, series.EgressBytes},    // bytes per second, over a minute
				{query.Requests, 1, series.Requests},
			} {
				if err := a.AddQuanta(q.m, sim.RawTruth(svc, q.name, from, to)*q.per); err != nil {
					return decimal.Zero, err
				}
			}
		}
		return query.NewPrices(config.PricingConfig{Sheets: []config.PriceSheet{sheet}}).CostAt(from, &a).Total(), nil
	}
	used, err := cost(from, to)
	if err != nil {
		return decimal.Zero, err
	}
	cent := decimal.New(1, -2)
	var limit decimal.Decimal
	if dp.crossIn > 0 {
		// Reach 80 % crossIn from now at the last hour's rate: ceil keeps the status below 80 %
		// at the start.
		hourAgo := to.Add(-time.Hour)
		if hourAgo.Before(from) {
			hourAgo = from
		}
		target := used
		if secs := int64(to.Sub(hourAgo) / time.Second); secs > 0 {
			last, err := cost(hourAgo, to)
			if err != nil {
				return decimal.Zero, err
			}
			// The last hour's rate per second, over crossIn (exact decimals, no float minutes).
			target = target.Add(last.Mul(decimal.NewFromInt(int64(dp.crossIn / time.Second))).Div(decimal.NewFromInt(secs)))
		}
		limit = target.Div(decimal.NewFromFloat(0.8)).RoundCeil(2)
	} else {
		limit = used.Div(decimal.NewFromFloat(dp.used))
		if dp.used >= 1 {
			limit = limit.RoundFloor(2) // stays exceeded
		} else {
			limit = limit.RoundCeil(2) // stays below the share
		}
	}
	if limit.LessThan(cent) {
		limit = cent
	}
	return limit, nil
}

// demoBanner is what the demo prints once it is ready: last, so that nothing scrolls it away.
func demoBanner(url, simURL string, tokens []demoToken, now time.Time, anchorDay int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nCygni Usage demo is ready.\n\n")
	fmt.Fprintf(&b, "  Console:       %s/   (sign in with a token below)\n", url)
	for _, tk := range tokens {
		fmt.Fprintf(&b, "  %-30s %s\n", strings.ToUpper(tk.label[:1])+tk.label[1:]+":", tk.token)
	}
	admin := tokens[0].token
	fmt.Fprintf(&b, "\n  Try:           curl -H \"Authorization: Bearer %s\" %s/api/projects/proj_002/budget\n", admin, url)
	start, _ := query.BillingPeriod(now, anchorDay)
	fmt.Fprintf(&b, "  Ground truth:  %s/_sim/truth?project=proj_001&series=cygni_cpu_seconds&from=%s&to=%s\n",
		simURL, now.Add(-24*time.Hour).Truncate(time.Hour).Format(time.RFC3339), now.Truncate(time.Hour).Format(time.RFC3339))
	fmt.Fprintf(&b, "  More:          %s/api/openapi.json, %s/metrics, %s/healthz\n", url, url, url)
	fmt.Fprintf(&b, "\n  To look at: Acme's proj_002 is over its budget, proj_001 crosses 80 %% within minutes\n")
	fmt.Fprintf(&b, "  (notifications), and proj_001's web deployment is oversized (recommendations).\n")
	fmt.Fprintf(&b, "  The billing period began %s. Press Ctrl-C to stop; the next start continues.\n\n", start.Format(time.DateOnly))
	return b.String()
}
