package main

import (
	"context"
	"path/filepath"
	"time"

	"github.com/cygni/usage/alerting"
	"github.com/cygni/usage/store"
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
	ntf, err := alerting.NewNotifier(p.logger, alerting.NotifierOptions{
		Directory: p.store,
		State:     p.store,
		Webhook:   cfg.Webhook.URL != "",
		Metrics:   p.vm,
		Now:       p.now,
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
		EvaluationInterval: cfg.EvaluationInterval.D(),
		Notify:             ntf.Notify,
		Now:                p.now,
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := mgr.Reload(ctx); err != nil {
		return err
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
	p.add("alerting", mgr.Run)
	p.api.Rules = mgr
	p.api.PromRuleGroups = mgr.RuleGroups
	return nil
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
