package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/shopspring/decimal"

	"github.com/cygni/usage/budget"
	"github.com/cygni/usage/store"
)

// cliActor names the operator who ran an administration command, for the audit trail.
func cliActor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return "cli:" + u
	}
	return "cli"
}

// cliAudit records a change made by an administration command.
func cliAudit(ctx context.Context, st *store.Store, teamID, action, target, old, new string) error {
	err := st.RecordAudit(ctx, store.AuditEvent{TeamID: teamID, Actor: cliActor(), Action: action, Target: target, Old: old, New: new})
	if err != nil {
		return fmt.Errorf("the change was made, but recording it in the audit trail failed: %w", err)
	}
	return nil
}

// memberRole is a member's current role ("" when they are not one).
func memberRole(ctx context.Context, st *store.Store, teamID, email string) string {
	ms, err := st.ListMembers(ctx, teamID)
	if err != nil {
		return ""
	}
	for _, m := range ms {
		if strings.EqualFold(m.Email, strings.TrimSpace(email)) {
			return m.Role
		}
	}
	return ""
}

func tokenText(role, name, member string) string {
	s := "role=" + role
	if name != "" {
		s += " name=" + name
	}
	if member != "" {
		s += " member=" + strings.ToLower(member)
	}
	return s
}

func thresholdsClause(app *kingpin.Application) *kingpin.CmdClause {
	return groupClause(app, "thresholds", "Budget alert thresholds of teams and projects.")
}

func printThresholds(out io.Writer, source string, list []budget.Threshold) error {
	fmt.Fprintf(out, "source: %s\n", source)
	var rows [][]string
	for _, t := range list {
		r := t.Recipients
		var to []string
		if r.BillingContact {
			to = append(to, "billing-contact")
		}
		if r.Admins {
			to = append(to, "admins")
		}
		to = append(to, r.Emails...)
		if r.Webhook {
			to = append(to, "webhook")
		}
		fixed := ""
		if t.Fixed() {
			fixed = "fixed"
		}
		rows = append(rows, []string{t.Percent.String() + " %", t.Basis, strings.Join(to, ","), fixed})
	}
	return table(out, "THRESHOLD\tBASIS\tRECIPIENTS\t", rows)
}

func registerThresholdsShow(app *kingpin.Application) (string, command) {
	cl := thresholdsClause(app).Command("show", "Show the alert thresholds in force for a team's projects (or one project).")
	var team, project string
	cl.Arg("team", "The team id.").Required().StringVar(&team)
	cl.Flag("project", "A project of the team; default: the team's default list.").StringVar(&project)
	return cl.FullCommand(), &adminCmd{fn: func(ctx context.Context, st *store.Store, out io.Writer) error {
		t, err := st.GetBudgetSettings(ctx, team, "")
		if err != nil {
			return err
		}
		source, list := "default", budget.DefaultThresholds()
		if t.Thresholds != nil {
			source, list = "team", t.Thresholds
		}
		if project != "" {
			p, err := st.GetBudgetSettings(ctx, team, project)
			if err != nil {
				return err
			}
			if p.Thresholds != nil {
				source, list = "project", p.Thresholds
			}
		}
		return printThresholds(out, source, list)
	}}
}

func registerThresholdsSet(app *kingpin.Application) (string, command) {
	cl := thresholdsClause(app).Command("set",
		`Set the alert thresholds of a team (the default of its projects) or of one project, as the API's JSON list, e.g. '[{"percent":50,"basis":"forecast","recipients":{"billingContact":true,"emails":["cfo@example.com"]}}]'; "null" inherits. 80 % and 100 % of the actual cost always stay.`)
	var team, project, list string
	cl.Arg("team", "The team id.").Required().StringVar(&team)
	cl.Arg("list", "The JSON list, or - to read it from stdin.").Required().StringVar(&list)
	cl.Flag("project", "A project of the team; default: the team's default list.").StringVar(&project)
	return cl.FullCommand(), &adminCmd{fn: func(ctx context.Context, st *store.Store, out io.Writer) error {
		if list == "-" {
			b, err := io.ReadAll(io.LimitReader(os.Stdin, 1<<16))
			if err != nil {
				return err
			}
			list = string(b)
		}
		ts, err := parseThresholdList(list)
		if err != nil {
			return err
		}
		if err := st.SetThresholds(ctx, team, project, ts, store.AuditEvent{Actor: cliActor()}); err != nil {
			return err
		}
		source := "project"
		if project == "" {
			source = "team"
		}
		if ts == nil {
			source += " (cleared: inherited)"
			ts = []budget.Threshold{}
		}
		return printThresholds(out, source, ts)
	}}
}

// parseThresholdList reads the API's JSON list of thresholds ("null": nil) and normalizes it.
func parseThresholdList(s string) ([]budget.Threshold, error) {
	if strings.TrimSpace(s) == "null" {
		return nil, nil
	}
	var in []struct {
		Percent    json.Number        `json:"percent"`
		Basis      string             `json:"basis"`
		Recipients *budget.Recipients `json:"recipients"`
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("the threshold list is not a JSON list of {percent, basis, recipients}: %w", err)
	}
	ts := make([]budget.Threshold, 0, len(in))
	for i, t := range in {
		p, err := decimal.NewFromString(string(t.Percent))
		if err != nil {
			return nil, fmt.Errorf("thresholds[%d].percent: %q is not a number", i, t.Percent)
		}
		th := budget.Threshold{Percent: p, Basis: t.Basis, Recipients: budget.Recipients{BillingContact: true, Webhook: true}}
		if t.Recipients != nil {
			th.Recipients = *t.Recipients
		}
		ts = append(ts, th)
	}
	return budget.NormalizeThresholds(ts)
}

