package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/model"
	"github.com/shopspring/decimal"

	"github.com/cygni/usage/api"
	"github.com/cygni/usage/billing"
	"github.com/cygni/usage/config"
	"github.com/cygni/usage/internal/clock"
	"github.com/cygni/usage/query"
	"github.com/cygni/usage/store"
	"github.com/cygni/usage/tsdb"
)

// The administration commands work on the configured store directly; on SQLite they run while
// the server runs (WAL and a busy timeout), on PostgreSQL from any machine that reaches it.

// adminFunc is one administration command's body.
type adminFunc func(ctx context.Context, st *store.Store, out io.Writer) error

// linkFunc is the body of a command that links the store to Stripe.
type linkFunc func(ctx context.Context, l *billing.Linker, st *store.Store, out io.Writer) error

// adminCmd opens the store, runs fn (or link, with a Linker on the configured Stripe) and
// closes the store.
type adminCmd struct {
	fn   adminFunc
	link linkFunc
	// priced, if set, runs instead with the configuration (its price sheets and meters).
	priced func(ctx context.Context, st *store.Store, cfg *config.Config, now func() time.Time, out io.Writer) error
}

func (c *adminCmd) run(g *globals) error {
	cfg, err := loadConfig(g)
	if err != nil {
		return err
	}
	now, err := clock.FromEnv()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := store.Open(ctx, newLogger("warn"), store.Options{Driver: cfg.Store.Driver, DSN: cfg.Store.DSN, DataDir: cfg.DataDir, Now: now})
	if err != nil {
		return fmt.Errorf("open the metadata store: %w", err)
	}
	defer st.Close()
	if c.priced != nil {
		return c.priced(ctx, st, cfg, now, os.Stdout)
	}
	if c.link != nil {
		return c.link(ctx, billing.NewLinker(st, cfg.Billing.Stripe.URL, cfg.Billing.Stripe.APIKey.Reveal(), nil, now), st, os.Stdout)
	}
	return c.fn(ctx, st, os.Stdout)
}

// optionalLimit parses a budget limit flag; "" is nil (inherit).
func optionalLimit(flag, s string) (*decimal.Decimal, error) {
	if s == "" {
		return nil, nil
	}
	d, err := decimal.NewFromString(s)
	if err != nil || d.IsNegative() {
		return nil, fmt.Errorf("--%s %q is not a non-negative decimal amount in USD", flag, s)
	}
	return &d, nil
}

func limitText(d *decimal.Decimal, inherit string) string {
	if d == nil {
		return inherit
	}
	return d.StringFixed(2)
}

func table(out io.Writer, header string, rows [][]string) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

func registerTeamCreate(app *kingpin.Application) (string, command) {
	cl := teamClause(app).Command("create", "Create a team.")
	var t store.Team
	var limit string
	cl.Arg("name", "The team's name.").Required().StringVar(&t.Name)
	cl.Flag("id", "The team id (team_…); default: a fresh one.").StringVar(&t.ID)
	cl.Flag("billing-email", "The billing contact's e-mail (budget warnings).").StringVar(&t.BillingEmail)
	cl.Flag("anchor-day", "Day of month (1-28, UTC) the billing period starts.").Default("1").IntVar(&t.BillingAnchorDay)
	cl.Flag("default-limit", "Default monthly budget limit of the team's projects in USD (default: 100).").StringVar(&limit)
	return cl.FullCommand(), &adminCmd{fn: func(ctx context.Context, st *store.Store, out io.Writer) error {
		var err error
		if t.DefaultLimit, err = optionalLimit("default-limit", limit); err != nil {
			return err
		}
		created, err := st.CreateTeam(ctx, t)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, created.ID)
		return nil
	}}
}

// teamClause returns the "team" command, creating it once per application.
func teamClause(app *kingpin.Application) *kingpin.CmdClause {
	return groupClause(app, "team", "Administer teams.")
}

func groupClause(app *kingpin.Application, name, help string) *kingpin.CmdClause {
	if cl := app.GetCommand(name); cl != nil {
		return cl
	}
	return app.Command(name, help)
}

