package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// parseTestdata parses testdata/file. With wantErr set the parse must fail with an error
// containing it, and parseTestdata returns nil; otherwise it must succeed.
func parseTestdata(t *testing.T, file, wantErr string) *Config {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(b)
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("error = %v, want one containing %q", err, wantErr)
		}
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}
