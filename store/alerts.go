package store

// Alerting state: the dedup table that makes a firing alert one notification per project,
// alert and billing period, and the durable outbox of e-mails and webhooks. The dedup row, the
// notification and its outbox messages are written in one transaction, so a crash either keeps
// all of them or none, and a restart neither loses nor repeats a notification.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Outbox channels.
const (
	ChannelEmail   = "email"
	ChannelWebhook = "webhook"
)

// AlertKey identifies one alert of one project in one billing period.
type AlertKey struct {
	ProjectID string
	Alert     string // the alert's identity: its name plus labels other than project and severity
	Period    string // the billing period's first day, "2006-01-02"
}

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

// RecordAlertFiring creates the notification of a firing alert and queues its outbox messages,
// unless this key already has one: then it returns created=false and writes nothing. The
// dedup row, the notification and the outbox rows commit together.
func (s *Store) RecordAlertFiring(ctx context.Context, key AlertKey, alertName string, n Notification, out []OutboxMessage) (Notification, bool, error) {
	created := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var have int
		err := tx.QueryRowContext(ctx, s.rebind(`SELECT COUNT(*) FROM alert_notifications WHERE project_id = ? AND alert = ? AND period = ?`),
			key.ProjectID, key.Alert, key.Period).Scan(&have)
		if err != nil {
			return fmt.Errorf("check alert state: %w", err)
		}
		if have > 0 {
			return nil
		}
		n, err = s.insertNotificationTx(ctx, tx, n)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO alert_notifications (project_id, alert, period, alert_name, team_id, notification_id, fired_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`), key.ProjectID, key.Alert, key.Period, alertName, n.TeamID, n.ID, n.CreatedAt); err != nil {
			if isUniqueViolation(err) { // another replica won the race
				return errAlreadyRecorded
			}
			return fmt.Errorf("insert alert state: %w", err)
		}
		if err := s.insertOutboxTx(ctx, tx, n.ID, out); err != nil {
			return err
		}
		created = true
		return nil
	})
	if errors.Is(err, errAlreadyRecorded) {
		return Notification{}, false, nil
	}
	if err != nil {
		return Notification{}, false, fmt.Errorf("record firing alert %s of %s: %w", key.Alert, key.ProjectID, err)
	}
	if !created {
		return Notification{}, false, nil
	}
	return n, true, nil
}

var errAlreadyRecorded = errors.New("alert already recorded")

// AlertNotified reports whether key already has its notification.
func (s *Store) AlertNotified(ctx context.Context, key AlertKey) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.rebind(`SELECT COUNT(*) FROM alert_notifications WHERE project_id = ? AND alert = ? AND period = ?`),
		key.ProjectID, key.Alert, key.Period).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("check alert state: %w", err)
	}
	return n > 0, nil
}

// AlertOpen reports whether the alert of a project has a notified firing that is not resolved.
func (s *Store) AlertOpen(ctx context.Context, projectID, alert string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.rebind(`SELECT COUNT(*) FROM alert_notifications WHERE project_id = ? AND alert = ? AND resolved_at IS NULL`),
		projectID, alert).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("check alert state: %w", err)
	}
	return n > 0, nil
}

// RecordAlertResolved marks every notified, unresolved firing of the alert resolved and creates
// one notification for it (with its outbox messages). If nothing was open it writes nothing and
// returns created=false, so a resolution is recorded once however often it is reported.
func (s *Store) RecordAlertResolved(ctx context.Context, projectID, alert string, n Notification, out []OutboxMessage) (Notification, bool, error) {
	created := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var open int
		if err := tx.QueryRowContext(ctx, s.rebind(`SELECT COUNT(*) FROM alert_notifications WHERE project_id = ? AND alert = ? AND resolved_at IS NULL`),
			projectID, alert).Scan(&open); err != nil {
			return fmt.Errorf("check alert state: %w", err)
		}
		if open == 0 {
			return nil
		}
		var err error
		n, err = s.insertNotificationTx(ctx, tx, n)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.rebind(`UPDATE alert_notifications SET resolved_at = ?, resolved_notification_id = ?
			WHERE project_id = ? AND alert = ? AND resolved_at IS NULL`), n.CreatedAt, n.ID, projectID, alert); err != nil {
			return fmt.Errorf("update alert state: %w", err)
		}
		if err := s.insertOutboxTx(ctx, tx, n.ID, out); err != nil {
			return err
		}
		created = true
		return nil
	})
	if err != nil {
		return Notification{}, false, fmt.Errorf("record resolved alert %s of %s: %w", alert, projectID, err)
	}
	if !created {
		return Notification{}, false, nil
	}
	return n, true, nil
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