func registerTeamList(app *kingpin.Application) (string, command) {
	cl := teamClause(app).Command("list", "List the teams.")
	return cl.FullCommand(), &adminCmd{fn: func(ctx context.Context, st *store.Store, out io.Writer) error {
		ts, err := st.ListTeams(ctx)
		if err != nil {
			return err
		}
		var rows [][]string
		for _, t := range ts {
			rows = append(rows, []string{t.ID, t.Name, t.BillingEmail, fmt.Sprint(t.BillingAnchorDay), limitText(t.DefaultLimit, "(100.00)"), t.StripeCustomerID})
		}
		return table(out, "ID\tNAME\tBILLING E-MAIL\tANCHOR DAY\tDEFAULT LIMIT\tSTRIPE CUSTOMER", rows)
	}}
}

func registerMemberAdd(app *kingpin.Application) (string, command) {
	cl := groupClause(app, "member", "Administer team members.").Command("add", "Add a member to a team (or change their role).")
	var m store.Member
	cl.Arg("team", "The team id.").Required().StringVar(&m.TeamID)
	cl.Arg("email", "The member's e-mail.").Required().StringVar(&m.Email)
	cl.Flag("role", "admin, billing or member.").Default("member").EnumVar(&m.Role, "admin", "billing", "member")
	cl.Flag("name", "The member's name.").StringVar(&m.Name)
	return cl.FullCommand(), &adminCmd{fn: func(ctx context.Context, st *store.Store, out io.Writer) error {
		old := memberRole(ctx, st, m.TeamID, m.Email)
		if err := st.AddMember(ctx, m); err != nil {
			return err
		}
		if err := cliAudit(ctx, st, m.TeamID, store.AuditMemberAdded, strings.ToLower(strings.TrimSpace(m.Email)), old, m.Role); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s has the role %s in %s\n", strings.ToLower(m.Email), m.Role, m.TeamID)
		return nil
	}}
}

func registerMemberRemove(app *kingpin.Application) (string, command) {
	cl := groupClause(app, "member", "Administer team members.").Command("remove", "Remove a member from a team.")
	var team, email string
	cl.Arg("team", "The team id.").Required().StringVar(&team)
	cl.Arg("email", "The member's e-mail.").Required().StringVar(&email)
	return cl.FullCommand(), &adminCmd{fn: func(ctx context.Context, st *store.Store, out io.Writer) error {
		old := memberRole(ctx, st, team, email)
		if err := st.RemoveMember(ctx, team, email); err != nil {
			return err
		}
		return cliAudit(ctx, st, team, store.AuditMemberRemoved, strings.ToLower(strings.TrimSpace(email)), old, "")
	}}
}

func registerProjectCreate(app *kingpin.Application) (string, command) {
	cl := groupClause(app, "project", "Administer projects.").Command("create", "Create a project in a team.")
	var p store.Project
	var limit string
	cl.Arg("team", "The team id.").Required().StringVar(&p.TeamID)
	cl.Flag("id", "The project id (proj_…), as in the ECS tag cygni:project; default: a fresh one.").StringVar(&p.ID)
	cl.Flag("name", "The project's name (default: its id).").StringVar(&p.Name)
	cl.Flag("limit", "Monthly budget limit in USD (default: the team's).").StringVar(&limit)
	return cl.FullCommand(), &adminCmd{fn: func(ctx context.Context, st *store.Store, out io.Writer) error {
		var err error
		if p.BudgetLimit, err = optionalLimit("limit", limit); err != nil {
			return err
		}
		created, err := st.CreateProject(ctx, p)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, created.ID)
		return nil
	}}
}

func registerProjectList(app *kingpin.Application) (string, command) {
	cl := groupClause(app, "project", "Administer projects.").Command("list", "List the projects (of one team, or all).")
	var team string
	cl.Arg("team", "The team id; default: every team.").StringVar(&team)
	return cl.FullCommand(), &adminCmd{fn: func(ctx context.Context, st *store.Store, out io.Writer) error {
		var ps []store.Project
		var err error
		if team == "" {
			ps, err = st.AllProjects(ctx)
		} else {
			ps, err = st.ListProjects(ctx, team)
		}
		if err != nil {
			return err
		}
		var rows [][]string
		for _, p := range ps {
			rows = append(rows, []string{p.ID, p.TeamID, p.Name, limitText(p.BudgetLimit, "(team)"), fmt.Sprint(p.Deployments), fmt.Sprint(p.Suspended)})
		}
		return table(out, "ID\tTEAM\tNAME\tLIMIT\tDEPLOYMENTS\tSUSPENDED", rows)
	}}
}

