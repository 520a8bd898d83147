package plugin_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"gopkg.in/yaml.v3"
)

// grafanaRule is one rule of deploy/grafana/provisioning/alerting/cygni.yml.
type grafanaRule struct {
	Title     string
	Condition string
	Data      []struct {
		RefID         string `yaml:"refId"`
		DatasourceUID string `yaml:"datasourceUid"`
		Model         map[string]any
	}
}

func provisionedRules(t testing.TB) []grafanaRule {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "grafana", "provisioning", "alerting", "cygni.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var prov struct {
		Groups []struct{ Rules []grafanaRule }
	}
	if err := yaml.Unmarshal(raw, &prov); err != nil {
		t.Fatal(err)
	}
	var out []grafanaRule
	for _, g := range prov.Groups {
		out = append(out, g.Rules...)
	}
	if len(out) == 0 {
		t.Fatal("no provisioned Grafana rules")
	}
	return out
}

// evalRule evaluates a provisioned Grafana rule the way Grafana does: its data-source queries
// through the plugin as an alert query (FromAlert) at instant at, then its math expressions,
// joined on label sets. It returns the label sets for which the condition is true.
func evalRule(t testing.TB, plug *pluginClient, pc backend.PluginContext, r grafanaRule, at time.Time) []string {
	t.Helper()
	vars := map[string]mathValue{}
	for _, q := range r.Data {
		if q.DatasourceUID == "__expr__" {
			expr, _ := q.Model["expression"].(string)
			v, err := evalMath(expr, vars)
			if err != nil {
				t.Fatalf("%s: %s: %v", r.Title, expr, err)
			}
			vars[q.RefID] = v
			continue
		}
		res := plug.query(t, pc, request{from: at.Add(-10 * time.Minute), to: at, fromAlert: true}, q.Model)
		if res.Error != nil {
			t.Fatalf("%s: query %s: %v", r.Title, q.RefID, res.Error)
		}
		vars[q.RefID] = mathValue{series: alertValues(t, res.Frames)}
	}
	var firing []string
	for k, v := range vars[r.Condition].series {
		if v != 0 {
			firing = append(firing, k)
		}
	}
	slices.Sort(firing)
	return firing
}

// mathValue is a value of a Grafana math expression: a number, or one number per label set.
type mathValue struct {
	scalar *float64
	series map[string]float64
}

// evalMath evaluates the subset of Grafana's math expressions the provisioned rules use:
// $refs, numbers, parentheses, ! and the binary operators * / + - > >= < <= == != && ||, with
// Grafana's precedence; two series combine on equal label sets.
func evalMath(expr string, vars map[string]mathValue) (mathValue, error) {
	p := &mathParser{toks: mathTokens(expr), vars: vars}
	v, err := p.binary(0)
	if err == nil && p.pos != len(p.toks) {
		err = fmt.Errorf("unexpected %q", p.toks[p.pos])
	}
	return v, err
}

func mathTokens(s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ':
			i++
		case strings.ContainsRune("()*/+-!<>=&|", rune(c)):
			if i+1 < len(s) && slices.Contains([]string{">=", "<=", "==", "!=", "&&", "||"}, s[i:i+2]) {
				toks, i = append(toks, s[i:i+2]), i+2
			} else {
				toks, i = append(toks, s[i:i+1]), i+1
			}
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" ()*/+-!<>=&|", rune(s[j])) {
				j++
			}
			toks, i = append(toks, s[i:j]), j
		}
	}
	return toks
}

type mathParser struct {
	toks []string
	pos  int
	vars map[string]mathValue
}

var mathPrecedence = [][]string{{"||"}, {"&&"}, {"==", "!=", ">", ">=", "<", "<="}, {"+", "-"}, {"*", "/"}}

func (p *mathParser) binary(level int) (mathValue, error) {
	if level == len(mathPrecedence) {
		return p.unary()
	}
	l, err := p.binary(level + 1)
	for err == nil && p.pos < len(p.toks) && slices.Contains(mathPrecedence[level], p.toks[p.pos]) {
		op := p.toks[p.pos]
		p.pos++
		var r mathValue
		if r, err = p.binary(level + 1); err == nil {
			l = combine(l, r, op)
		}
	}
	return l, err
}

func (p *mathParser) unary() (mathValue, error) {
	if p.pos >= len(p.toks) {
		return mathValue{}, fmt.Errorf("unexpected end")
	}
	tok := p.toks[p.pos]
	p.pos++
	switch {
	case tok == "!":
		v, err := p.unary()
		zero := 0.0
		return combine(v, mathValue{scalar: &zero}, "=="), err
	case tok == "(":
		v, err := p.binary(0)
		if err == nil && (p.pos >= len(p.toks) || p.toks[p.pos] != ")") {
			return v, fmt.Errorf("missing )")
		}
		p.pos++
		return v, err
	case strings.HasPrefix(tok, "$"):
		v, ok := p.vars[tok[1:]]
		if !ok {
			return v, fmt.Errorf("%s is not defined", tok)
		}
		return v, nil
	}
	f, err := strconv.ParseFloat(tok, 64)
	return mathValue{scalar: &f}, err
}

func combine(l, r mathValue, op string) mathValue {
	apply := func(a, b float64) float64 {
		truth := func(c bool) float64 {
			if c {
				return 1
			}
			return 0
		}
		switch op {
		case "*":
			return a * b
		case "/":
			return a / b
		case "+":
			return a + b
		case "-":
			return a - b
		case ">":
			return truth(a > b)
		case ">=":
			return truth(a >= b)
		case "<":
			return truth(a < b)
		case "<=":
			return truth(a <= b)
		case "==":
			return truth(a == b)
		case "!=":
			return truth(a != b)
		case "&&":
			return truth(a != 0 && b != 0)
		case "||":
			return truth(a != 0 || b != 0)
		}
		panic("operator " + op)
	}
	switch {
	case l.scalar != nil && r.scalar != nil:
		v := apply(*l.scalar, *r.scalar)
		return mathValue{scalar: &v}
	case l.scalar != nil:
		out := map[string]float64{}
		for k, v := range r.series {
			out[k] = apply(*l.scalar, v)
		}
		return mathValue{series: out}
	case r.scalar != nil:
		out := map[string]float64{}
		for k, v := range l.series {
			out[k] = apply(v, *r.scalar)
		}
		return mathValue{series: out}
	}
	out := map[string]float64{}
	for k, v := range l.series {
		if w, ok := r.series[k]; ok {
			out[k] = apply(v, w)
		}
	}
	return mathValue{series: out}
}

func TestEvalMath(t *testing.T) {
	vars := map[string]mathValue{
		"A": {series: map[string]float64{"p1": 5, "p2": 1, "p3": 2}},
		"B": {series: map[string]float64{"p1": 1, "p2": 1}},
	}
	for _, tc := range []struct {
		expr string
		want string
	}{
		{"$A >= 2", "map[p1:1 p2:0 p3:1]"},
		{"$A > 3 * $B && $B > 0", "map[p1:1 p2:0]"},
		{"!($A >= 2)", "map[p1:0 p2:1 p3:0]"},
		{"$A - $B * 2", "map[p1:3 p2:-1]"},
		{"$A > $B || $A >= 2", "map[p1:1 p2:0]"},
	} {
		v, err := evalMath(tc.expr, vars)
		if err != nil || fmt.Sprint(v.series) != tc.want {
			t.Errorf("%s = %v (%v), want %s", tc.expr, v.series, err, tc.want)
		}
	}
	if _, err := evalMath("$A >= ", vars); err == nil {
		t.Error("an incomplete expression evaluates")
	}
}
