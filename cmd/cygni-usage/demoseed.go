package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/cygni/usage/store"
)

// demoTeams is the demo's metadata, matching the simulated fleet's projects proj_001..proj_004
// (simaws' defaults). The fleet's untagged service stays unmapped on purpose.
var demoTeams = []struct {
	team     store.Team
	members  []store.Member
	projects []store.Project
}{
	{
		team: store.Team{ID: "team_acme", Name: "Acme", BillingEmail: "billing@acme.example"},
		members: []store.Member{
			{Email: "ada@acme.example", Name: "Ada", Role: "admin"},
			{Email: "bill@acme.example", Name: "Bill", Role: "billing"},
			{Email: "max@acme.example", Name: "Max", Role: "member"},
		},
		projects: []store.Project{{ID: "proj_001", Name: "Acme web"}, {ID: "proj_002", Name: "Acme workers", BudgetLimit: decimalPtr("250")}},
	},
	{
		team: store.Team{ID: "team_globex", Name: "Globex", BillingEmail: "finance@globex.example", BillingAnchorDay: 15},
		members: []store.Member{
			{Email: "hank@globex.example", Name: "Hank", Role: "admin"},
		},
		projects: []store.Project{{ID: "proj_003", Name: "Globex API"}, {ID: "proj_004", Name: "Globex batch"}},
	},
}

func decimalPtr(s string) *decimal.Decimal {
	d := decimal.RequireFromString(s)
	return &d
}

// seedDemo creates the demo teams, members and projects on the first start (later starts keep
// what is there, including an operator's changes) and mints fresh demo tokens on every start,
// since a token is shown only once. It returns the lines to print.
func (p *process) seedDemo() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	teams, err := p.store.ListTeams(ctx)
	if err != nil {
		return "", err
	}
	if len(teams) == 0 {
		for _, dt := range demoTeams {
			if _, err := p.store.CreateTeam(ctx, dt.team); err != nil {
				return "", fmt.Errorf("seed the demo: %w", err)
			}
			for _, m := range dt.members {
				m.TeamID = dt.team.ID
				if err := p.store.AddMember(ctx, m); err != nil {
					return "", fmt.Errorf("seed the demo: %w", err)
				}
			}
			for _, pr := range dt.projects {
				pr.TeamID = dt.team.ID
				if _, err := p.store.CreateProject(ctx, pr); err != nil {
					return "", fmt.Errorf("seed the demo: %w", err)
				}
			}
		}
		p.logger.Info("demo teams, members and projects created", "teams", len(demoTeams))
	}
	var b strings.Builder
	for _, tk := range []struct{ team, role, label string }{
		{"team_acme", "admin", "admin token (Acme)"},
		{"team_acme", "member", "member token (Acme)"},
		{"team_globex", "admin", "admin token (Globex)"},
	} {
		plain, _, err := p.store.CreateToken(ctx, tk.team, tk.role, "demo "+tk.role)
		if err != nil {
			return "", fmt.Errorf("mint the demo tokens: %w", err)
		}
		fmt.Fprintf(&b, "  %-22s%s\n", tk.label+":", plain)
	}
	return b.String(), nil
}
