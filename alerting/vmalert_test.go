package alerting

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cygni/usage/internal/storetest"
)

// The shipped rule files also load unchanged in vmalert (VictoriaMetrics' rule engine, for a
// deployment that evaluates them against VictoriaMetrics): `vmalert -dryRun` parses every group
// and expression with MetricsQL. It checks the files, not that both engines give the same
// alerts.
func TestShippedRulesLoadInVMAlert(t *testing.T) {
	bin := storetest.Binary(t, "vmalert")
	files, err := filepath.Glob(filepath.Join("rules", "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no shipped rule files: %v", err)
	}
	out, err := exec.Command(bin, "-dryRun", "-loggerLevel=ERROR", "-rule="+filepath.Join("rules", "*.yml")).CombinedOutput()
	if err != nil {
		t.Fatalf("vmalert -dryRun refused the shipped rules: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "error") {
		t.Errorf("vmalert -dryRun reported errors:\n%s", out)
	}
	// A broken file is refused, so the check above can fail.
	bad := filepath.Join(t.TempDir(), "bad.yml")
	if err := os.WriteFile(bad, []byte("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: sum(\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-dryRun", "-loggerLevel=ERROR", "-rule="+bad).CombinedOutput(); err == nil {
		t.Errorf("vmalert -dryRun accepted a broken rule file:\n%s", out)
	}
}
