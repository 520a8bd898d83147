package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Notification limits.
const (
	DefaultNotificationLimit = 20
	MaxNotificationLimit     = 100
)

// NotificationQuery selects a page of a team's notifications.
type NotificationQuery struct {
	Limit      int    // 1..MaxNotificationLimit; 0 means DefaultNotificationLimit
	Cursor     string // NextCursor of the previous page; "" for the first
	UnreadOnly bool   // only notifications not read yet
	ReadOnly   bool   // only notifications already read (not with UnreadOnly)
}

// NotificationPage is one page, newest first.
type NotificationPage struct {
	Items       []Notification
	NextCursor  string // "" on the last page
	UnreadCount int    // the team's unread notifications in total
}

// ErrBadCursor: the cursor was not made by ListNotifications.
var ErrBadCursor = errors.New("malformed cursor")

// CreateNotification stores a notification. An empty ID gets a fresh "ntf_…" id (callers that
// need idempotency pass a deterministic one: an existing ID is ErrConflict); a zero CreatedAt is
// now; an empty severity is "info".
func (s *Store) CreateNotification(ctx context.Context, n Notification) (Notification, error) {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		n, err = s.insertNotificationTx(ctx, tx, n)
		return err
	})
	return n, err
}

// insertNotificationTx validates n, fills its defaults (as CreateNotification says) and inserts
// it inside tx, so that callers can store it together with rows of their own (the alerting
// dedup row and outbox).
func (s *Store) insertNotificationTx(ctx context.Context, tx *sql.Tx, n Notification) (Notification, error) {
	if n.ID == "" {
		n.ID = newID(PrefixNotification)
	}
	if err := CheckID(PrefixNotification, n.ID); err != nil {
		return Notification{}, fmt.Errorf("create notification: %w", err)
	}
	if n.Type == "" {
		return Notification{}, fmt.Errorf("create notification: the type is empty")
	}
	if n.Severity == "" {
		n.Severity = "info"
	}
	if n.Severity != "info" && n.Severity != "warning" && n.Severity != "critical" {
		return Notification{}, fmt.Errorf("create notification: severity %q; want info, warning or critical", n.Severity)
	}
	if n.CreatedAt.IsZero() {
		n.CreatedAt = s.now()
	}
	n.CreatedAt = n.CreatedAt.UTC().Truncate(time.Microsecond)
	if n.Payload == nil {
		n.Payload = map[string]any{}
	}
	payload, err := json.Marshal(n.Payload)
	if err != nil {
		return Notification{}, fmt.Errorf("create notification: encode the payload: %w", err)
	}
	n.ReadAt = nil
	_, err = tx.ExecContext(ctx, s.rebind(`INSERT INTO notifications (id, team_id, project_id, type, severity, message, payload, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`), n.ID, n.TeamID, n.ProjectID, n.Type, n.Severity, n.Message, string(payload), n.CreatedAt)
	switch {
	case isUniqueViolation(err):
		return Notification{}, fmt.Errorf("create notification %s: %w", n.ID, ErrConflict)
	case isForeignKeyViolation(err):
		return Notification{}, fmt.Errorf("create notification: team %s: %w", n.TeamID, ErrNotFound)
	case err != nil:
		return Notification{}, fmt.Errorf("create notification: %w", err)
	}
	return n, nil
}

const notificationColumns = "seq, id, team_id, project_id, type, severity, message, payload, created_at, read_at"

func scanNotification(sc interface{ Scan(...any) error }) (Notification, int64, error) {
	var n Notification
	var seq int64
	var payload string
	var read sql.NullTime
	if err := sc.Scan(&seq, &n.ID, &n.TeamID, &n.ProjectID, &n.Type, &n.Severity, &n.Message, &payload, &n.CreatedAt, &read); err != nil {
		return Notification{}, 0, err
	}
	n.CreatedAt = n.CreatedAt.UTC()
	if read.Valid {
		r := read.Time.UTC()
		n.ReadAt = &r
	}
	if err := json.Unmarshal([]byte(payload), &n.Payload); err != nil {
		return Notification{}, 0, fmt.Errorf("decode the payload of notification %s: %w", n.ID, err)
	}
	return n, seq, nil
}

