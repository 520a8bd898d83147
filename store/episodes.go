package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Reasons an alert episode ended (AlertEpisode.EndReason).
const (
	EndResolved     = "resolved"      // the condition cleared; a resolution was notified
	EndLimitChanged = "limit_changed" // still firing under another budget limit: a new episode began
	EndNewPeriod    = "new_period"    // still firing in a new billing period: a new episode began
)

// AlertEpisode is one stretch of an alert firing for a project within one billing period under
// one budget limit. It has exactly one firing notification and at most one resolution.
type AlertEpisode struct {
	ID        int64
	ProjectID string
	TeamID    string
	Alert     string // the alert's identity: its name plus labels other than project and severity
	AlertName string
	Type      string // the notification type of the firing notification
	Severity  string
	Period    string // the billing period's first day, "2006-01-02"
	Limit     string // the budget limit in force when it began, a decimal string; "" when unknown
	StartedAt time.Time
	// NotificationID is the firing notification.
	NotificationID string
	// ClearSince is when the open episode's alert was first seen not firing; nil while it fires.
	ClearSince *time.Time
	EndedAt    *time.Time
	EndReason  string // EndResolved, EndLimitChanged, EndNewPeriod; "" while open
	// ResolvedNotificationID is the resolution's notification ("" unless EndResolved).
	ResolvedNotificationID string
}

const episodeColumns = `id, project_id, team_id, alert, alert_name, type, severity, period, limit_usd, started_at,
	notification_id, clear_since, ended_at, end_reason, resolved_notification_id`

func scanEpisode(sc interface{ Scan(...any) error }) (AlertEpisode, error) {
	var e AlertEpisode
	var clear, ended sql.NullTime
	if err := sc.Scan(&e.ID, &e.ProjectID, &e.TeamID, &e.Alert, &e.AlertName, &e.Type, &e.Severity, &e.Period, &e.Limit,
		&e.StartedAt, &e.NotificationID, &clear, &ended, &e.EndReason, &e.ResolvedNotificationID); err != nil {
		return AlertEpisode{}, err
	}
	e.StartedAt = e.StartedAt.UTC()
	if clear.Valid {
		t := clear.Time.UTC()
		e.ClearSince = &t
	}
	if ended.Valid {
		t := ended.Time.UTC()
		e.EndedAt = &t
	}
	return e, nil
}

