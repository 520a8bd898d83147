package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/shopspring/decimal"

	"github.com/cygni/usage/billing"
	"github.com/cygni/usage/config"
	"github.com/cygni/usage/query"
	"github.com/cygni/usage/store"
)

// Negotiated prices of teams and projects (docs/billing.md "Negotiated prices"): effective-dated
// overrides on top of the configuration's price sheets, in the metadata store, each change in
// the audit trail.

func pricesClause(app *kingpin.Application) *kingpin.CmdClause {
	return groupClause(app, "prices", "Negotiated prices of teams and projects (overrides of the configured price sheets).")
}

// effectivePrices are the prices of a team ("") or one of its projects over time.
func effectivePrices(def query.Prices, rows []store.PriceOverride, project string) query.Prices {
	var o query.ProjectOverrides
	for _, r := range rows {
		switch r.ProjectID {
		case "":
			o.Team = append(o.Team, r.PriceOverride)
		case project:
			o.Project = append(o.Project, r.PriceOverride)
		}
	}
	return query.NewPriceList(def, map[string]query.ProjectOverrides{project: o}).Of(project)
}

func registerPricesShow(app *kingpin.Application) (string, command) {
	cl := pricesClause(app).Command("show", "Show the prices in force over time for a team (or one of its projects) and its overrides.")
	var team, project string
	cl.Arg("team", "The team id.").Required().StringVar(&team)
	cl.Flag("project", "A project of the team; default: the team's prices (those of its projects without overrides of their own).").StringVar(&project)
	return cl.FullCommand(), &adminCmd{priced: func(ctx context.Context, st *store.Store, cfg *config.Config, _ func() time.Time, out io.Writer) error {
		def := query.NewPrices(cfg.Pricing)
		if project != "" {
			if _, err := st.GetProject(ctx, team, project); err != nil {
				return err
			}
		}
		rows, err := st.ListPriceOverrides(ctx, team)
		if err != nil {
			return err
		}
		var sheets, stripe [][]string
		effective := effectivePrices(def, rows, project).EffectiveSheets()
		for _, s := range effective {
			from := "always"
			if !s.EffectiveFrom.IsZero() {
				from = s.EffectiveFrom.Format(time.RFC3339)
			}
			sheets = append(sheets, []string{from, s.VCPUHour.String(), s.MemoryGBHour.String(), s.EgressGB.String(), s.StorageGBHour.String(), s.MillionRequests.String()})
			stripe = append(stripe, append([]string{from}, stripeAmounts(cfg.Billing, s)...))
		}
		if err := table(out, "FROM\tVCPU_HOUR\tMEMORY_GB_HOUR\tEGRESS_GB\tSTORAGE_GB_HOUR\tMILLION_REQUESTS\t", sheets); err != nil {
			return err
		}
		// What the customer's Stripe prices must say for the invoice to match (docs/billing.md
		// "Negotiated prices"): the meter events carry quantities only.
		fmt.Fprintln(out, "\nStripe unit_amount_decimal (US cents per reported unit) the subscription's prices need:")
		if err := table(out, "FROM\t"+strings.Join(stripeHeader(cfg.Billing), "\t")+"\t", stripe); err != nil {
			return err
		}
		var ov [][]string
		for _, r := range rows {
			if r.ProjectID != "" && r.ProjectID != project {
				continue
			}
			scope := team
			if r.ProjectID != "" {
				scope = r.ProjectID
			}
			prices := r.PricesJSON()
			if r.IsReset() {
				prices = "reset"
			}
			ov = append(ov, []string{scope, r.EffectiveFrom.Format(time.RFC3339), prices})
		}
		if len(ov) == 0 {
			_, err := fmt.Fprintln(out, "\nno overrides: the configured price sheets")
			return err
		}
		fmt.Fprintln(out)
		if err := table(out, "OVERRIDE\tFROM\tPRICES\t", ov); err != nil {
			return err
		}
		if project != "" && cfg.Billing.Mode == config.BillingModeMeterEvents && len(effective) > len(effectivePrices(def, rows, "").EffectiveSheets()) {
			fmt.Fprintf(out, "\nwarning: %s has prices of its own, but with billing.mode meter_events Stripe prices all of a customer's projects at the customer's one price per meter: the invoice follows the team's prices, not these (docs/billing.md \"Negotiated prices\")\n", project)
		}
		return nil
	}}
}

