package store_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/cygni/usage/store"
)

// The SQLite database and its directory are private to the service's user, also when they
// existed before with looser modes.
func TestSQLiteFilesArePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	check := func() {
		t.Helper()
		st, err := store.Open(context.Background(), nil, store.Options{DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o700 {
			t.Errorf("data directory mode %o, want 700", m)
		}
		for _, name := range []string{"cygni.db", "cygni.db-wal", "cygni.db-shm"} {
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				if name == "cygni.db" {
					t.Fatal(err)
				}
				continue
			}
			if m := fi.Mode().Perm(); m&0o077 != 0 {
				t.Errorf("%s mode %o, want no group or other access", name, m)
			}
		}
		_ = st.Close()
	}
	check()
	if err := os.Chmod(filepath.Join(dir, "cygni.db"), 0o644); err != nil {
		t.Fatal(err)
	}
	check()
}