func registerProjectMove(app *kingpin.Application) (string, command) {
	cl := groupClause(app, "project", "Administer projects.").Command("move", "Give a project to another team.")
	var project, team string
	cl.Arg("project", "The project id.").Required().StringVar(&project)
	cl.Arg("team", "The team id to move it to.").Required().StringVar(&team)
	return cl.FullCommand(), &adminCmd{fn: func(ctx context.Context, st *store.Store, out io.Writer) error {
		if err := st.MoveProject(ctx, project, team); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s now belongs to %s\n", project, team)
		return nil
	}}
}

func registerTokenCreate(app *kingpin.Application) (string, command) {
	cl := groupClause(app, "token", "Administer API tokens.").Command("create", "Create an API token; it is printed once and never again.")
	var team, role, name, expires, member string
	cl.Arg("team", "The team id.").Required().StringVar(&team)
	cl.Flag("member", "The member (e-mail) the token belongs to: the audit trail names them, and their notification preferences apply.").StringVar(&member)
	cl.Flag("role", "admin, billing or member.").Default("member").EnumVar(&role, "admin", "billing", "member")
	cl.Flag("name", "What the token is for.").StringVar(&name)
	cl.Flag("expires", "Refuse the token after this long, e.g. 90d or 12h; empty: never.").StringVar(&expires)
	return cl.FullCommand(), &adminCmd{fn: func(ctx context.Context, st *store.Store, out io.Writer) error {
		var at time.Time
		if expires != "" {
			d, err := model.ParseDuration(expires)
			if err != nil || d <= 0 {
				return fmt.Errorf("--expires: %q is not a positive duration (e.g. 90d, 12h)", expires)
			}
			now, err := clock.FromEnv()
			if err != nil {
				return err
			}
			at = now().Add(time.Duration(d))
		}
		plain, t, err := st.CreateTokenExpiring(ctx, team, role, name, at)
		if err != nil {
			return err
		}
		if member != "" {
			if err := st.SetTokenMember(ctx, team, t.ID, member); err != nil {
				if rerr := st.RevokeToken(ctx, team, t.ID); rerr != nil {
					return fmt.Errorf("--member: %w; revoking the new token %s failed too, revoke it by hand: %v", err, t.ID, rerr)
				}
				return fmt.Errorf("--member: %w (the token was revoked)", err)
			}
		}
		if err := cliAudit(ctx, st, team, store.AuditTokenCreated, t.ID, "", tokenText(t.Role, name, member)); err != nil {
			return err
		}
		exp := "never expires"
		if t.ExpiresAt != nil {
			exp = "expires " + t.ExpiresAt.Format(time.RFC3339)
		}
		fmt.Fprintf(os.Stderr, "token %s (%s of %s, %s); it is shown once:\n", t.ID, t.Role, t.TeamID, exp)
		fmt.Fprintln(out, plain)
		return nil
	}}
}

func registerTokenRevoke(app *kingpin.Application) (string, command) {
	cl := groupClause(app, "token", "Administer API tokens.").Command("revoke", "Revoke an API token.")
	var team, id string
	cl.Arg("team", "The team id.").Required().StringVar(&team)
	cl.Arg("token-id", "The token id (tok_…), as shown by token list.").Required().StringVar(&id)
	return cl.FullCommand(), &adminCmd{fn: func(ctx context.Context, st *store.Store, out io.Writer) error {
		if err := st.RevokeToken(ctx, team, id); err != nil {
			return err
		}
		if err := cliAudit(ctx, st, team, store.AuditTokenRevoked, id, "active", "revoked"); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s revoked\n", id)
		return nil
	}}
}

func registerTokenList(app *kingpin.Application) (string, command) {
	cl := groupClause(app, "token", "Administer API tokens.").Command("list", "List a team's API tokens (never their secrets).")
	var team string
	cl.Arg("team", "The team id.").Required().StringVar(&team)
	return cl.FullCommand(), &adminCmd{fn: func(ctx context.Context, st *store.Store, out io.Writer) error {
		ts, err := st.ListTokens(ctx, team)
		if err != nil {
			return err
		}
		ftime := func(t *time.Time) string {
			if t == nil {
				return "-"
			}
			return t.Format(time.RFC3339)
		}
		var rows [][]string
		for _, t := range ts {
			rows = append(rows, []string{t.ID, t.Role, t.Name, t.CreatedAt.Format(time.RFC3339), ftime(t.LastUsedAt), ftime(t.ExpiresAt), ftime(t.RevokedAt)})
		}
		return table(out, "ID\tROLE\tNAME\tCREATED\tLAST USED\tEXPIRES\tREVOKED", rows)
	}}
}

