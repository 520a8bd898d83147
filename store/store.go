package store

import (
	"context"
	"crypto/cipher"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"modernc.org/sqlite"               // database/sql driver "sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Drivers.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Options configure Open.
type Options struct {
	// Driver is DriverSQLite (default) or DriverPostgres.
	Driver string
	// DSN is the PostgreSQL connection string, or the SQLite file path; for SQLite an empty DSN
	// means DataDir/cygni.db.
	DSN string
	// DataDir holds the SQLite file when DSN is empty.
	DataDir string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Store is the metadata store. It is safe for concurrent use by many goroutines and, on SQLite,
// by several processes on the same file (the server and the admin CLI).
//
// Notes for code in package store (billing, alerting):
//   - s.db is the *sql.DB. Write queries with `?` placeholders and pass them through s.rebind,
//     which turns them into $1, $2, … on PostgreSQL.
//   - s.inTx(ctx, fn) runs fn in a transaction that is a writer from its first statement
//     (BEGIN IMMEDIATE on SQLite, serialised in-process), commits on nil and rolls back on error.
//     Inside fn use only tx, never s.db.
//   - s.now() is the injected clock, in UTC, truncated to microseconds (PostgreSQL's precision).
//   - s.postgres() tells the dialects apart when SQL must differ.
//   - Timestamps: column type TIMESTAMP (SQLite) / TIMESTAMPTZ (PostgreSQL), written as UTC
//     time.Time, scanned into time.Time or sql.NullTime. Money: TEXT (SQLite) / NUMERIC
//     (PostgreSQL), written as decimal.Decimal, scanned into decimal.Decimal/NullDecimal.
//   - Migrations are files migrations/<dialect>/NNNN_name.sql: store 0001-0099, billing
//     0100-0199, alerting 0200-0299. Both dialects need a file with the same number.
//   - Map unique violations with isUniqueViolation(err) → ErrConflict, no rows → ErrNotFound.
type Store struct {
	db      *sql.DB
	driver  string
	logger  *slog.Logger
	nowFunc func() time.Time
	// writeMu serialises write transactions of this process on SQLite, so that they queue in Go
	// instead of polling SQLite's busy handler; other processes are covered by busy_timeout.
	writeMu sync.Mutex
	// opaque seals the sequence numbers the API shows (opaque.go).
	opaque cipher.Block
}

// sqliteBusyTimeout is how long a SQLite writer waits for another one (another process).
const sqliteBusyTimeout = 10 * time.Second

// Open opens the store and applies the pending migrations.
func Open(ctx context.Context, logger *slog.Logger, opts Options) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.Driver == "" {
		opts.Driver = DriverSQLite
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Store{driver: opts.Driver, logger: logger.With("component", "store"), nowFunc: opts.Now}
	var err error
	switch opts.Driver {
	case DriverSQLite:
		s.db, err = openSQLite(opts)
	case DriverPostgres:
		if opts.DSN == "" {
			return nil, errors.New("open PostgreSQL store: the DSN is empty")
		}
		s.db, err = sql.Open("pgx", opts.DSN)
		if err == nil {
			s.db.SetMaxOpenConns(16)
			s.db.SetMaxIdleConns(4)
			s.db.SetConnMaxIdleTime(5 * time.Minute)
		}
	default:
		return nil, fmt.Errorf("open store: driver %q; want sqlite or postgres", opts.Driver)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s store: %w", opts.Driver, err)
	}
	if err := s.ping(ctx); err != nil {
		_ = s.db.Close()
		return nil, fmt.Errorf("connect to the %s store: %w", opts.Driver, err)
	}
	if err := s.migrate(ctx); err != nil {
		_ = s.db.Close()
		return nil, err
	}
	if err := s.loadOpaqueKey(ctx); err != nil {
		_ = s.db.Close()
		return nil, err
	}
	return s, nil
}

// ping opens the first connection. On SQLite it retries while the database is busy: a
// connection's first statements (the journal mode among its pragmas) can be refused at once,
// without the busy handler, while another process or connection creates or migrates the same
// new database; they are retried for up to sqliteBusyTimeout.
func (s *Store) ping(ctx context.Context) error {
	deadline := time.Now().Add(sqliteBusyTimeout)
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 250*time.Millisecond) {
		err := s.db.PingContext(ctx)
		if err == nil || s.driver != DriverSQLite || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// isBusy reports whether err is SQLite's SQLITE_BUSY (any extended code).
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

func openSQLite(opts Options) (*sql.DB, error) {
	path := opts.DSN
	if path == "" {
		if opts.DataDir == "" {
			return nil, errors.New("neither a DSN nor a data directory is set")
		}
		if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("create the data directory: %w", err)
		}
		path = filepath.Join(opts.DataDir, "cygni.db")
		if err := privateDBFiles(path); err != nil {
			return nil, err
		}
	}
	q := url.Values{}
	q.Set("_time_format", "sqlite")
	q.Set("_txlock", "immediate")
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(sqliteBusyTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Add("_pragma", "synchronous(NORMAL)")
	dsn := path
	if strings.Contains(path, "?") {
		dsn += "&" + q.Encode()
	} else {
		dsn = "file:" + path + "?" + q.Encode()
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	// Readers run in parallel under WAL; writers are serialised by writeMu and BEGIN IMMEDIATE.
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(0)
	return db, nil
}

// privateDBFiles makes the SQLite database at path readable by its owner only: it creates an
// empty (valid) database file with mode 0600, or narrows an existing one and its WAL and
// shared-memory files to 0600 (SQLite gives those the main file's mode).
func privateDBFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open the database file: %w", err)
	}
	_ = f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		if fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, 0o600); err != nil {
				return fmt.Errorf("make %s private: %w", p, err)
			}
		}
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Driver reports DriverSQLite or DriverPostgres.
func (s *Store) Driver() string { return s.driver }

// Ping checks that the database answers (for readiness).
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

func (s *Store) postgres() bool { return s.driver == DriverPostgres }

// now is the injected clock in UTC at PostgreSQL's microsecond precision, so that both
// backends return the same values.
func (s *Store) now() time.Time { return s.nowFunc().UTC().Truncate(time.Microsecond) }

// rebind turns `?` placeholders into `$1, $2, …` on PostgreSQL. Queries must not contain a
// literal '?' inside strings.
func (s *Store) rebind(query string) string {
	if !s.postgres() {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// exec runs a rebound statement outside a transaction.
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if !s.postgres() {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
	}
	return s.db.ExecContext(ctx, s.rebind(query), args...)
}

// inTx runs fn in a write transaction: committed when fn returns nil, rolled back otherwise.
// fn must use tx only (and rebind its queries).
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if !s.postgres() {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}

// isUniqueViolation reports whether err is a unique or primary key violation.
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// isForeignKeyViolation reports whether err is a foreign key violation.
func isForeignKeyViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}

// notFound maps sql.ErrNoRows to ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}
