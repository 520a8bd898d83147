package store

import (
	"context"
	"testing"

	"github.com/cygni/usage/internal/pgtest"
)

// opener opens a store of the backend under test; opts.Driver, DSN and DataDir are filled in.
type opener func(t testing.TB, opts Options) *Store

// backends runs fn once per backend with an open func that takes no options (see backendsWith).
func backends(t *testing.T, fn func(t *testing.T, open func(t testing.TB) *Store)) {
	t.Helper()
	backendsWith(t, func(t *testing.T, open opener) {
		fn(t, func(t testing.TB) *Store { return open(t, Options{}) })
	})
}

// backendsWith runs fn once per backend: SQLite in t.TempDir(), and PostgreSQL in a fresh schema
// (dropped afterwards) when CYGNI_TEST_POSTGRES_DSN (or the default local one) answers. When
// CI=true an unreachable PostgreSQL fails the test. Every store fn opens shares one database.
func backendsWith(t *testing.T, fn func(t *testing.T, open opener)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		fn(t, func(t testing.TB, opts Options) *Store {
			opts.Driver, opts.DataDir = DriverSQLite, dir
			return openForTest(t, opts)
		})
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := PostgresTestDSN(t)
		fn(t, func(t testing.TB, opts Options) *Store {
			opts.Driver, opts.DSN = DriverPostgres, dsn
			return openForTest(t, opts)
		})
	})
}

func openForTest(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), nil, opts)
	if err != nil {
		t.Fatalf("open %s store: %v", opts.Driver, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// PostgresTestDSN returns a DSN on a fresh schema, dropped in t.Cleanup; see pgtest.DSN.
func PostgresTestDSN(t testing.TB) string {
	t.Helper()
	return pgtest.DSN(t, "test")
}

func TestMigrations(t *testing.T) {
	backendsWith(t, func(t *testing.T, open opener) {
		s := open(t, Options{})
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
		s2 := open(t, Options{})
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

// TestConcurrentMigrations: replicas starting together on an empty database each see the full
// schema, and every migration is recorded once.
func TestConcurrentMigrations(t *testing.T) {
	backends(t, func(t *testing.T, open func(t testing.TB) *Store) {
		const n = 4
		stores := make([]*Store, n)
		done := make(chan int, n)
		for i := range n {
			go func() {
				defer func() { done <- i }()
				stores[i] = open(t)
			}()
		}
		for range n {
			<-done
		}
		want, err := migrations(map[bool]string{false: "sqlite", true: "postgres"}[stores[0].postgres()])
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range stores {
			vs, err := s.SchemaVersions(context.Background())
			if err != nil || len(vs) != len(want) {
				t.Fatalf("store %d: versions %v (%v), want %d", i, vs, err, len(want))
			}
		}
	})
}
