// Package alerting evaluates Prometheus rule files against the embedded TSDB and turns firing
// budget alerts into notifications, e-mails and webhooks.
//
// The stage: the rule groups are Prometheus' own (prometheus/rules, loaded from rule files in
// Prometheus' format), but the Manager drives their evaluation itself, with the process clock:
// right after the derived series were written (Trigger, called by the data pipeline after every
// collection) and on a fallback interval. Recording rules and ALERTS/ALERTS_FOR_STATE are
// written back to the TSDB. After every evaluation the alerts go to the Notifier, which keeps
// these invariants:
//   - a firing alert is one episode per (project, alert, billing period, budget limit in force),
//     and every episode is exactly one notification: the episode row and the notification are
//     written in one transaction of the metadata store, so a restart neither repeats nor loses
//     one;
//   - an episode is resolved only once its condition has really cleared (not firing for
//     ResolveAfter, with fresh data); a later crossing is a new episode;
//   - e-mails and webhooks are queued in a durable outbox in that same transaction and
//     delivered by Senders in their own goroutines, with back-off: an unreachable SMTP server or
//     webhook never blocks rule evaluation and never loses a message;
//   - a rule set that is broken, empty, matched by no file or lacking the budget alerts is
//     rejected at start and at reload, and the previous rules keep running;
//   - pending and firing alerts keep their `for` clock across restarts and reloads (restored
//     from ALERTS_FOR_STATE within OutageTolerance, with ForGracePeriod);
//   - nothing here suspends a service: the system never changes a project's `suspended`.
package alerting

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"go.yaml.in/yaml/v3"
)

//go:embed rules/*.yml
var shippedRules embed.FS

// Storage is what rule evaluation needs from the TSDB: queries, and appends for recording
// rules and the ALERTS series.
type Storage interface {
	storage.Queryable
	storage.AppendableV2
}

// DefaultRequiredAlerts are the budget alerts of the seed (80 % warning, 100 % exceeded): a rule
// set without them would silently switch budget alerting off, so it is refused.
var DefaultRequiredAlerts = []string{"ProjectBudgetWarning", "ProjectBudgetExceeded"}

// Options configure a Manager.
type Options struct {
	// Storage is the TSDB. Required.
	Storage Storage
	// Engine runs the rules' queries; nil builds one (without registering its metrics).
	Engine promql.QueryEngine
	// RuleFiles are globs of rule files; each must match at least one file. Empty: the shipped
	// rules, written to ShippedDir.
	RuleFiles []string
	// ShippedDir is where the shipped rules are written when RuleFiles is empty. Required then.
	ShippedDir string
	// RequiredAlerts must all be defined by the rule set (default DefaultRequiredAlerts).
	RequiredAlerts []string
	// EvaluationInterval is how often every group is evaluated when no Trigger came (default
	// 1m). Triggered evaluations reset the interval.
	EvaluationInterval time.Duration
	// WaitForTrigger: the first evaluation waits for Trigger (the derived series exist), so that
	// restored `for` clocks see the alerts that are active; the interval starts after it.
	WaitForTrigger bool
	// OutageTolerance is how long a restart or an unloaded rule may last and still restore the
	// `for` clock of its alerts (default 1h); ForGracePeriod is the least time an alert waits
	// after a restore before it fires (default 10m; alerts with a shorter `for` start over).
	OutageTolerance, ForGracePeriod time.Duration
	// Now is the clock of evaluations; nil: time.Now.
	Now func() time.Time
	// Evaluated receives the alerts of every evaluation (usually Notifier.Reconcile). Required.
	Evaluated func(ctx context.Context, ev Evaluation)
}

// Evaluation is the state of every alerting rule after one evaluation at At.
type Evaluation struct {
	At    time.Time
	Rules []RuleAlerts
	// Query runs PromQL against the rules' storage (for reads at At).
	Query rules.QueryFunc
}

// RuleAlerts is one alerting rule after an evaluation.
type RuleAlerts struct {
	Name string
	// Position is "file:line" of the rule.
	Position string
	// Healthy is false when the evaluation failed (its alerts then keep their last state).
	Healthy bool
	// Firing are the rule's firing alerts (pending ones are not).
	Firing []*rules.Alert
}