func registerAuditList(app *kingpin.Application) (string, command) {
	cl := groupClause(app, "audit", "The audit trail of changes.").Command("list", "List a team's audit trail, newest first.")
	var team, action string
	var limit int
	var asJSON bool
	cl.Arg("team", "The team id.").Required().StringVar(&team)
	cl.Flag("limit", "At most this many events (1-1000).").Default("100").IntVar(&limit)
	cl.Flag("action", "Only this action (e.g. thresholds, budget_limit, token_created).").StringVar(&action)
	cl.Flag("json", "Print JSON lines.").BoolVar(&asJSON)
	return cl.FullCommand(), &adminCmd{fn: func(ctx context.Context, st *store.Store, out io.Writer) error {
		if limit < 1 || limit > 1000 {
			return fmt.Errorf("--limit: %d is not from 1 to 1000", limit)
		}
		if _, err := st.GetTeam(ctx, team); err != nil {
			return err
		}
		evs, err := st.ListAudit(ctx, team, store.AuditQuery{Limit: limit, Action: action})
		if err != nil {
			return err
		}
		if asJSON {
			enc := json.NewEncoder(out)
			for _, e := range evs {
				if err := enc.Encode(e); err != nil {
					return err
				}
			}
			return nil
		}
		dash := func(s string) string {
			if s == "" {
				return "-"
			}
			return s
		}
		var rows [][]string
		for _, e := range evs {
			rows = append(rows, []string{fmt.Sprint(e.ID), e.At.Format(time.RFC3339), e.Actor, dash(e.ActorToken), dash(e.ActorMember), e.Action, e.Target, dash(e.Old), dash(e.New)})
		}
		return table(out, "ID\tAT\tACTOR\tTOKEN\tMEMBER\tACTION\tTARGET\tOLD\tNEW", rows)
	}}
}

// cliAmount parses an amount argument; "none" is nil.
func cliAmount(what, s string) (*decimal.Decimal, error) {
	if s == "none" {
		return nil, nil
	}
	d, err := decimal.NewFromString(s)
	if err != nil || !d.IsPositive() || !d.Equal(d.Round(2)) {
		return nil, fmt.Errorf("%s: %q is not a positive amount in USD with at most 2 decimals (or none)", what, s)
	}
	return &d, nil
}

func registerTeamSetBudget(app *kingpin.Application) (string, command) {
	cl := teamClause(app).Command("set-budget", "Set a team's budget over all its projects (warning at 80 %, exceeded at 100 %); none removes it.")
	var team, amount string
	cl.Arg("team", "The team id.").Required().StringVar(&team)
	cl.Arg("amount", "USD, or none.").Required().StringVar(&amount)
	return cl.FullCommand(), &adminCmd{fn: func(ctx context.Context, st *store.Store, out io.Writer) error {
		l, err := cliAmount("amount", amount)
		if err != nil {
			return err
		}
		if err := st.SetTeamBudget(ctx, team, l, store.AuditEvent{Actor: cliActor()}); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s team budget: %s\n", team, limitText(l, "none"))
		return nil
	}}
}

func registerTeamSetTimeZone(app *kingpin.Application) (string, command) {
	cl := teamClause(app).Command("set-time-zone", "Set the IANA time zone in which the team's daily budgets reset (\"\" = UTC).")
	var team, zone string
	cl.Arg("team", "The team id.").Required().StringVar(&team)
	cl.Arg("zone", "e.g. Europe/Berlin.").Required().StringVar(&zone)
	return cl.FullCommand(), &adminCmd{fn: func(ctx context.Context, st *store.Store, out io.Writer) error {
		if _, err := budget.LoadTimeZone(zone); err != nil {
			return err
		}
		if err := st.SetTeamTimeZone(ctx, team, zone, store.AuditEvent{Actor: cliActor()}); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s daily budgets reset at midnight %s\n", team, map[bool]string{true: "UTC", false: zone}[zone == ""])
		return nil
	}}
}

func registerProjectSetDailyBudget(app *kingpin.Application) (string, command) {
	cl := groupClause(app, "project", "Administer projects.").Command("set-daily-budget", "Set a project's daily budget (reset at midnight in the team's time zone); none removes it.")
	var team, project, amount string
	cl.Arg("team", "The team id.").Required().StringVar(&team)
	cl.Arg("project", "The project id.").Required().StringVar(&project)
	cl.Arg("amount", "USD, or none.").Required().StringVar(&amount)
	return cl.FullCommand(), &adminCmd{fn: func(ctx context.Context, st *store.Store, out io.Writer) error {
		l, err := cliAmount("amount", amount)
		if err != nil {
			return err
		}
		if err := st.SetDailyBudget(ctx, team, project, l, store.AuditEvent{Actor: cliActor()}); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s daily budget: %s\n", project, limitText(l, "none"))
		return nil
	}}
}
