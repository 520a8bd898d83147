package alerting

import (
	"context"
	"crypto/tls"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"strings"
	"text/template"
	"time"

	mail "github.com/wneessen/go-mail"

	"github.com/cygni/usage/store"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

// Email is a rendered e-mail as it waits in the outbox.
type Email struct {
	To        []string `json:"to"`
	Subject   string   `json:"subject"`
	Text      string   `json:"text"`
	HTML      string   `json:"html"`
	MessageID string   `json:"messageId"` // stable across retries, so receivers can dedup
}

type templates struct {
	text *template.Template
	html *htmltemplate.Template
}

// Template files, named by their path in the source tree so that an error reads
// "template: alerting/templates/email.txt.tmpl:12:5: …".
const (
	textTemplate = "alerting/templates/email.txt.tmpl"
	htmlTemplate = "alerting/templates/email.html.tmpl"
)

// parseTemplates parses the e-mail templates of fsys (the embedded ones: templateFS, with paths
// templates/…).
func parseTemplates(fsys fs.FS) (*templates, error) {
	read := func(name string) (string, error) {
		b, err := fs.ReadFile(fsys, strings.TrimPrefix(name, "alerting/"))
		if err != nil {
			return "", fmt.Errorf("read e-mail template %s: %w", name, err)
		}
		return string(b), nil
	}
	src, err := read(textTemplate)
	if err != nil {
		return nil, err
	}
	t, err := template.New(textTemplate).Parse(src)
	if err != nil {
		return nil, fmt.Errorf("parse e-mail text template: %w", err)
	}
	if src, err = read(htmlTemplate); err != nil {
		return nil, err
	}
	h, err := htmltemplate.New(htmlTemplate).Parse(src)
	if err != nil {
		return nil, fmt.Errorf("parse e-mail HTML template: %w", err)
	}
	return &templates{text: t, html: h}, nil
}

// emailData is what the templates see.
type emailData struct {
	content
	NotificationID string
}

func (t *templates) render(note store.Notification, c content, team store.Team, to []string) (Email, error) {
	d := emailData{content: c, NotificationID: note.ID}
	var subj, text, html strings.Builder
	if err := t.text.ExecuteTemplate(&subj, "subject", d); err != nil {
		return Email{}, fmt.Errorf("render e-mail subject: %w", err)
	}
	if err := t.text.ExecuteTemplate(&text, "text", d); err != nil {
		return Email{}, fmt.Errorf("render e-mail text: %w", err)
	}
	if err := t.html.ExecuteTemplate(&html, "html", d); err != nil {
		return Email{}, fmt.Errorf("render e-mail HTML: %w", err)
	}
	return Email{
		To: to, Subject: subj.String(), Text: text.String(), HTML: html.String(),
		MessageID: note.ID + "@cygni-usage",
	}, nil
}

// SMTPOptions is the outgoing mail server.
type SMTPOptions struct {
	Host string
	Port int
	// TLS is "none", "starttls" (required) or "tls" (implicit).
	TLS      string
	Username string
	Password string
	From     string
	Timeout  time.Duration // per delivery; default 30s
	// TLSConfig overrides the TLS client settings (tests trust their own CA with it).
	TLSConfig *tls.Config
}

// SMTPDeliverer sends outbox e-mails over SMTP with go-mail.
type SMTPDeliverer struct {
	opts SMTPOptions
}

// NewSMTPDeliverer validates opts.
func NewSMTPDeliverer(opts SMTPOptions) (*SMTPDeliverer, error) {
	if opts.Host == "" || opts.Port == 0 {
		return nil, errors.New("smtp: host and port are required")
	}
	if opts.From == "" {
		return nil, errors.New("smtp: from is empty")
	}
	switch opts.TLS {
	case "none", "starttls", "tls":
	default:
		return nil, fmt.Errorf("smtp: tls %q; want none, starttls or tls", opts.TLS)
	}
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	return &SMTPDeliverer{opts: opts}, nil
}

// Deliver sends one outbox e-mail (a JSON Email).
func (d *SMTPDeliverer) Deliver(ctx context.Context, payload []byte) error {
	var e Email
	if err := json.Unmarshal(payload, &e); err != nil {
		return fmt.Errorf("decode outbox e-mail: %w", err)
	}
	m := mail.NewMsg()
	if err := m.From(d.opts.From); err != nil {
		return fmt.Errorf("set sender %q: %w", d.opts.From, err)
	}
	if err := m.To(e.To...); err != nil {
		return fmt.Errorf("set recipients: %w", err)
	}
	m.Subject(e.Subject)
	m.SetMessageIDWithValue(e.MessageID)
	m.SetDate()
	m.SetBodyString(mail.TypeTextPlain, e.Text)
	if e.HTML != "" {
		m.AddAlternativeString(mail.TypeTextHTML, e.HTML)
	}
	opts := []mail.Option{mail.WithPort(d.opts.Port), mail.WithTimeout(d.opts.Timeout)}
	switch d.opts.TLS {
	case "none":
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	case "starttls":
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	case "tls":
		opts = append(opts, mail.WithSSL())
	}
	if d.opts.TLSConfig != nil {
		opts = append(opts, mail.WithTLSConfig(d.opts.TLSConfig))
	}
	if d.opts.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover), mail.WithUsername(d.opts.Username), mail.WithPassword(d.opts.Password))
	}
	c, err := mail.NewClient(d.opts.Host, opts...)
	if err != nil {
		return fmt.Errorf("configure SMTP client: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, m); err != nil {
		return fmt.Errorf("send e-mail to %s via %s:%d: %w", strings.Join(e.To, ", "), d.opts.Host, d.opts.Port, err)
	}
	return nil
}