// Status describes the running rule set (for /readyz).
type Status struct {
	Files  []string `json:"ruleFiles"`
	Groups []string `json:"ruleGroups"` // "file;group"
	// LastReloadError is the error of the last rejected reload, "" when the last one succeeded.
	LastReloadError string `json:"lastReloadError,omitempty"`
	// LastEvaluation is the time of the last evaluation (zero before the first).
	LastEvaluation time.Time `json:"lastEvaluation"`
}

// Manager loads rule files and evaluates them. It is safe for concurrent use.
type Manager struct {
	logger *slog.Logger
	opts   Options
	now    func() time.Time
	loader *rules.Manager // builds groups from files; never run: the Manager drives evaluation
	// ruleOpts are the loader's options, which every group shares.
	ruleOpts *rules.ManagerOptions
	query    rules.QueryFunc
	gm       *rules.Metrics
	kick     chan struct{}

	reloadMu sync.Mutex                   // one reload at a time
	evalMu   sync.Mutex                   // evaluations and the swap of a reload
	groups   []*rules.Group               // written under evalMu and mu; read under either
	restore  map[*rules.AlertingRule]bool // rules whose `for` state is restored after their first evaluation
	position map[string]string            // "file\x00alert" -> "file:line"

	mu     sync.RWMutex
	status Status

	reloads, reloadFailures prometheus.Counter
	lastReloadOK            prometheus.Gauge
	lastReloadTime          prometheus.Gauge
	loadedGroups            *prometheus.GaugeVec
}

// New builds a Manager; it loads no rules (call Reload) and starts nothing (call Run).
func New(logger *slog.Logger, reg prometheus.Registerer, opts Options) (*Manager, error) {
	if opts.Storage == nil {
		return nil, errors.New("alerting: no storage")
	}
	if opts.Evaluated == nil {
		return nil, errors.New("alerting: no function for the evaluated alerts")
	}
	if len(opts.RuleFiles) == 0 && opts.ShippedDir == "" {
		return nil, errors.New("alerting: neither rule files nor a directory for the shipped rules")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&opts.EvaluationInterval, time.Minute)
	def(&opts.OutageTolerance, time.Hour)
	def(&opts.ForGracePeriod, 10*time.Minute)
	for name, d := range map[string]time.Duration{"evaluation interval": opts.EvaluationInterval, "outage tolerance": opts.OutageTolerance, "for grace period": opts.ForGracePeriod} {
		if d < 0 {
			return nil, fmt.Errorf("alerting: negative %s %s", name, d)
		}
	}
	if opts.RequiredAlerts == nil {
		opts.RequiredAlerts = DefaultRequiredAlerts
	}
	if opts.Now == nil {
		opts.Now = time.Now
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
	m := &Manager{logger: logger, opts: opts, now: opts.Now, kick: make(chan struct{}, 1), restore: map[*rules.AlertingRule]bool{}}
	m.gm = rules.NewGroupMetrics(reg)
	m.query = rules.EngineQueryFunc(opts.Engine, opts.Storage)
	m.ruleOpts = &rules.ManagerOptions{
		AppendableV2: ruleStorage{opts.Storage},
		Queryable:    opts.Storage,
		QueryFunc:    m.query,
		// Alerts are read from the rules after each evaluation (Options.Evaluated).
		NotifyFunc:      func(context.Context, string, ...*rules.Alert) {},
		Context:         context.Background(),
		Logger:          logger,
		Metrics:         m.gm,
		OutageTolerance: opts.OutageTolerance,
		ForGracePeriod:  opts.ForGracePeriod,
	}
	m.loader = rules.NewManager(m.ruleOpts)
	m.reloads = prometheus.NewCounter(prometheus.CounterOpts{Name: "cygni_alerting_reloads_total", Help: "Rule file reloads attempted (the first load included)."})
	m.reloadFailures = prometheus.NewCounter(prometheus.CounterOpts{Name: "cygni_alerting_reload_failures_total", Help: "Rule file reloads rejected; the previous rules kept running."})
	m.lastReloadOK = prometheus.NewGauge(prometheus.GaugeOpts{Name: "cygni_alerting_last_reload_successful", Help: "1 if the last rule reload was accepted, 0 if it was rejected."})
	m.lastReloadTime = prometheus.NewGauge(prometheus.GaugeOpts{Name: "cygni_alerting_last_reload_success_timestamp_seconds", Help: "Time of the last accepted rule reload."})
	m.loadedGroups = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cygni_alerting_rule_group_loaded", Help: "The rule groups being evaluated (value: their number of rules), by rule file and group."}, []string{"file", "group"})
	if reg != nil {
		for _, c := range []prometheus.Collector{m.reloads, m.reloadFailures, m.lastReloadOK, m.lastReloadTime, m.loadedGroups} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register alerting metrics: %w", err)
			}
		}
	}
	return m, nil
}

