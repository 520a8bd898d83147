package config

import (
	"strings"
	"testing"
	"time"
)

func TestAlertingConfig(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, wantErr string
	}{
		{"defaults", "", ""},
		{"full", "alerting:\n  rule_files: [\"/etc/cygni/*.yml\"]\n  evaluation_interval: 30s\n  smtp:\n    host: smtp.example.com\n    tls: tls\n    username: u\n    password: p\n    from: \"Cygni <b@example.com>\"\n  webhook:\n    url: https://hooks.example.com/x\n    secret: s\n", ""},
		{"bad glob", "alerting:\n  rule_files: [\"[\"]\n", "'alerting.rule_files[0]' is \"[\""},
		{"zero interval", "alerting:\n  evaluation_interval: 0s\n", "'alerting.evaluation_interval' is 0s; it must be positive"},
		{"bad tls", "alerting:\n  smtp:\n    tls: ssl\n", "'alerting.smtp.tls' is \"ssl\"; want none, starttls or tls"},
		{"no from", "alerting:\n  smtp:\n    host: smtp.example.com\n", "'alerting.smtp.from' is empty"},
		{"bad from", "alerting:\n  smtp:\n    host: h\n    from: nobody\n", "'alerting.smtp.from' is \"nobody\""},
		{"bad port", "alerting:\n  smtp:\n    port: 70000\n", "'alerting.smtp.port' is 70000"},
		{"webhook without secret", "alerting:\n  webhook:\n    url: https://x.example/\n", "'alerting.webhook.secret' is empty"},
		{"webhook not http", "alerting:\n  webhook:\n    url: ftp://x\n    secret: s\n", "'alerting.webhook.url' is \"ftp://x\""},
		{"unknown key", "alerting:\n  rules: []\n", "unknown key alerting.rules (known: enabled, rule_files, "},
		{"no required alerts", "alerting:\n  required_alerts: []\n", "'alerting.required_alerts' is empty"},
		{"zero resolve hold", "alerting:\n  resolve_after: 0s\n", "'alerting.resolve_after' is 0s; it must be positive"},
		{"episode keys", "alerting:\n  required_alerts: [MyBudget]\n  resolve_after: 15m\n  resolved_emails: true\n  outage_tolerance: 2h\n  for_grace_period: 5m\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v; want %q", err, tc.wantErr)
			}
		})
	}
}

func TestAlertingDefaultsAndEnv(t *testing.T) {
	c := Default()
	if !c.Alerting.Enabled || c.Alerting.EvaluationInterval.D() != time.Minute || c.Alerting.SMTP.TLS != SMTPTLSStartTLS || len(c.Alerting.RuleFiles) != 0 ||
		c.Alerting.ResolveAfter.D() != 5*time.Minute || c.Alerting.ResolvedEmails || len(c.Alerting.RequiredAlerts) != 2 ||
		c.Alerting.OutageTolerance.D() != time.Hour || c.Alerting.ForGracePeriod.D() != 10*time.Minute {
		t.Fatalf("defaults = %+v", c.Alerting)
	}
	for tls, port := range map[string]int{SMTPTLSStartTLS: 587, SMTPTLSImplicit: 465, SMTPTLSNone: 25} {
		if _, p := (SMTPConfig{Host: "h", TLS: tls}).Addr(); p != port {
			t.Errorf("default port for %s = %d, want %d", tls, p, port)
		}
	}
	env := map[string]string{"CYGNI_SMTP_PASSWORD": "pw", "CYGNI_WEBHOOK_SECRET": "whs"}
	c.ApplyEnv(func(k string) string { return env[k] })
	if c.Alerting.SMTP.Password.Reveal() != "pw" || c.Alerting.Webhook.Secret.Reveal() != "whs" || c.Alerting.SMTP.Password.String() != "<secret>" {
		t.Fatalf("env not applied or secret printed: %+v", c.Alerting)
	}
}
