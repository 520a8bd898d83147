package main

import (
	"context"
	"path/filepath"
	"time"

	"github.com/shopspring/decimal"

	"github.com/cygni/usage/alerting"
	"github.com/cygni/usage/query"
	"github.com/cygni/usage/store"
	"github.com/cygni/usage/tsdb"
)

// wireAlerting adds the rule manager and the e-mail and webhook senders. The rule files are
// loaded now, so a broken file stops the start with file:line errors; later reloads (SIGHUP,
// POST /-/reload) keep the running rules when a file is broken.
func (p *process) wireAlerting() error {
	cfg := p.cfg.Alerting
	if !cfg.Enabled {
		p.logger.Info("alerting disabled by alerting.enabled")
		return nil
	}
	var senders []*alerting.Sender
	// addSender runs a sender that delivers one channel's outbox with deliver.
	addSender := func(channel string, deliver alerting.DeliverFunc) error {
		s, err := alerting.NewSender(p.logger, alerting.SenderOptions{Channel: channel, Outbox: p.store, Deliver: deliver, MaxBackoff: cfg.MaxBackoff.D(), Metrics: p.vm})
		if err != nil {
			return err
		}
		senders = append(senders, s)
		p.add("alerting-"+channel, s.Run)
		return nil
	}
	engine, err := p.queryEngine()
	if err != nil {
		return err
	}
	ntf, err := alerting.NewNotifier(p.logger, alerting.NotifierOptions{
		Directory:      p.store,
		State:          p.store,
		Costs:          alertCosts(engine),
		DayCosts:       dayCosts(engine),
		Webhook:        cfg.Webhook.URL != "",
		ResolvedEmails: cfg.ResolvedEmails,
		ResolveAfter:   cfg.ResolveAfter.D(),
		Metrics:        p.vm,
		Queued: func() {
			for _, s := range senders {
				s.Kick()
			}
		},
	})
	if err != nil {
		return err
	}
	mgr, err := alerting.New(p.logger, p.reg, alerting.Options{
		Storage:            p.db,
		RuleFiles:          cfg.RuleFiles,
		ShippedDir:         filepath.Join(p.cfg.DataDir, "rules", "shipped"),
		RequiredAlerts:     cfg.RequiredAlerts,
		EvaluationInterval: cfg.EvaluationInterval.D(),
		// With the Deriver in this process the rules evaluate right after each of its runs
		// (first after the first one: restored `for` clocks then see the active alerts). With a
		// remote store the derived series are already there, and the Deriver leader may be
		// another process: the rules evaluate on their interval (and on local triggers).
		WaitForTrigger:  p.derive != nil && p.cfg.Storage.Mode != tsdb.ModeRemote,
		OutageTolerance: cfg.OutageTolerance.D(),
		ForGracePeriod:  cfg.ForGracePeriod.D(),
		Now:             p.now,
		Evaluated:       ntf.Reconcile,
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := mgr.Reload(ctx); err != nil {
		return err
	}
	if p.derive != nil {
		p.derive.SetOnStep(mgr.Trigger)
	}
	if cfg.SMTP.Host != "" {
		host, port := cfg.SMTP.Addr()
		d, err := alerting.NewSMTPDeliverer(alerting.SMTPOptions{
			Host: host, Port: port, TLS: cfg.SMTP.TLS, Username: cfg.SMTP.Username,
			Password: cfg.SMTP.Password.Reveal(), From: cfg.SMTP.From,
		})
		if err != nil {
			return err
		}
		if err := addSender(store.ChannelEmail, d.Deliver); err != nil {
			return err
		}
	} else {
		p.logger.Warn("no alerting.smtp.host; budget e-mails are kept in the outbox until one is configured")
	}
	if cfg.Webhook.URL != "" {
		d, err := alerting.NewWebhookDeliverer(cfg.Webhook.URL, cfg.Webhook.Secret.Reveal(), cfg.Webhook.Timeout.D())
		if err != nil {
			return err
		}
		if err := addSender(store.ChannelWebhook, d.Deliver); err != nil {
			return err
		}
	}
	// One rule evaluation among the processes sharing the store, so ALERTS and the recording
	// rules are written once and each alert is notified once.
	p.add("alerting", p.leaderOnly("rules", mgr.Run))
	p.api.Rules = mgr
	p.api.PromRuleGroups = mgr.RuleGroups
	p.api.PromRuleDirs = promRuleDirs(filepath.Join(p.cfg.DataDir, "rules", "shipped"), cfg.RuleFiles)
	p.api.ReadyDetails = append(p.api.ReadyDetails, func() (string, any) { return "alerting", mgr.Status() })
	return nil
}

// queryEngine is the process's query engine (wireQuery), or a new one over the TSDB when the
// API part does not run here.
func (p *process) queryEngine() (*query.Engine, error) {
	if p.engine != nil {
		return p.engine, nil
	}
	e, err := query.New(p.logger, p.reg, query.Options{Storage: p.db, Prices: query.NewPrices(p.cfg.Pricing), Overrides: p.priceOverrides(), Now: p.now})
	if err != nil {
		return nil, err
	}
	p.engine = e
	return e, nil
}

// alertCosts gives the notifier the exact amounts of the budget endpoint: the query layer's
// month-to-date cost and forecast.
func alertCosts(e *query.Engine) alerting.CostFunc {
	return func(ctx context.Context, projects []string, anchorDay int, at time.Time) (map[string]alerting.Costs, error) {
		f, err := e.Forecast(ctx, projects, anchorDay, at)
		if err != nil {
			return nil, err
		}
		out := make(map[string]alerting.Costs, len(f))
		for id, pf := range f {
			out[id] = alerting.Costs{PeriodStart: pf.PeriodStart, PeriodEnd: pf.PeriodEnd, Used: pf.MonthToDate.Total(), Forecast: pf.Forecast}
		}
		return out, nil
	}
}

// dayCosts reads the exact cost of projects in [from, to) for daily budget alerts.
func dayCosts(e *query.Engine) alerting.DayCostFunc {
	return func(ctx context.Context, projects []string, from, to time.Time) (map[string]decimal.Decimal, error) {
		ru, err := e.Rollup(ctx, projects, []time.Time{from, to}, query.ByProject)
		if err != nil {
			return nil, err
		}
		out := make(map[string]decimal.Decimal, len(projects))
		for _, id := range projects {
			if row, ok := ru.Rows[query.Key{Project: id}]; ok && len(row) > 0 {
				out[id] = row[0].Cost.Total()
			}
		}
		return out, nil
	}
}

// reloadRules re-reads the rule files (SIGHUP); a broken file is logged and the running rules
// stay.
func (p *process) reloadRules() {
	if p.api.Rules == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = p.api.Rules.Reload(ctx) // the manager logs a rejected reload
}