// Trigger asks for an evaluation now (new derived data was written). It never blocks; triggers
// that arrive during an evaluation fold into one more.
func (m *Manager) Trigger() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// Run evaluates the rules on Trigger and every EvaluationInterval until ctx is done. Load them
// first with Reload.
//
// When Run returns, this process no longer evaluates the rules (the rules leadership was lost,
// or it shuts down): another process may evaluate them meanwhile, so the alerts held here would
// go stale. They are dropped, and if Run is started again (the leadership taken again), the
// first evaluation restores every alert's `for` clock from ALERTS_FOR_STATE, as after a start.
func (m *Manager) Run(ctx context.Context) error {
	defer m.forgetAlerts()
	t := time.NewTicker(m.opts.EvaluationInterval)
	defer t.Stop()
	var tick <-chan time.Time
	if !m.opts.WaitForTrigger {
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-m.kick:
			t.Reset(m.opts.EvaluationInterval)
			tick = t.C
		case <-tick:
		}
		m.EvalAt(ctx, m.now())
	}
}

// EvalAt evaluates every rule group once at ts, in file order, and hands the alerts to
// Options.Evaluated. Run calls it with the clock; tests call it with their own times.
func (m *Manager) EvalAt(ctx context.Context, ts time.Time) {
	m.evalMu.Lock()
	defer m.evalMu.Unlock()
	ev := Evaluation{At: ts, Query: m.query}
	for _, g := range m.groups {
		if m.restoring(g) {
			// The group's first evaluation since its rules were loaded: an evaluation that
			// writes nothing makes the active alerts, their `for` clocks are restored from
			// ALERTS_FOR_STATE, and the evaluation at the same ts below decides pending or
			// firing on the restored clocks. So an alert that was firing in the process that
			// evaluated it before (a restart, another rules leader) is firing again from this
			// first evaluation on, to the notifier and in ALERTS, instead of pending for one
			// interval (Prometheus restores after its first evaluation and shows it pending
			// until the next one).
			g.Eval(context.WithValue(ctx, warmUpKey{}, true), ts)
			for _, r := range g.AlertingRules() {
				if m.restore[r] {
					m.restoreForState(ctx, r, ts)
					delete(m.restore, r)
				}
			}
		}
		rules.DefaultEvalIterationFunc(ctx, g, ts)
		for _, rule := range g.Rules() { // in file order
			r, ok := rule.(*rules.AlertingRule)
			if !ok {
				continue
			}
			ra := RuleAlerts{Name: r.Name(), Position: m.position[g.File()+"\x00"+r.Name()], Healthy: r.Health() != rules.HealthBad}
			for _, a := range r.ActiveAlerts() {
				if a.State == rules.StateFiring {
					ra.Firing = append(ra.Firing, a)
				}
			}
			ev.Rules = append(ev.Rules, ra)
		}
	}
	m.mu.Lock()
	m.status.LastEvaluation = ts
	m.mu.Unlock()
	m.opts.Evaluated(ctx, ev)
}

// forgetAlerts replaces every rule group by a copy that holds no alerts and marks each of its
// alerting rules for a restore of its `for` state at the next evaluation.
func (m *Manager) forgetAlerts() {
	m.evalMu.Lock()
	defer m.evalMu.Unlock()
	next := make([]*rules.Group, 0, len(m.groups))
	restore := map[*rules.AlertingRule]bool{}
	for _, g := range m.groups {
		rs := make([]rules.Rule, 0, len(g.Rules()))
		for _, r := range g.Rules() {
			if ar, ok := r.(*rules.AlertingRule); ok {
				// As LoadGroups builds it: no external labels or URL.
				fresh := rules.NewAlertingRule(ar.Name(), ar.Query(), ar.HoldDuration(), ar.KeepFiringFor(), ar.Labels(), ar.Annotations(),
					labels.EmptyLabels(), "", false, m.logger.With("alert", ar.Name()))
				restore[fresh] = true
				r = fresh
			}
			rs = append(rs, r)
		}
		var offset *time.Duration
		if o := g.QueryOffset(); o != 0 {
			offset = &o
		}
		next = append(next, rules.NewGroup(rules.GroupOptions{
			Name: g.Name(), File: g.File(), Interval: g.Interval(), Limit: g.Limit(), Rules: rs, Opts: m.ruleOpts, QueryOffset: offset,
		}))
	}
	m.mu.Lock()
	m.groups = next
	m.mu.Unlock()
	m.restore = restore
}

