package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The operator alerts pass `promtool check rules` and their unit tests `promtool test rules`.
func TestOperatorRulesWithPromtool(t *testing.T) {
	bin, err := exec.LookPath("promtool")
	if err != nil {
		if out, gerr := exec.Command("go", "env", "GOPATH").Output(); gerr == nil {
			p := filepath.Join(strings.TrimSpace(string(out)), "bin", "promtool")
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not installed (scripts/test.sh installs it)")
		}
		t.Skip("promtool is not installed; scripts/test.sh installs it")
	}
	for _, args := range [][]string{
		{"check", "rules", "prometheus/cygni-usage-operator.rules.yml"},
		{"test", "rules", "prometheus/tests/operator_test.yml"},
	} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
