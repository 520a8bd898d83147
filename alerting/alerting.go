// Package alerting evaluates Prometheus rule files against the embedded TSDB and turns firing
// budget alerts into notifications, e-mails and webhooks.
//
// The stage: Prometheus' own rule manager (prometheus/rules) evaluates the configured rule files
// every evaluation interval; recording rules are written back to the TSDB. Alerts go to the
// Notifier (a rules.NotifyFunc), which keeps these invariants:
//   - a firing alert becomes exactly one notification per (project, alert, billing period): the
//     dedup row and the notification are written in one transaction of the metadata store, so a
//     restart neither repeats nor loses one;
//   - its e-mails and webhooks are queued in a durable outbox in that same transaction and
//     delivered by Senders in their own goroutines, with back-off: an unreachable SMTP server or
//     webhook never blocks rule evaluation and never loses a message;
//   - a broken rule file is rejected at reload and the previous rules keep running;
//   - nothing here suspends a service: the system never changes a project's `suspended`.
package alerting

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
)

//go:embed rules/*.yml
var shippedRules embed.FS

// Storage is what rule evaluation needs from the TSDB: queries, and appends for recording
// rules and the ALERTS series.
type Storage interface {
	storage.Queryable
	storage.AppendableV2
}

// Options configure a Manager.
type Options struct {
	// Storage is the TSDB. Required.
	Storage Storage
	// Engine runs the rules' queries; nil builds one (without registering its metrics).
	Engine promql.QueryEngine
	// RuleFiles are globs of rule files. Empty: the shipped rules, written to ShippedDir.
	RuleFiles []string
	// ShippedDir is where the shipped rules are written when RuleFiles is empty. Required then.
	ShippedDir string
	// EvaluationInterval is how often every group is evaluated (default 1m).
	EvaluationInterval time.Duration
	// Notify receives the alerts of every evaluation (usually Notifier.Notify). Required.
	Notify rules.NotifyFunc
	// Now is the process's clock; nil means time.Now. Prometheus' rule manager schedules its
	// evaluations on the wall clock: each one is stamped at its wall-clock slot shifted by how
	// far Now is ahead, so that a pinned clock (CYGNI_TEST_NOW) evaluates the data of its own
	// instant, and the `for` state is restored from the same shifted window.
	Now func() time.Time
}

// Manager runs the rule files. It is safe for concurrent use.
type Manager struct {
	logger   *slog.Logger
	opts     Options
	rules    *rules.Manager
	query    rules.QueryFunc
	cancel   context.CancelFunc
	reloadMu sync.Mutex // one reload at a time
	mu       sync.RWMutex
	files    []string                     // the files of the running rule set
	iterate  rules.GroupEvalIterationFunc // nil: Prometheus' default, on the wall clock

	reloads, reloadFailures prometheus.Counter
}