// restoring reports whether g has alerting rules whose `for` state is still to be restored.
func (m *Manager) restoring(g *rules.Group) bool {
	for _, r := range g.AlertingRules() {
		if m.restore[r] {
			return true
		}
	}
	return false
}

// warmUpKey marks the context of an evaluation whose appends are dropped (EvalAt).
type warmUpKey struct{}

// ruleStorage is what the rule groups append to: Storage, except that appends under a warm-up
// context (warmUpKey) are dropped.
type ruleStorage struct{ Storage }

func (s ruleStorage) AppenderV2(ctx context.Context) storage.AppenderV2 {
	if ctx.Value(warmUpKey{}) != nil {
		return discardAppender{}
	}
	return s.Storage.AppenderV2(ctx)
}

// discardAppender takes samples and keeps none.
type discardAppender struct{}

func (discardAppender) Append(storage.SeriesRef, labels.Labels, int64, int64, float64, *histogram.Histogram, *histogram.FloatHistogram, storage.AppendV2Options) (storage.SeriesRef, error) {
	return 0, nil
}
func (discardAppender) Commit() error   { return nil }
func (discardAppender) Rollback() error { return nil }

// restoreForState gives the active alerts of a newly loaded rule the `for` clock they had
// before the restart or reload, from the last ALERTS_FOR_STATE sample (its value is the alert's
// ActiveAt) within OutageTolerance before ts — Prometheus' rules: the time the rule was not
// evaluated does not count; an alert whose remaining `for` is shorter than ForGracePeriod fires
// ForGracePeriod after ts; an alert whose `for` is shorter than ForGracePeriod starts over; an
// alert that was firing keeps its ActiveAt and fires in the evaluation at ts that follows the
// restore (EvalAt). From then on the rule writes ALERTS_FOR_STATE itself.
func (m *Manager) restoreForState(ctx context.Context, r *rules.AlertingRule, ts time.Time) {
	defer r.SetRestored(true)
	q, err := m.opts.Storage.Querier(ts.Add(-m.opts.OutageTolerance).UnixMilli(), ts.UnixMilli())
	if err != nil {
		m.logger.Warn("open the TSDB to restore `for` state; the alerts start over", "alert", r.Name(), "err", err)
		return
	}
	defer q.Close()
	ss, err := r.QueryForStateSeries(ctx, q)
	if err != nil {
		m.logger.Warn("read ALERTS_FOR_STATE; the alerts start over", "alert", r.Name(), "err", err)
		return
	}
	type last struct {
		t int64
		v float64
	}
	byLabels := map[string]last{}
	var it chunkenc.Iterator
	for ss.Next() {
		s := ss.At()
		it = s.Iterator(it)
		var l last
		ok := false
		for it.Next() == chunkenc.ValFloat {
			l.t, l.v = it.At()
			ok = true
		}
		if ok && it.Err() == nil {
			byLabels[s.Labels().DropReserved(func(n string) bool { return n == labels.MetricName }).String()] = l
		}
	}
	hold, grace := r.HoldDuration(), m.opts.ForGracePeriod
	restored := 0
	r.ForEachActiveAlert(func(a *rules.Alert) {
		l, ok := byLabels[a.Labels.String()]
		if !ok || value.IsStaleNaN(l.v) || math.IsNaN(l.v) {
			return
		}
		downAt := time.UnixMilli(l.t)
		activeAt := time.Unix(int64(l.v), 0)
		remaining := hold - downAt.Sub(activeAt)
		switch {
		case remaining <= 0: // was firing
		case hold < grace:
			return
		case remaining < grace:
			activeAt = ts.Add(grace - hold)
		default:
			activeAt = activeAt.Add(ts.Sub(downAt))
		}
		a.ActiveAt = activeAt.UTC()
		restored++
	})
	if restored > 0 {
		m.logger.Info("`for` state restored", "alert", r.Name(), "alerts", restored)
	}
}

