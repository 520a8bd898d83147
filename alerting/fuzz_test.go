package alerting

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzRuleFile loads arbitrary rule files as the rule manager does (CheckFiles): no panic, and
// every refusal is a CheckError whose problems name the file. Seeds: the shipped rules and
// testdata/fuzz/FuzzRuleFile/.
func FuzzRuleFile(f *testing.F) {
	for _, n := range []string{"rules/budget.yml", "rules/anomaly.yml"} {
		b, err := shippedRules.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up ==\n"))
	f.Add([]byte("groups:\n- name: g\n  rules:\n  - record: r\n    expr: sum(x)\n    labels: {a: '{{ $value'}\n"))
	dir := f.TempDir()
	file := filepath.Join(dir, "rules.yml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		err := CheckFiles(file)
		if err == nil {
			return
		}
		var ce *CheckError
		if !errors.As(err, &ce) || len(ce.Problems) == 0 {
			t.Fatalf("error %v (%T) is not a CheckError with problems", err, err)
		}
		for _, p := range ce.Problems {
			if !strings.HasPrefix(p, file) {
				t.Fatalf("problem %q does not name the file", p)
			}
		}
	})
}