// unmappedCmd lists services whose usage belongs to no known project. With --token it asks the
// running server; without, it opens the TSDB itself (the server must not be running then).
type unmappedCmd struct {
	days   int
	url    string
	token  string
	asJSON bool
}

func registerUnmapped(app *kingpin.Application) (string, command) {
	c := &unmappedCmd{}
	cl := app.Command("unmapped", "List ECS services whose usage belongs to no project in the store (unknown project tag, or untagged).")
	cl.Flag("days", "How many days back to look.").Default(fmt.Sprint(api.DefaultUnmappedDays)).IntVar(&c.days)
	cl.Flag("url", "Ask the running server at this URL (default: http://<listen>) instead of opening the TSDB.").StringVar(&c.url)
	cl.Flag("token", "An admin token for --url (or CYGNI_TOKEN).").Envar("CYGNI_TOKEN").StringVar(&c.token)
	cl.Flag("json", "Print JSON instead of a table.").BoolVar(&c.asJSON)
	return cl.FullCommand(), c
}

func (c *unmappedCmd) run(g *globals) error {
	cfg, err := loadConfig(g)
	if err != nil {
		return err
	}
	if c.days < 1 || c.days > 400 {
		return fmt.Errorf("--days %d is outside 1..400", c.days)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var list []api.UnmappedService
	if c.token != "" {
		if c.url == "" {
			c.url = "http://" + cfg.Listen
		}
		list, err = fetchUnmapped(ctx, c.url, c.token, c.days)
	} else {
		list, err = c.local(ctx, cfg)
	}
	if err != nil {
		return err
	}
	if c.asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	var rows [][]string
	for _, u := range list {
		p := u.Project
		if p == "" {
			p = "-"
		}
		region := u.Region
		if u.Account != "" {
			region += " (" + u.Account + ")"
		}
		rows = append(rows, []string{u.Reason, p, u.Cluster, u.Deployment, region, u.LastSeen.Format(time.RFC3339),
			string(u.Usage.CPUHours), string(u.Usage.MemoryGBHours), string(u.Usage.EgressGB), string(u.Usage.Requests), u.EstimatedCost.Total})
	}
	if err := table(os.Stdout, "REASON\tPROJECT\tCLUSTER\tDEPLOYMENT\tREGION (ACCOUNT)\tLAST SEEN\tVCPU-H\tMEM GB-H\tEGRESS GB\tREQUESTS\tEST. COST USD", rows); err != nil {
		return err
	}
	fmt.Printf("\nEstimated cost not attributed to any project over %d days: $%s\n", c.days, api.UnmappedTotal(list).StringFixed(2))
	return nil
}

func (c *unmappedCmd) local(ctx context.Context, cfg *config.Config) ([]api.UnmappedService, error) {
	logger := newLogger("warn")
	// Read-only: no lock, so this works while the server runs (and never touches its lock file).
	db, err := tsdb.OpenReader(logger, storageOptions(cfg))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	now, err := clock.FromEnv()
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, logger, store.Options{Driver: cfg.Store.Driver, DSN: cfg.Store.DSN, DataDir: cfg.DataDir, Now: now})
	if err != nil {
		return nil, fmt.Errorf("open the metadata store: %w", err)
	}
	defer st.Close()
	known, err := api.KnownProjects(ctx, st)
	if err != nil {
		return nil, err
	}
	to := now().UTC()
	return api.FindUnmapped(ctx, db, known, to.Add(-time.Duration(c.days)*24*time.Hour), to, query.NewPrices(cfg.Pricing))
}

func fetchUnmapped(ctx context.Context, base, token string, days int) ([]api.UnmappedService, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+fmt.Sprintf("/api/usage/unmapped?days=%d", days), nil)
	if err != nil {
		return nil, fmt.Errorf("build the request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask %s: %w", base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read the answer of %s: %w", base, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s: %s", base, resp.Status, strings.TrimSpace(string(b)))
	}
	var body struct {
		Unmapped []api.UnmappedService `json:"unmapped"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		return nil, fmt.Errorf("decode the answer of %s: %w", base, err)
	}
	return body.Unmapped, nil
}