// New builds a Manager; it loads no rules (call Reload) and starts nothing (call Run).
func New(logger *slog.Logger, reg prometheus.Registerer, opts Options) (*Manager, error) {
	if opts.Storage == nil {
		return nil, errors.New("alerting: no storage")
	}
	if opts.Notify == nil {
		return nil, errors.New("alerting: no notify function")
	}
	if len(opts.RuleFiles) == 0 && opts.ShippedDir == "" {
		return nil, errors.New("alerting: neither rule files nor a directory for the shipped rules")
	}
	if opts.EvaluationInterval == 0 {
		opts.EvaluationInterval = time.Minute
	}
	if opts.EvaluationInterval < 0 {
		return nil, fmt.Errorf("alerting: negative evaluation interval %s", opts.EvaluationInterval)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "alerting")
	if opts.Engine == nil {
		opts.Engine = promql.NewEngine(promql.EngineOpts{
			Logger:               logger,
			MaxSamples:           50_000_000,
			Timeout:              2 * time.Minute,
			LookbackDelta:        5 * time.Minute,
			EnableAtModifier:     true,
			EnableNegativeOffset: true,
		})
	}
	m := &Manager{logger: logger, opts: opts}
	m.query = rules.EngineQueryFunc(opts.Engine, opts.Storage)
	var restore storage.Queryable = opts.Storage
	if opts.Now != nil {
		if off := opts.Now().Sub(time.Now()).Round(time.Millisecond); off != 0 {
			m.iterate = func(ctx context.Context, g *rules.Group, ts time.Time) {
				rules.DefaultEvalIterationFunc(ctx, g, ts.Add(off))
			}
			restore = shiftedQueryable{opts.Storage, off.Milliseconds()}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.rules = rules.NewManager(&rules.ManagerOptions{
		AppendableV2: opts.Storage,
		Queryable:    restore,
		QueryFunc:    m.query,
		NotifyFunc:   opts.Notify,
		Context:      ctx,
		Logger:       logger,
		Registerer:   reg,
		ResendDelay:  time.Minute,
		// The ALERTS_FOR_STATE series restore pending `for` timers after a restart.
		OutageTolerance: time.Hour,
		ForGracePeriod:  10 * time.Minute,
	})
	m.reloads = prometheus.NewCounter(prometheus.CounterOpts{Name: "cygni_alerting_reloads_total", Help: "Rule file reloads attempted."})
	m.reloadFailures = prometheus.NewCounter(prometheus.CounterOpts{Name: "cygni_alerting_reload_failures_total", Help: "Rule file reloads rejected; the previous rules kept running."})
	if reg != nil {
		for _, c := range []prometheus.Collector{m.reloads, m.reloadFailures} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register alerting metrics: %w", err)
			}
		}
	}
	return m, nil
}

// Run evaluates the rules until ctx is done. Load them first with Reload.
func (m *Manager) Run(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		m.rules.Run()
		close(done)
	}()
	<-ctx.Done()
	m.rules.Stop()
	m.cancel()
	<-done
	return nil
}

// Reload re-reads the rule files: every file is validated first; if any is broken, nothing
// changes (the running rules keep being evaluated) and the error names file:line of every
// problem.
func (m *Manager) Reload(ctx context.Context) error {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	m.reloads.Inc()
	files, err := m.ruleFiles()
	if err == nil {
		err = CheckFiles(files...)
	}
	if err == nil {
		if uerr := m.rules.Update(m.opts.EvaluationInterval, files, labels.EmptyLabels(), "", m.iterate); uerr != nil {
			err = fmt.Errorf("load rule files: %w", uerr)
		}
	}
	if err != nil {
		m.reloadFailures.Inc()
		m.logger.Error("rule reload rejected; the previous rules keep running", "err", err)
		return err
	}
	m.mu.Lock()
	m.files = files
	m.mu.Unlock()
	m.logger.Info("rules loaded", "files", len(files), "groups", len(m.rules.RuleGroups()))
	return nil
}

// Files returns the rule files of the running rule set.
func (m *Manager) Files() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return append([]string(nil), m.files...)
}

// ruleFiles expands the configured globs, or writes the shipped rules and returns them.
func (m *Manager) ruleFiles() ([]string, error) {
	if len(m.opts.RuleFiles) == 0 {
		return WriteShippedRules(m.opts.ShippedDir)
	}
	seen := map[string]bool{}
	var files []string
	for _, pat := range m.opts.RuleFiles {
		matches, err := filepath.Glob(pat)
		if err != nil {
			return nil, fmt.Errorf("rule_files %q: %w", pat, err)
		}
		if len(matches) == 0 && !strings.ContainsAny(pat, "*?[") {
			return nil, fmt.Errorf("rule file %s: %w", pat, os.ErrNotExist)
		}
		for _, f := range matches {
			if !seen[f] {
				seen[f] = true
				files = append(files, f)
			}
		}
	}
	sort.Strings(files)
	return files, nil
}

