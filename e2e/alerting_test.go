package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// goodRules defines the budget alerts every rule set must have (alerting.required_alerts).
const goodRules = "groups:\n  - name: budget\n    rules:\n      - record: cygni:budget:sum\n        expr: sum(cygni_project_budget_usd)\n" +
	"      - alert: ProjectBudgetWarning\n        expr: cygni:budget:sum > 1e12\n      - alert: ProjectBudgetExceeded\n        expr: cygni:budget:sum > 1e13\n"

// check-rules validates rule files and exits non-zero naming file:line:col.
func TestCheckRulesCommand(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yml")
	bad := filepath.Join(dir, "bad.yml")
	writeFile(t, good, goodRules)
	writeFile(t, bad, "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: sum(rate(x[5m])\n")

	out, err := Run(t, time.Minute, nil, "check-rules", good)
	if err != nil || !strings.Contains(out, good+": OK") {
		t.Fatalf("check-rules good: %v\n%s", err, out)
	}
	out, err = Run(t, time.Minute, nil, "check-rules", good, bad)
	if err == nil || !strings.Contains(out, bad+":5:15: group \"g\", rule 1, \"A\"") {
		t.Fatalf("check-rules bad: %v\n%s", err, out)
	}
	shipped, _ := filepath.Glob("../alerting/rules/*.yml")
	out, err = Run(t, time.Minute, nil, append([]string{"check-rules"}, shipped...)...)
	if err != nil || len(shipped) < 2 {
		t.Fatalf("check-rules shipped %v: %v\n%s", shipped, err, out)
	}
}

// SIGHUP reloads the rule files without a restart; a broken file is rejected and the process
// keeps running the previous rules.
func TestSIGHUPReloadsRules(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yml"), goodRules)
	p := Start(t, ProcOptions{
		Args:   []string{"serve", "--only", "alerting"},
		Config: "alerting:\n  rule_files: [\"" + filepath.Join(dir, "*.yml") + "\"]\n",
	})
	waitLog(t, p, "rules loaded", 1)

	broken := filepath.Join(dir, "b.yml")
	writeFile(t, broken, "groups:\n  - name: b\n    rules:\n      - record: y\n        expr: rate(\n")
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, p, "rule reload rejected", 1)
	if !strings.Contains(p.Stderr(), broken+":5:") {
		t.Fatalf("the rejection does not name %s:5:\n%s", broken, p.Stderr())
	}

	writeFile(t, broken, strings.ReplaceAll(goodRules, "budget", "second"))
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, p, "rules loaded", 2)
	if last := lastLine(p.Stderr(), "rules loaded"); !strings.Contains(last, "files=2") || !strings.Contains(last, "groups=2") {
		t.Fatalf("after the fixed reload: %s", last)
	}
	p.Stop(10 * time.Second)
}

// A rule set that would switch budget alerting off stops the start with a message naming the
// problem: a pattern that matches no file, or files without the budget alerts.
func TestRuleSetRefusedAtStart(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "other.yml"), "groups:\n  - name: g\n    rules:\n      - record: x\n        expr: vector(1)\n")
	for _, tc := range []struct{ name, pattern, want string }{
		{"typo", filepath.Join(dir, "*.yaml"), "alerting.rule_files pattern \"" + filepath.Join(dir, "*.yaml") + "\" matches no file"},
		{"no budget alerts", filepath.Join(dir, "*.yml"), "no rule file defines the alert ProjectBudgetWarning, ProjectBudgetExceeded (alerting.required_alerts)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfgPath := filepath.Join(t.TempDir(), "c.yml")
			writeFile(t, cfgPath, "alerting:\n  rule_files: [\""+tc.pattern+"\"]\n")
			out, err := Run(t, time.Minute, nil, "--data-dir", t.TempDir(), "--listen", FreeAddr(t), "--config", cfgPath, "serve", "--only", "alerting")
			if err == nil || !strings.Contains(out, tc.want) {
				t.Fatalf("serve with %s: %v\n%s\nwant %q", tc.pattern, err, out, tc.want)
			}
		})
	}
}

func writeFile(t testing.TB, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitLog waits until stderr holds n lines containing msg.
func waitLog(t testing.TB, p *Proc, msg string, n int) {
	t.Helper()
	expired := timeout(30 * time.Second)
	for strings.Count(p.Stderr(), msg) < n {
		select {
		case <-p.done:
			t.Fatalf("process exited waiting for %q: %v\n%s", msg, p.err, tail(p.Stderr(), 4000))
		default:
		}
		if expired() {
			t.Fatalf("no %d× %q in stderr:\n%s", n, msg, tail(p.Stderr(), 4000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func lastLine(s, msg string) string {
	last := ""
	for line := range strings.SplitSeq(s, "\n") {
		if strings.Contains(line, msg) {
			last = line
		}
	}
	return last
}