// parseOverride reads --prices (the API's JSON object) and the per-price flags into an override.
func parseOverride(from, pricesJSON string, flags map[string]*string) (config.PriceOverride, error) {
	if from == "" {
		return config.PriceOverride{}, fmt.Errorf("--from is required (RFC 3339, e.g. 2026-12-15T00:00:00Z)")
	}
	t, err := time.Parse(time.RFC3339Nano, from)
	if err != nil {
		return config.PriceOverride{}, fmt.Errorf("--from: %q is not an RFC 3339 instant (e.g. 2026-12-15T00:00:00Z)", from)
	}
	o := config.PriceOverride{EffectiveFrom: t.UTC()}
	if pricesJSON != "" {
		dec := json.NewDecoder(strings.NewReader(pricesJSON))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			return o, fmt.Errorf("--prices: not a JSON object such as {\"vcpuHour\":\"0.04\"}: %w", err)
		}
		for name, v := range m {
			s := fmt.Sprint(v)
			d, err := decimal.NewFromString(s)
			if err != nil {
				return o, fmt.Errorf("--prices: %s: %q is not a decimal price", name, s)
			}
			if err := o.SetField(name, &d); err != nil {
				return o, fmt.Errorf("--prices: %w", err)
			}
		}
	}
	for _, name := range config.PriceFieldNames {
		v := flags[name]
		if v == nil || *v == "" {
			continue
		}
		d, err := decimal.NewFromString(*v)
		if err != nil {
			return o, fmt.Errorf("--%s: %q is not a decimal price", flagName(name), *v)
		}
		if err := o.SetField(name, &d); err != nil {
			return o, fmt.Errorf("--%s: %w", flagName(name), err)
		}
	}
	if o.IsReset() {
		return o, fmt.Errorf("no price given: pass --prices or at least one of --vcpu-hour, --memory-gb-hour, --egress-gb, --storage-gb-hour, --million-requests (prices clear resets)")
	}
	if err := o.Validate(); err != nil {
		return o, err
	}
	return o, nil
}

// flagName is the flag of a price's JSON name (vcpuHour → vcpu-hour).
func flagName(name string) string {
	return map[string]string{"vcpuHour": "vcpu-hour", "memoryGbHour": "memory-gb-hour", "egressGb": "egress-gb",
		"storageGbHour": "storage-gb-hour", "millionRequests": "million-requests"}[name]
}

func registerPricesSet(app *kingpin.Application) (string, command) {
	cl := pricesClause(app).Command("set",
		`Set negotiated prices of a team (or of one project) from an instant on: the prices given replace the configured sheet's (a project's replace its team's), the others follow it. E.g. prices set team_acme --from 2026-12-15T00:00:00Z --vcpu-hour 0.04, or --prices '{"vcpuHour":"0.04"}'. Setting the same instant again replaces it.`)
	var team, project, from, prices string
	flags := map[string]*string{}
	cl.Arg("team", "The team id.").Required().StringVar(&team)
	cl.Flag("project", "A project of the team; default: the team's prices.").StringVar(&project)
	cl.Flag("from", "The instant the prices take effect (RFC 3339).").Required().StringVar(&from)
	cl.Flag("prices", `The prices as the API's JSON object, e.g. {"vcpuHour":"0.04","egressGb":"0.07"}.`).StringVar(&prices)
	for _, name := range config.PriceFieldNames {
		v := new(string)
		flags[name] = v
		cl.Flag(flagName(name), "The price "+name+" in USD.").StringVar(v)
	}
	return cl.FullCommand(), &adminCmd{fn: func(ctx context.Context, st *store.Store, out io.Writer) error {
		o, err := parseOverride(from, prices, flags)
		if err != nil {
			return err
		}
		if err := st.SetPriceOverride(ctx, team, project, o, store.AuditEvent{Actor: cliActor()}); err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "%s: from %s %s\n", targetName(team, project), o.EffectiveFrom.Format(time.RFC3339), o.PricesJSON())
		return err
	}}
}

func registerPricesClear(app *kingpin.Application) (string, command) {
	cl := pricesClause(app).Command("clear",
		"From an instant on, price a team (or one project) by the sheet underneath again (the configured sheets; a project: its team's). The hours before keep their prices.")
	var team, project, from string
	cl.Arg("team", "The team id.").Required().StringVar(&team)
	cl.Flag("project", "A project of the team; default: the team's prices.").StringVar(&project)
	cl.Flag("from", "The instant the override ends (RFC 3339).").Required().StringVar(&from)
	return cl.FullCommand(), &adminCmd{fn: func(ctx context.Context, st *store.Store, out io.Writer) error {
		t, err := time.Parse(time.RFC3339Nano, from)
		if err != nil {
			return fmt.Errorf("--from: %q is not an RFC 3339 instant (e.g. 2026-12-15T00:00:00Z)", from)
		}
		if err := st.SetPriceOverride(ctx, team, project, config.PriceOverride{EffectiveFrom: t.UTC()}, store.AuditEvent{Actor: cliActor()}); err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "%s: the configured prices again from %s\n", targetName(team, project), t.UTC().Format(time.RFC3339))
		return err
	}}
}

func targetName(team, project string) string {
	if project == "" {
		return team
	}
	return project
}