func (s *Store) queryEpisodes(ctx context.Context, where string, args ...any) ([]AlertEpisode, error) {
	rows, err := s.db.QueryContext(ctx, s.rebind("SELECT "+episodeColumns+" FROM alert_episodes WHERE "+where+" ORDER BY id"), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AlertEpisode
	for rows.Next() {
		e, err := scanEpisode(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// OpenAlertEpisodes lists every open episode, oldest first.
func (s *Store) OpenAlertEpisodes(ctx context.Context) ([]AlertEpisode, error) {
	eps, err := s.queryEpisodes(ctx, "ended_at IS NULL")
	if err != nil {
		return nil, fmt.Errorf("list open alert episodes: %w", err)
	}
	return eps, nil
}

// AlertEpisodes lists a project's episodes, open and ended, oldest first (diagnostics, tests).
func (s *Store) AlertEpisodes(ctx context.Context, projectID string) ([]AlertEpisode, error) {
	eps, err := s.queryEpisodes(ctx, "project_id = ?", projectID)
	if err != nil {
		return nil, fmt.Errorf("list alert episodes of %s: %w", projectID, err)
	}
	return eps, nil
}

// errEpisodeRace: another replica made the same transition first.
var errEpisodeRace = errors.New("alert episode changed concurrently")

// StartAlertEpisode opens ep with its firing notification n and queues n's outbox messages, in
// one transaction. If supersede is not 0 that open episode ends first with reason (the alert
// fires on under another limit or in another period). It returns created=false and writes
// nothing when the (project, alert) already has another open episode or supersede is no longer
// open: another replica made the transition.
func (s *Store) StartAlertEpisode(ctx context.Context, ep AlertEpisode, supersede int64, reason string, n Notification, out []OutboxMessage) (AlertEpisode, bool, error) {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if supersede != 0 {
			res, err := tx.ExecContext(ctx, s.rebind(`UPDATE alert_episodes SET ended_at = ?, end_reason = ?
				WHERE id = ? AND ended_at IS NULL`), ep.StartedAt, reason, supersede)
			if err != nil {
				return fmt.Errorf("end episode %d: %w", supersede, err)
			}
			if k, _ := res.RowsAffected(); k != 1 {
				return errEpisodeRace
			}
		}
		var err error
		n, err = s.insertNotificationTx(ctx, tx, n)
		if err != nil {
			return err
		}
		ep.NotificationID, ep.TeamID = n.ID, n.TeamID
		q := `INSERT INTO alert_episodes (project_id, team_id, alert, alert_name, type, severity, period, limit_usd, started_at, notification_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
		args := []any{ep.ProjectID, ep.TeamID, ep.Alert, ep.AlertName, ep.Type, ep.Severity, ep.Period, ep.Limit, ep.StartedAt, ep.NotificationID}
		if s.postgres() {
			err = tx.QueryRowContext(ctx, s.rebind(q+" RETURNING id"), args...).Scan(&ep.ID)
		} else {
			var res sql.Result
			if res, err = tx.ExecContext(ctx, q, args...); err == nil {
				ep.ID, err = res.LastInsertId()
			}
		}
		if isUniqueViolation(err) {
			return errEpisodeRace
		}
		if err != nil {
			return fmt.Errorf("insert alert episode: %w", err)
		}
		return s.insertOutboxTx(ctx, tx, n.ID, out)
	})
	if errors.Is(err, errEpisodeRace) {
		return AlertEpisode{}, false, nil
	}
	if err != nil {
		return AlertEpisode{}, false, fmt.Errorf("start episode of %s for %s: %w", ep.Alert, ep.ProjectID, err)
	}
	ep.StartedAt = ep.StartedAt.UTC()
	return ep, true, nil
}

// SetAlertEpisodeClear records when an open episode's alert was first seen not firing (nil: it
// fires again) and, when limit is not "", adopts that limit (an episode whose limit was
// unknown).
func (s *Store) SetAlertEpisodeClear(ctx context.Context, id int64, since *time.Time, limit string) error {
	var arg any
	if since != nil {
		arg = since.UTC()
	}
	q, args := `UPDATE alert_episodes SET clear_since = ? WHERE id = ? AND ended_at IS NULL`, []any{arg, id}
	if limit != "" {
		q, args = `UPDATE alert_episodes SET clear_since = ?, limit_usd = ? WHERE id = ? AND ended_at IS NULL`, []any{arg, limit, id}
	}
	if _, err := s.exec(ctx, q, args...); err != nil {
		return fmt.Errorf("update alert episode %d: %w", id, err)
	}
	return nil
}

// ResolveAlertEpisode ends an open episode as resolved at `at`, with the resolution's
// notification n and its outbox messages, in one transaction. It returns false and writes
// nothing when the episode is no longer open.
func (s *Store) ResolveAlertEpisode(ctx context.Context, id int64, at time.Time, n Notification, out []OutboxMessage) (bool, error) {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		n, err = s.insertNotificationTx(ctx, tx, n)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.rebind(`UPDATE alert_episodes SET ended_at = ?, end_reason = ?, resolved_notification_id = ?
			WHERE id = ? AND ended_at IS NULL`), at.UTC(), EndResolved, n.ID, id)
		if err != nil {
			return fmt.Errorf("end episode: %w", err)
		}
		if k, _ := res.RowsAffected(); k != 1 {
			return errEpisodeRace
		}
		return s.insertOutboxTx(ctx, tx, n.ID, out)
	})
	if errors.Is(err, errEpisodeRace) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("resolve alert episode %d: %w", id, err)
	}
	return true, nil
}