// Reload re-reads the rule files. The new set is checked first — every file parses (YAML, every
// PromQL expr, templates), every pattern matches a file, the set has groups and defines every
// RequiredAlerts — and if anything is wrong nothing changes (the running rules keep being
// evaluated) and the error says what, with file:line for problems inside a file. Groups that
// did not change keep running as they are; changed and new ones keep or restore the `for`
// clocks of their alerts.
func (m *Manager) Reload(ctx context.Context) error {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	m.reloads.Inc()
	files, err := m.ruleFiles()
	var parsed map[string]*rulefmt.RuleGroups
	if err == nil {
		parsed, err = checkFiles(files)
	}
	if err == nil {
		err = m.checkSet(files, parsed)
	}
	var groups map[string]*rules.Group
	if err == nil {
		var errs []error
		groups, errs = m.loader.LoadGroups(m.opts.EvaluationInterval, labels.EmptyLabels(), "", nil, false, files...)
		if len(errs) > 0 {
			err = fmt.Errorf("load rule files: %w", errors.Join(errs...))
		}
	}
	if err != nil {
		m.reloadFailures.Inc()
		m.lastReloadOK.Set(0)
		m.mu.Lock()
		m.status.LastReloadError = err.Error()
		m.mu.Unlock()
		m.logger.Error("rule reload rejected; the previous rules keep running", "err", err)
		return err
	}
	pos := positions(files)
	m.swap(groups, pos)

	m.mu.Lock()
	m.status.Files = files
	m.status.Groups = m.status.Groups[:0:0]
	for _, g := range m.groups {
		m.status.Groups = append(m.status.Groups, rules.GroupKey(g.File(), g.Name()))
	}
	m.status.LastReloadError = ""
	nGroups := len(m.status.Groups)
	m.mu.Unlock()
	m.lastReloadOK.Set(1)
	m.lastReloadTime.Set(float64(m.now().UnixMilli()) / 1000)
	m.logger.Info("rules loaded", "files", len(files), "groups", nGroups)
	return nil
}

// swap replaces the running groups by groups (under evalMu), keeping equal ones and the alert
// state of changed ones.
func (m *Manager) swap(groups map[string]*rules.Group, pos map[string]string) {
	m.evalMu.Lock()
	defer m.evalMu.Unlock()
	old := map[string]*rules.Group{}
	for _, g := range m.groups {
		old[rules.GroupKey(g.File(), g.Name())] = g
	}
	next := make([]*rules.Group, 0, len(groups))
	restore := map[*rules.AlertingRule]bool{}
	for key, g := range groups {
		og, ok := old[key]
		delete(old, key)
		switch {
		case ok && og.Equals(g):
			g = og
			for _, r := range g.AlertingRules() {
				if m.restore[r] {
					restore[r] = true
				}
			}
		case ok:
			g.CopyState(og)
			had := map[string]bool{}
			for _, r := range og.AlertingRules() {
				if !m.restore[r] {
					had[r.Name()+r.Labels().String()] = true
				}
			}
			for _, r := range g.AlertingRules() {
				if had[r.Name()+r.Labels().String()] {
					r.SetRestored(true) // its alerts came over from the old group
				} else {
					restore[r] = true
				}
			}
		default:
			for _, r := range g.AlertingRules() {
				restore[r] = true
			}
		}
		next = append(next, g)
	}
	for key := range old {
		for _, vec := range []interface{ DeleteLabelValues(...string) bool }{m.gm.IterationsMissed, m.gm.IterationsScheduled, m.gm.EvalTotal,
			m.gm.EvalFailures, m.gm.GroupInterval, m.gm.GroupLastEvalTime, m.gm.GroupLastDuration, m.gm.GroupRules, m.gm.GroupSamples,
			m.gm.GroupLastRuleDurationSum, m.gm.GroupLastRestoreDuration} {
			vec.DeleteLabelValues(key)
		}
	}
	slices.SortFunc(next, func(a, b *rules.Group) int {
		return strings.Compare(rules.GroupKey(a.File(), a.Name()), rules.GroupKey(b.File(), b.Name()))
	})
	m.mu.Lock()
	m.groups = next
	m.mu.Unlock()
	m.restore, m.position = restore, pos
	m.loadedGroups.Reset()
	for _, g := range next {
		m.loadedGroups.WithLabelValues(g.File(), g.Name()).Set(float64(len(g.Rules())))
	}
}