// stripeMeters are the billed metrics in a stable order, with the sheet's price per billed unit.
var stripeMeters = []struct {
	metric string
	price  func(config.PriceSheet) decimal.Decimal
}{
	{"cpu", func(s config.PriceSheet) decimal.Decimal { return s.VCPUHour.Decimal }},
	{"memory", func(s config.PriceSheet) decimal.Decimal { return s.MemoryGBHour.Decimal }},
	{"egress", func(s config.PriceSheet) decimal.Decimal { return s.EgressGB.Decimal }},
	{"requests", func(s config.PriceSheet) decimal.Decimal { return s.MillionRequests.Decimal.Shift(-6) }},
}

func stripeHeader(b config.BillingConfig) []string {
	var h []string
	for _, m := range stripeMeters {
		if mc, ok := b.Meters[m.metric]; ok && !mc.Disabled {
			name := mc.EventName
			if name == "" {
				name = m.metric
			}
			h = append(h, name+" (per "+mc.Unit+" "+config.BilledMetrics[m.metric]+")")
		}
	}
	return h
}

// stripeAmounts are, per billed meter, the price of one reported unit in US cents (Stripe's
// unit_amount_decimal): the sheet's price × the meter's unit × 100, exact.
func stripeAmounts(b config.BillingConfig, s config.PriceSheet) []string {
	var out []string
	for _, m := range stripeMeters {
		mc, ok := b.Meters[m.metric]
		if !ok || mc.Disabled {
			continue
		}
		unit, err := decimal.NewFromString(mc.Unit)
		if err != nil {
			out = append(out, "?")
			continue
		}
		out = append(out, m.price(s).Mul(unit).Shift(2).String())
	}
	return out
}

func registerPricesCheckStripe(app *kingpin.Application) (string, command) {
	cl := pricesClause(app).Command("check-stripe",
		"Compare the prices in force now for a team with the prices of its Stripe customer's subscription items on each billed meter (what Stripe will invoice); exits non-zero when one differs or is missing.")
	var team string
	cl.Arg("team", "The team id.").Required().StringVar(&team)
	return cl.FullCommand(), &adminCmd{priced: func(ctx context.Context, st *store.Store, cfg *config.Config, now func() time.Time, out io.Writer) error {
		t, err := st.GetTeam(ctx, team)
		if err != nil {
			return err
		}
		if t.StripeCustomerID == "" {
			return fmt.Errorf("team %s has no Stripe customer (team set-stripe-customer)", team)
		}
		if cfg.Billing.Mode != config.BillingModeMeterEvents {
			return fmt.Errorf("check-stripe compares meter prices (billing.mode meter_events); with usage_records check each project's subscription items in Stripe")
		}
		rows, err := st.ListPriceOverrides(ctx, team)
		if err != nil {
			return err
		}
		at := now()
		sheet := effectivePrices(query.NewPrices(cfg.Pricing), rows, "").SheetAt(at)
		l := billing.NewLinker(st, cfg.Billing.Stripe.URL, cfg.Billing.Stripe.APIKey.Reveal(), nil, now)
		prices, err := l.StripePrices(ctx, t.StripeCustomerID)
		if err != nil {
			return err
		}
		want := stripeAmounts(cfg.Billing, sheet)
		var checked [][]string
		bad := 0
		i := 0
		for _, m := range stripeMeters {
			mc, ok := cfg.Billing.Meters[m.metric]
			if !ok || mc.Disabled {
				continue
			}
			w := want[i]
			i++
			var found []stripeRow
			for _, p := range prices {
				if p.EventName == mc.EventName {
					found = append(found, stripeRow{p.Item, p.UnitAmountDecimal})
				}
			}
			if len(found) == 0 {
				bad++
				checked = append(checked, []string{mc.EventName, w, "-", "-", "MISSING: no subscription item on this meter"})
				continue
			}
			wd, err := decimal.NewFromString(w)
			if err != nil {
				return fmt.Errorf("billing.meters: the unit of %s (%q) is not a decimal; cannot compute its Stripe price", mc.EventName, mc.Unit)
			}
			for _, f := range found {
				status := "ok"
				if gd, err := decimal.NewFromString(f.amount); err != nil || !gd.Equal(wd) {
					bad++
					status = "DIFFERS: Stripe invoices " + f.amount + " cents per unit"
				}
				checked = append(checked, []string{mc.EventName, w, f.amount, f.item, status})
			}
		}
		fmt.Fprintf(out, "team %s (Stripe customer %s), prices in force at %s:\n", team, t.StripeCustomerID, at.UTC().Format(time.RFC3339))
		if err := table(out, "METER\tWANT_CENTS\tSTRIPE_CENTS\tITEM\tSTATUS\t", checked); err != nil {
			return err
		}
		if bad > 0 {
			return fmt.Errorf("%d Stripe price(s) differ from the team's prices or are missing: the invoice would not match the dashboards", bad)
		}
		return nil
	}}
}

// stripeRow is one subscription item's price on a meter.
type stripeRow struct{ item, amount string }
