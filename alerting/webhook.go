package alerting

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/cygni/usage/store"
)

// SignatureHeader carries "sha256=<hex HMAC-SHA256 of the body keyed with the secret>".
const SignatureHeader = "X-Cygni-Signature"

// WebhookEvent is the JSON body of a webhook.
type WebhookEvent struct {
	ID          string            `json:"id"` // the notification id; stable across retries
	Type        string            `json:"type"`
	Status      string            `json:"status"` // firing | resolved
	Severity    string            `json:"severity"`
	Alert       string            `json:"alert"`
	TeamID      string            `json:"teamId"`
	ProjectID   string            `json:"projectId"`
	ProjectName string            `json:"projectName"`
	Message     string            `json:"message"`
	PeriodStart string            `json:"periodStart"`
	PeriodEnd   string            `json:"periodEnd"`
	Amounts     map[string]string `json:"amounts,omitempty"` // USD, exact decimal strings
	CreatedAt   time.Time         `json:"createdAt"`
}

func webhookBody(note store.Notification, c content) WebhookEvent {
	ev := WebhookEvent{
		ID: note.ID, Type: note.Type, Status: "firing", Severity: note.Severity, Alert: c.Alert,
		TeamID: note.TeamID, ProjectID: note.ProjectID, ProjectName: c.ProjectName, Message: note.Message,
		PeriodStart: c.PeriodStart.Format(time.DateOnly), PeriodEnd: c.PeriodEnd.Format(time.DateOnly),
		CreatedAt: note.CreatedAt,
	}
	if c.Resolved {
		ev.Status = "resolved"
	}
	if a := c.amounts(); len(a) > 0 {
		ev.Amounts = a
	}
	return ev
}

// Sign returns the X-Cygni-Signature value of body.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// VerifySignature reports whether header is the signature of body (constant time).
func VerifySignature(secret, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(header))
}

// WebhookDeliverer POSTs outbox webhooks, signed.
type WebhookDeliverer struct {
	url    string
	secret []byte
	client *http.Client
}

// NewWebhookDeliverer validates its arguments; timeout bounds one attempt (default 10s).
func NewWebhookDeliverer(url string, secret string, timeout time.Duration) (*WebhookDeliverer, error) {
	if url == "" || secret == "" {
		return nil, errors.New("webhook: url and secret are required")
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &WebhookDeliverer{url: url, secret: []byte(secret), client: &http.Client{Timeout: timeout}}, nil
}

// Deliver POSTs one webhook body; any 2xx is delivered, everything else is retried.
func (d *WebhookDeliverer) Deliver(ctx context.Context, payload []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("build webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "cygni-usage-webhook/1")
	req.Header.Set(SignatureHeader, Sign(d.secret, payload))
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("post webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("post webhook: %s answered %s", d.url, resp.Status)
	}
	return nil
}
