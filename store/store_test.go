package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// backends runs fn once per backend: SQLite in t.TempDir(), and PostgreSQL in a fresh schema
// (dropped afterwards) when CYGNI_TEST_POSTGRES_DSN (or the default local one) answers. When
// CI=true an unreachable PostgreSQL fails the test.
func backends(t *testing.T, fn func(t *testing.T, open func(t testing.TB) *Store)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		fn(t, func(t testing.TB) *Store { return openSQLiteForTest(t, dir) })
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := PostgresTestDSN(t)
		fn(t, func(t testing.TB) *Store {
			t.Helper()
			s, err := Open(context.Background(), nil, Options{Driver: DriverPostgres, DSN: dsn})
			if err != nil {
				t.Fatalf("open PostgreSQL store: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		})
	})
}

func openSQLiteForTest(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(context.Background(), nil, Options{Driver: DriverSQLite, DataDir: dir})
	if err != nil {
		t.Fatalf("open SQLite store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// PostgresTestDSN returns a DSN whose search_path is a fresh schema, dropped in t.Cleanup. It
// skips the test when PostgreSQL does not answer, or fails it when CI=true.
func PostgresTestDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv("CYGNI_TEST_POSTGRES_DSN")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open PostgreSQL: %v", err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL at %s is unreachable and CI=true: %v", base, err)
		}
		t.Skipf("PostgreSQL at %s is unreachable: %v", base, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "test_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", base, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func TestMigrations(t *testing.T) {
	backends(t, func(t *testing.T, open func(t testing.TB) *Store) {
		s := open(t)
		ctx := context.Background()
		vs, err := s.SchemaVersions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) == 0 || vs[0] != 1 {
			t.Fatalf("schema versions = %v, want 1 first", vs)
		}
		// Re-running on the same database applies nothing and keeps the data.
		if _, err := s.CreateTeam(ctx, Team{ID: "team_a", Name: "A"}); err != nil {
			t.Fatal(err)
		}
		s2 := open(t)
		vs2, err := s2.SchemaVersions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(vs2) != len(vs) {
			t.Fatalf("after re-run: versions %v, want %v", vs2, vs)
		}
		if _, err := s2.GetTeam(ctx, "team_a"); err != nil {
			t.Fatalf("team lost on re-run: %v", err)
		}
		if err := s.migrate(ctx); err != nil {
			t.Fatalf("migrate again: %v", err)
		}
	})
}

func TestSmoke(t *testing.T) {
	backends(t, func(t *testing.T, open func(t testing.TB) *Store) {
		s := open(t)
		ctx := context.Background()
		if _, err := s.CreateTeam(ctx, Team{ID: "team_a", Name: "A"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateTeam(ctx, Team{ID: "team_a", Name: "A"}); !errors.Is(err, ErrConflict) {
			t.Fatalf("duplicate team: %v", err)
		}
		p, err := s.CreateProject(ctx, Project{ID: "proj_001", TeamID: "team_a"})
		if err != nil {
			t.Fatal(err)
		}
		_ = p
		tok, _, err := s.CreateToken(ctx, "team_a", "admin", "x")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.VerifyToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		n, err := s.CreateNotification(ctx, Notification{TeamID: "team_a", Type: "budget_warning", Payload: map[string]any{"a": 1}})
		if err != nil {
			t.Fatal(err)
		}
		page, err := s.ListNotifications(ctx, "team_a", NotificationQuery{})
		if err != nil || len(page.Items) != 1 || page.UnreadCount != 1 {
			t.Fatalf("page %+v, %v", page, err)
		}
		if _, err := s.MarkNotificationRead(ctx, "team_a", n.ID); err != nil {
			t.Fatal(err)
		}
	})
}