// WriteShippedRules writes the rule files shipped in the binary to dir (replacing older
// copies) and returns their paths.
func WriteShippedRules(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create the shipped rules directory: %w", err)
	}
	names, err := fs.Glob(shippedRules, "rules/*.yml")
	if err != nil {
		return nil, fmt.Errorf("list shipped rules: %w", err)
	}
	var files []string
	for _, n := range names {
		b, err := shippedRules.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("read shipped rule file %s: %w", n, err)
		}
		dst := filepath.Join(dir, filepath.Base(n))
		if old, err := os.ReadFile(dst); err != nil || string(old) != string(b) {
			tmp := dst + ".tmp"
			if err := os.WriteFile(tmp, b, 0o644); err != nil {
				return nil, fmt.Errorf("write shipped rule file: %w", err)
			}
			if err := os.Rename(tmp, dst); err != nil {
				return nil, fmt.Errorf("write shipped rule file: %w", err)
			}
		}
		files = append(files, dst)
	}
	return files, nil
}

// EvalAt evaluates every rule group once at ts, in file order, as the scheduler would. It is
// for tests and tools that drive time themselves (with an EvaluationInterval long enough that
// the scheduler does not evaluate concurrently).
func (m *Manager) EvalAt(ctx context.Context, ts time.Time) {
	for _, g := range m.rules.RuleGroups() {
		rules.DefaultEvalIterationFunc(ctx, g, ts)
	}
}

// RuleGroups returns the running rule groups, for the Prometheus API's /api/v1/rules.
func (m *Manager) RuleGroups() []*rules.Group { return m.rules.RuleGroups() }

// AlertingRules returns the running alerting rules, for /api/v1/alerts.
func (m *Manager) AlertingRules() []*rules.AlertingRule { return m.rules.AlertingRules() }

// lineRe finds the line number in YAML decoder errors ("yaml: line 12: …", "line 12: …").
var lineRe = regexp.MustCompile(`line (\d+): `)

// CheckFiles parses and validates rule files as the rule manager will load them: YAML
// structure, every expr with the PromQL parser, label and annotation templates. The error lists
// every problem as "file:line:col: message" (or "file:line: message"), one per line.
func CheckFiles(files ...string) error {
	p := parser.NewParser(parser.Options{})
	logger := promslog.NewNopLogger()
	var msgs []string
	for _, f := range files {
		_, errs := rulefmt.ParseFile(f, false, model.UTF8Validation, p, logger)
		seen := map[string]bool{}
		for _, err := range errs {
			for _, m := range positioned(f, err) {
				if !seen[m] { // the YAML is decoded twice; report each problem once
					seen[m] = true
					msgs = append(msgs, m)
				}
			}
		}
	}
	if len(msgs) > 0 {
		return &CheckError{Problems: msgs}
	}
	return nil
}

// CheckError lists the problems of rule files, each "file:line[:col]: message".
type CheckError struct {
	Problems []string
}

func (e *CheckError) Error() string {
	return "invalid rule files:\n" + strings.Join(e.Problems, "\n")
}

// positioned renders err of file f as "f:line:col: message" lines (a YAML error may hold
// several, one per line).
func positioned(f string, err error) []string {
	var re *rulefmt.Error
	if errors.As(err, &re) {
		// rulefmt.Error reads "line:col: group …" when it knows the position.
		return []string{f + ":" + re.Error()}
	}
	msg := strings.TrimPrefix(err.Error(), f+": ")
	var out []string
	for _, part := range strings.Split(msg, "\n") {
		sm := lineRe.FindStringSubmatchIndex(part)
		if sm == nil {
			continue
		}
		rest := strings.TrimSpace(part[sm[1]:])
		out = append(out, f+":"+part[sm[2]:sm[3]]+": "+rest)
	}
	if len(out) == 0 {
		out = append(out, f+": "+strings.ReplaceAll(msg, "\n", " "))
	}
	return out
}

// shiftedQueryable moves the rule manager's wall-clock query windows (the `for` state restore)
// onto the process clock's timeline.
type shiftedQueryable struct {
	storage.Queryable
	offMs int64
}

func (q shiftedQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	return q.Queryable.Querier(mint+q.offMs, maxt+q.offMs)
}
