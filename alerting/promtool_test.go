package alerting

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// promtool finds the promtool binary (installed by scripts/test.sh): on PATH or in GOPATH/bin.
// Missing, the test is skipped, or fails under CI=true.
func promtool(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", "promtool")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("promtool is not installed (go install github.com/prometheus/prometheus/cmd/promtool@v0.316.0)")
	}
	t.Skip("promtool is not installed; scripts/test.sh installs it")
	return ""
}

// The shipped rule files pass `promtool check rules`, and their unit tests (each alert firing
// and not firing) pass `promtool test rules`.
func TestShippedRulesWithPromtool(t *testing.T) {
	bin := promtool(t)
	rules, _ := filepath.Glob("rules/*.yml")
	tests, _ := filepath.Glob("rules/tests/*.yml")
	if len(rules) < 2 || len(tests) < 2 {
		t.Fatalf("rule files %v, tests %v", rules, tests)
	}
	for _, args := range [][]string{
		append([]string{"check", "rules"}, rules...),
		append([]string{"test", "rules"}, tests...),
	} {
		t.Run(strings.Join(args[:2], " "), func(t *testing.T) {
			out, err := exec.Command(bin, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
}