// checkSet refuses a rule set that would silently switch alerting off: no groups at all, or
// one of the RequiredAlerts missing.
func (m *Manager) checkSet(files []string, parsed map[string]*rulefmt.RuleGroups) error {
	alerts := map[string]bool{}
	groups := 0
	for _, f := range files {
		for _, g := range parsed[f].Groups {
			groups++
			for _, r := range g.Rules {
				if r.Alert != "" {
					alerts[r.Alert] = true
				}
			}
		}
	}
	if groups == 0 {
		return fmt.Errorf("%w: the rule files %s define no rule group", ErrRuleSet, strings.Join(files, ", "))
	}
	var missing []string
	for _, a := range m.opts.RequiredAlerts {
		if !alerts[a] {
			missing = append(missing, a)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: no rule file defines the alert %s (alerting.required_alerts); without it budget alerts would be off",
			ErrRuleSet, strings.Join(missing, ", "))
	}
	return nil
}

// Errors of Reload (besides *CheckError, the problems inside files).
var (
	// ErrRuleSet: the rule set as a whole is unacceptable (no file, no group, a required alert
	// missing).
	ErrRuleSet = errors.New("rule set refused")
)

// Files returns the rule files of the running rule set.
func (m *Manager) Files() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return append([]string(nil), m.status.Files...)
}

// Status returns the running rule set and the outcome of the last reload.
func (m *Manager) Status() Status {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := m.status
	s.Files = append([]string{}, s.Files...)
	s.Groups = append([]string{}, s.Groups...)
	return s
}

// ruleFiles expands the configured globs, or writes the shipped rules and returns them. A
// pattern that matches no file is an error: a typo must not switch alerting off.
func (m *Manager) ruleFiles() ([]string, error) {
	if len(m.opts.RuleFiles) == 0 {
		return WriteShippedRules(m.opts.ShippedDir)
	}
	seen := map[string]bool{}
	var files []string
	for _, pat := range m.opts.RuleFiles {
		matches, err := filepath.Glob(pat)
		if err != nil {
			return nil, fmt.Errorf("%w: alerting.rule_files pattern %q: %v", ErrRuleSet, pat, err)
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("%w: alerting.rule_files pattern %q matches no file", ErrRuleSet, pat)
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

// RuleGroups returns the running rule groups, for the Prometheus API's /api/v1/rules. It does
// not wait for a running evaluation.
func (m *Manager) RuleGroups() []*rules.Group {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return append([]*rules.Group(nil), m.groups...)
}

// AlertingRules returns the running alerting rules, for /api/v1/alerts.
func (m *Manager) AlertingRules() []*rules.AlertingRule {
	var out []*rules.AlertingRule
	for _, g := range m.RuleGroups() {
		out = append(out, g.AlertingRules()...)
	}
	return out
}

// positions maps "file\x00alert" to "file:line" of every alerting rule, for messages about a
// rule (its annotation templates fail at run time).
func positions(files []string) map[string]string {
	out := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var doc struct {
			Groups []struct {
				Rules []struct {
					Alert yaml.Node `yaml:"alert"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		}
		if yaml.Unmarshal(b, &doc) != nil {
			continue
		}
		for _, g := range doc.Groups {
			for _, r := range g.Rules {
				if r.Alert.Value != "" {
					out[f+"\x00"+r.Alert.Value] = fmt.Sprintf("%s:%d", f, r.Alert.Line)
				}
			}
		}
	}
	return out
}

// lineRe finds the line number in YAML decoder errors ("yaml: line 12: …", "line 12: …").
var lineRe = regexp.MustCompile(`line (\d+): `)

// CheckFiles parses and validates rule files as the rule manager will load them: YAML
// structure, every expr with the PromQL parser, label and annotation templates. The error lists
// every problem as "file:line:col: message" (or "file:line: message"), one per line.
func CheckFiles(files ...string) error {
	_, err := checkFiles(files)
	return err
}

func checkFiles(files []string) (map[string]*rulefmt.RuleGroups, error) {
	p := parser.NewParser(parser.Options{})
	logger := promslog.NewNopLogger()
	var msgs []string
	parsed := map[string]*rulefmt.RuleGroups{}
	for _, f := range files {
		rgs, errs := rulefmt.ParseFile(f, false, model.UTF8Validation, p, logger)
		parsed[f] = rgs
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
		return nil, &CheckError{Problems: msgs}
	}
	return parsed, nil
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