// encodeCursor makes an opaque cursor from the last sequence number of a page: sealed for the
// team (opaque.go), so that it reveals nothing of the global sequence.
func (s *Store) encodeCursor(teamID string, seq int64) string {
	return sealID(s.opaque, opaqueCursor, teamID, seq)
}

func (s *Store) decodeCursor(teamID, c string) (int64, error) {
	seq, ok := openID(s.opaque, opaqueCursor, teamID, c)
	if !ok {
		return 0, ErrBadCursor
	}
	return seq, nil
}

// ListNotifications returns a page of a team's notifications, newest first. The cursor is
// stable: notifications created after the first page do not shift later pages. A cursor not
// made here is ErrBadCursor, a limit outside 0..MaxNotificationLimit an error.
func (s *Store) ListNotifications(ctx context.Context, teamID string, q NotificationQuery) (NotificationPage, error) {
	if q.Limit == 0 {
		q.Limit = DefaultNotificationLimit
	}
	if q.Limit < 1 || q.Limit > MaxNotificationLimit {
		return NotificationPage{}, fmt.Errorf("list notifications: limit %d is outside 1..%d", q.Limit, MaxNotificationLimit)
	}
	query := "SELECT " + notificationColumns + " FROM notifications WHERE team_id = ?"
	args := []any{teamID}
	switch {
	case q.UnreadOnly && q.ReadOnly:
		return NotificationPage{}, fmt.Errorf("list notifications: both unread-only and read-only")
	case q.UnreadOnly:
		query += " AND read_at IS NULL"
	case q.ReadOnly:
		query += " AND read_at IS NOT NULL"
	}
	if q.Cursor != "" {
		seq, err := s.decodeCursor(teamID, q.Cursor)
		if err != nil {
			return NotificationPage{}, fmt.Errorf("list notifications: %w", err)
		}
		query += " AND seq < ?"
		args = append(args, seq)
	}
	query += " ORDER BY seq DESC LIMIT ?"
	args = append(args, q.Limit+1)

	var page NotificationPage
	rows, err := s.db.QueryContext(ctx, s.rebind(query), args...)
	if err != nil {
		return NotificationPage{}, fmt.Errorf("list notifications: %w", err)
	}
	defer rows.Close()
	var lastSeq int64
	for rows.Next() {
		n, seq, err := scanNotification(rows)
		if err != nil {
			return NotificationPage{}, fmt.Errorf("list notifications: %w", err)
		}
		if len(page.Items) == q.Limit {
			page.NextCursor = s.encodeCursor(teamID, lastSeq)
			break
		}
		page.Items = append(page.Items, n)
		lastSeq = seq
	}
	if err := rows.Err(); err != nil {
		return NotificationPage{}, fmt.Errorf("list notifications: %w", err)
	}
	rows.Close()
	if err := s.db.QueryRowContext(ctx, s.rebind("SELECT COUNT(*) FROM notifications WHERE team_id = ? AND read_at IS NULL"), teamID).Scan(&page.UnreadCount); err != nil {
		return NotificationPage{}, fmt.Errorf("count unread notifications: %w", err)
	}
	return page, nil
}

// MarkNotificationRead marks a team's notification read and returns it. Marking it again keeps
// the first read time. Another team's notification is ErrNotFound.
func (s *Store) MarkNotificationRead(ctx context.Context, teamID, id string) (Notification, error) {
	var n Notification
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.rebind("UPDATE notifications SET read_at = ? WHERE id = ? AND team_id = ? AND read_at IS NULL"),
			s.now(), id, teamID); err != nil {
			return err
		}
		var err error
		n, _, err = scanNotification(tx.QueryRowContext(ctx, s.rebind("SELECT "+notificationColumns+" FROM notifications WHERE id = ? AND team_id = ?"), id, teamID))
		return notFound(err)
	})
	if err != nil {
		return Notification{}, fmt.Errorf("mark notification %s read: %w", id, err)
	}
	return n, nil
}
