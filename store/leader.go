package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
)

// Lease is a named leadership of this process (see TryLeader).
type Lease struct {
	name string
	key  int64
	conn *sql.Conn // nil on SQLite
}

// leaderKeySQL is the PostgreSQL advisory lock key of a leadership name. Advisory locks are
// database-wide, so the key includes the schema the store lives in: processes of one deployment
// share it, deployments (and tests) in other schemas of the same database do not contend.
const leaderKeySQL = "hashtextextended('cygni-leader:' || $1 || ':' || current_schema(), 0)"

// TryLeader takes the leadership called name (the Deriver's "deriver", the rule evaluation's
// "rules") without waiting, as TryBillingLeader does for billing: on PostgreSQL a session
// advisory lock held on one dedicated connection, so that processes sharing the database elect
// one leader per name and a crashed leader's lock goes with its connection; ok is false while
// another process holds it. SQLite is single-process: the lease is always granted.
func (s *Store) TryLeader(ctx context.Context, name string) (lease *Lease, ok bool, err error) {
	l := &Lease{name: name}
	if !s.postgres() {
		return l, true, nil
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("%s leadership: get a connection: %w", name, err)
	}
	if err := conn.QueryRowContext(ctx, "SELECT "+leaderKeySQL+", pg_try_advisory_lock("+leaderKeySQL+")", name).Scan(&l.key, &ok); err != nil {
		_ = conn.Close()
		return nil, false, fmt.Errorf("%s leadership: try the advisory lock: %w", name, err)
	}
	if !ok {
		_ = conn.Close()
		return nil, false, nil
	}
	l.conn = conn
	return l, true, nil
}

// Check reports whether the lease is still held (its connection answers).
func (l *Lease) Check(ctx context.Context) error {
	if l == nil || l.conn == nil {
		return nil
	}
	if err := l.conn.PingContext(ctx); err != nil {
		return fmt.Errorf("%s leadership lost: %w", l.name, err)
	}
	return nil
}

// Release gives the leadership up.
func (l *Lease) Release() {
	if l == nil || l.conn == nil {
		return
	}
	releaseAdvisoryLock(l.conn, l.key)
	l.conn = nil
}

// releaseAdvisoryLock unlocks a session-level advisory lock and gives the connection back. If the
// unlock fails, the connection is discarded instead of returned to the pool: closing the session
// is what releases the lock then (a pooled session would keep holding the leadership).
func releaseAdvisoryLock(conn *sql.Conn, key int64) {
	if _, err := conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock($1)", key); err != nil {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	_ = conn.Close() // a discarded or returned connection; there is nothing left to do on error
}
