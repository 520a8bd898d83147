package config

import (
	"fmt"
	"net/mail"
	"net/url"
	"path/filepath"
	"time"
)

// SMTP transport security modes.
const (
	SMTPTLSNone     = "none"     // plain SMTP (loopback relays, tests)
	SMTPTLSStartTLS = "starttls" // STARTTLS upgrade, required (default; port 587)
	SMTPTLSImplicit = "tls"      // implicit TLS (SMTPS; port 465)
)

// AlertingConfig configures the rule engine and the notification channels.
type AlertingConfig struct {
	// Enabled runs the rule manager and the notification senders (default true).
	Enabled bool `yaml:"enabled"`
	// RuleFiles are globs of Prometheus rule files. Empty (the default): the rules shipped in
	// the binary (alerting/rules/*.yml), written to <data_dir>/rules/shipped on start.
	RuleFiles []string `yaml:"rule_files"`
	// RequiredAlerts must be defined by the rule files (default ProjectBudgetWarning and
	// ProjectBudgetExceeded, the seed's budget alerts): a rule set without them is refused at
	// start and reload, so that a typo cannot switch budget alerting off.
	RequiredAlerts []string `yaml:"required_alerts"`
	// EvaluationInterval is how often every rule group is evaluated when no new data arrived
	// (default 1m). The rules are also evaluated right after every collection and budget change.
	EvaluationInterval Duration `yaml:"evaluation_interval"`
	// ResolveAfter is how long an alert must have stopped firing, with fresh data, before its
	// episode is resolved and a later crossing notifies again (default 5m).
	ResolveAfter Duration `yaml:"resolve_after"`
	// ResolvedEmails also e-mails resolutions (default false: in-app and webhook only).
	ResolvedEmails bool `yaml:"resolved_emails"`
	// OutageTolerance is how long a restart may last and still restore the `for` clocks of
	// pending and firing alerts (default 1h); ForGracePeriod is the least wait after a restore
	// before such an alert fires (default 10m).
	OutageTolerance Duration `yaml:"outage_tolerance"`
	ForGracePeriod  Duration `yaml:"for_grace_period"`
	// MaxBackoff caps the exponential back-off between delivery attempts of one e-mail or
	// webhook (default 10m). Messages are never dropped.
	MaxBackoff Duration `yaml:"max_backoff"`
	// SMTP is the outgoing mail server. No host: e-mails are kept in the outbox, unsent.
	SMTP SMTPConfig `yaml:"smtp"`
	// Webhook is the chat-integration channel. No URL: no webhooks.
	Webhook WebhookConfig `yaml:"webhook"`
}

// SMTPConfig is the outgoing mail server.
type SMTPConfig struct {
	Host string `yaml:"host"`
	// Port defaults by TLS mode: 587 (starttls), 465 (tls), 25 (none).
	Port int `yaml:"port"`
	// TLS is none, starttls (default) or tls.
	TLS      string `yaml:"tls"`
	Username string `yaml:"username"`
	// Password; CYGNI_SMTP_PASSWORD overrides it.
	Password Secret `yaml:"password"`
	// From is the sender address, e.g. "Cygni Billing <billing@cygni.dev>".
	From string `yaml:"from"`
}

// WebhookConfig is a JSON POST endpoint signed with HMAC-SHA256.
type WebhookConfig struct {
	URL string `yaml:"url"`
	// Secret keys the X-Cygni-Signature HMAC; CYGNI_WEBHOOK_SECRET overrides it.
	Secret Secret `yaml:"secret"`
	// Timeout of one delivery attempt (default 10s).
	Timeout Duration `yaml:"timeout"`
}

func (c *AlertingConfig) setDefaults() {
	c.Enabled = true
	c.RequiredAlerts = []string{"ProjectBudgetWarning", "ProjectBudgetExceeded"}
	c.EvaluationInterval = Duration(time.Minute)
	c.ResolveAfter = Duration(5 * time.Minute)
	c.OutageTolerance = Duration(time.Hour)
	c.ForGracePeriod = Duration(10 * time.Minute)
	c.MaxBackoff = Duration(10 * time.Minute)
	c.SMTP.TLS = SMTPTLSStartTLS
	c.Webhook.Timeout = Duration(10 * time.Second)
}

func (c *AlertingConfig) applyEnv(getenv func(string) string) {
	if v := getenv("CYGNI_SMTP_PASSWORD"); v != "" {
		c.SMTP.Password = Secret(v)
	}
	if v := getenv("CYGNI_WEBHOOK_SECRET"); v != "" {
		c.Webhook.Secret = Secret(v)
	}
}

func (c *AlertingConfig) validate() error {
	for i, g := range c.RuleFiles {
		if g == "" {
			return fmt.Errorf("'alerting.rule_files[%d]' is empty", i)
		}
		if _, err := filepath.Match(g, ""); err != nil {
			return fmt.Errorf("'alerting.rule_files[%d]' is %q: %v", i, g, err)
		}
	}
	if len(c.RequiredAlerts) == 0 {
		return fmt.Errorf("'alerting.required_alerts' is empty; name the budget alerts the rule files must define")
	}
	for i, a := range c.RequiredAlerts {
		if a == "" {
			return fmt.Errorf("'alerting.required_alerts[%d]' is empty", i)
		}
	}
	for key, d := range map[string]Duration{"alerting.evaluation_interval": c.EvaluationInterval, "alerting.resolve_after": c.ResolveAfter,
		"alerting.outage_tolerance": c.OutageTolerance, "alerting.for_grace_period": c.ForGracePeriod} {
		if err := positive(key, d); err != nil {
			return err
		}
	}
	if err := positive("alerting.max_backoff", c.MaxBackoff); err != nil {
		return err
	}
	if err := c.SMTP.validate(); err != nil {
		return err
	}
	return c.Webhook.validate()
}

// Addr returns host:port with the port defaulted by TLS mode.
func (c SMTPConfig) Addr() (string, int) {
	if c.Port != 0 {
		return c.Host, c.Port
	}
	switch c.TLS {
	case SMTPTLSImplicit:
		return c.Host, 465
	case SMTPTLSNone:
		return c.Host, 25
	}
	return c.Host, 587
}

func (c SMTPConfig) validate() error {
	switch c.TLS {
	case SMTPTLSNone, SMTPTLSStartTLS, SMTPTLSImplicit:
	default:
		return fmt.Errorf("'alerting.smtp.tls' is %q; want none, starttls or tls", c.TLS)
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("'alerting.smtp.port' is %d; want 1-65535", c.Port)
	}
	if c.Host == "" {
		return nil
	}
	if c.From == "" {
		return fmt.Errorf("'alerting.smtp.from' is empty but 'alerting.smtp.host' is %q", c.Host)
	}
	if _, err := mail.ParseAddress(c.From); err != nil {
		return fmt.Errorf("'alerting.smtp.from' is %q: %v", c.From, err)
	}
	if c.Password != "" && c.Username == "" {
		return fmt.Errorf("'alerting.smtp.username' is empty but a password is set")
	}
	return nil
}

func (c WebhookConfig) validate() error {
	if err := positive("alerting.webhook.timeout", c.Timeout); err != nil {
		return err
	}
	if c.URL == "" {
		return nil
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("'alerting.webhook.url' is %q; want an absolute http(s) URL", c.URL)
	}
	if c.Secret == "" {
		return fmt.Errorf("'alerting.webhook.secret' is empty; webhooks are signed (set it or CYGNI_WEBHOOK_SECRET)")
	}
	return nil
}
