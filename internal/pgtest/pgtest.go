// Package pgtest gives tests a PostgreSQL database of their own: a fresh schema on the server
// named by CYGNI_TEST_POSTGRES_DSN (default the dev and CI machines' 127.0.0.1:5432, database
// test), dropped when the test ends. With CI=true an unreachable server fails the test instead
// of skipping it, so CI can never pass without exercising PostgreSQL.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the pgx database/sql driver
)

// DefaultDSN is used when CYGNI_TEST_POSTGRES_DSN is not set.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// DSN returns a DSN whose search_path is a fresh schema named prefix_<random>, dropped in
// t.Cleanup. It skips the test when PostgreSQL does not answer (fails it when CI=true).
func DSN(t testing.TB, prefix string) string {
	t.Helper()
	dsn, ok := TryDSN(t, prefix)
	if !ok {
		t.Skip("PostgreSQL is unreachable")
	}
	return dsn
}

// TryDSN is DSN for tests that go on without PostgreSQL: it returns false (and logs why) when
// the server does not answer, and fails the test when CI=true.
func TryDSN(t testing.TB, prefix string) (string, bool) {
	t.Helper()
	base := os.Getenv("CYGNI_TEST_POSTGRES_DSN")
	if base == "" {
		base = DefaultDSN
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse CYGNI_TEST_POSTGRES_DSN %q: %v", base, err)
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
		t.Logf("PostgreSQL at %s is unreachable: %v", base, err)
		return "", false
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := prefix + "_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), true
}
