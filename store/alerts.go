package store

// Alerting state: the alert episodes that make a firing alert one notification per episode,
// and the durable outbox of e-mails and webhooks. An episode's row, its notification and their
// outbox messages are written in one transaction, so a crash either keeps all of them or none,
// and a restart neither loses nor repeats a notification.

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Outbox channels.
const (
	ChannelEmail   = "email"
	ChannelWebhook = "webhook"
)

// OutboxMessage is one e-mail or webhook waiting for (or done with) delivery.
type OutboxMessage struct {
	ID             int64
	NotificationID string
	Channel        string // ChannelEmail or ChannelWebhook
	Payload        []byte // the channel's rendered message (JSON)
	Attempts       int
	NextAttemptAt  time.Time
	LastError      string
	CreatedAt      time.Time
	SentAt         *time.Time
}

func (s *Store) insertOutboxTx(ctx context.Context, tx *sql.Tx, notificationID string, out []OutboxMessage) error {
	now := s.now()
	for _, m := range out {
		if m.Channel != ChannelEmail && m.Channel != ChannelWebhook {
			return fmt.Errorf("outbox message: channel %q; want email or webhook", m.Channel)
		}
		if _, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO alert_outbox (notification_id, channel, payload, next_attempt_at, created_at)
			VALUES (?, ?, ?, ?, ?)`), notificationID, m.Channel, string(m.Payload), now, now); err != nil {
			return fmt.Errorf("insert %s into the alert outbox: %w", m.Channel, err)
		}
	}
	return nil
}

// ClaimOutbox returns up to limit undelivered messages of a channel that are due, oldest first,
// and leases each one: it is not handed out again before lease has passed (a sender that dies
// mid-delivery leaves the message to be retried). Several processes may claim concurrently;
// each message goes to one of them.
func (s *Store) ClaimOutbox(ctx context.Context, channel string, limit int, lease time.Duration) ([]OutboxMessage, error) {
	now := s.now()
	rows, err := s.db.QueryContext(ctx, s.rebind(`SELECT id, notification_id, channel, payload, attempts, next_attempt_at, last_error, created_at
		FROM alert_outbox WHERE channel = ? AND sent_at IS NULL AND next_attempt_at <= ? ORDER BY id LIMIT ?`), channel, now, limit)
	if err != nil {
		return nil, fmt.Errorf("list due %s messages: %w", channel, err)
	}
	var due []OutboxMessage
	for rows.Next() {
		var m OutboxMessage
		var payload string
		if err := rows.Scan(&m.ID, &m.NotificationID, &m.Channel, &payload, &m.Attempts, &m.NextAttemptAt, &m.LastError, &m.CreatedAt); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list due %s messages: %w", channel, err)
		}
		m.Payload = []byte(payload)
		due = append(due, m)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("list due %s messages: %w", channel, err)
	}
	claimed := due[:0]
	for _, m := range due {
		res, err := s.exec(ctx, `UPDATE alert_outbox SET next_attempt_at = ? WHERE id = ? AND sent_at IS NULL AND next_attempt_at <= ?`,
			now.Add(lease), m.ID, now)
		if err != nil {
			return nil, fmt.Errorf("lease %s message %d: %w", channel, m.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			claimed = append(claimed, m)
		}
	}
	return claimed, nil
}

// MarkOutboxSent records the delivery of a message.
func (s *Store) MarkOutboxSent(ctx context.Context, id int64) error {
	if _, err := s.exec(ctx, `UPDATE alert_outbox SET sent_at = ?, attempts = attempts + 1, last_error = '' WHERE id = ?`, s.now(), id); err != nil {
		return fmt.Errorf("mark outbox message %d sent: %w", id, err)
	}
	return nil
}

// MarkOutboxFailed records a failed attempt; the message is due again after retryIn.
func (s *Store) MarkOutboxFailed(ctx context.Context, id int64, retryIn time.Duration, reason string) error {
	if _, err := s.exec(ctx, `UPDATE alert_outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ? AND sent_at IS NULL`,
		s.now().Add(retryIn), reason, id); err != nil {
		return fmt.Errorf("mark outbox message %d failed: %w", id, err)
	}
	return nil
}

// OutboxMessages lists the outbox messages of a channel, oldest first (delivered ones too), for
// diagnostics and tests.
func (s *Store) OutboxMessages(ctx context.Context, channel string) ([]OutboxMessage, error) {
	rows, err := s.db.QueryContext(ctx, s.rebind(`SELECT id, notification_id, channel, payload, attempts, next_attempt_at, last_error, created_at, sent_at
		FROM alert_outbox WHERE channel = ? ORDER BY id`), channel)
	if err != nil {
		return nil, fmt.Errorf("list %s outbox: %w", channel, err)
	}
	defer rows.Close()
	var out []OutboxMessage
	for rows.Next() {
		var m OutboxMessage
		var payload string
		var sent sql.NullTime
		if err := rows.Scan(&m.ID, &m.NotificationID, &m.Channel, &payload, &m.Attempts, &m.NextAttemptAt, &m.LastError, &m.CreatedAt, &sent); err != nil {
			return nil, fmt.Errorf("list %s outbox: %w", channel, err)
		}
		m.Payload = []byte(payload)
		if sent.Valid {
			t := sent.Time.UTC()
			m.SentAt = &t
		}
		out = append(out, m)
	}
	return out, rows.Err()
}
