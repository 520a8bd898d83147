// Package tsdb owns the series store: the embedded Prometheus TSDB that keeps every usage
// series on one machine, or (storage.mode: remote, Remote in storage.go) a VictoriaMetrics or
// Prometheus server written by remote-write through a durable local queue and read through its
// own API. OpenStorage chooses between them.
//
// It is the only package that touches *tsdb.DB: everyone else sees storage.Appendable and
// storage.Queryable (or a narrower interface of their own). The DB runs with an out-of-order
// window that covers the collector's look-back and its gap backfills, because CloudWatch data
// arrives late and corrections are appended behind the head. Committed samples are in the WAL
// before Commit returns, so a kill -9 loses nothing that was committed: the WAL replays on Open.
package tsdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/storage"
	promtsdb "github.com/prometheus/prometheus/tsdb"

	"github.com/cygni/usage/series"
)

// Options configure the embedded TSDB. Zero values take the defaults.
type Options struct {
	// Dir is the directory of the TSDB (blocks and WAL). Required.
	Dir string
	// Retention is how long samples are kept. Default 400 days.
	Retention time.Duration
	// OutOfOrderWindow is how far behind the newest sample a sample may still be appended.
	// It must cover the collector's look-back and the gaps it backfills. Default 15 days
	// (CloudWatch's retention of 1-minute data).
	OutOfOrderWindow time.Duration
}

// Defaults for Options.
const (
	DefaultRetention        = 400 * 24 * time.Hour
	DefaultOutOfOrderWindow = 15 * 24 * time.Hour
)

// DB is the embedded TSDB. It implements storage.Storage.
type DB struct {
	db     *promtsdb.DB
	logger *slog.Logger
	// compactions are the Compact calls still waiting for Prometheus' compaction lock after
	// their caller gave up (compact); Close waits for them.
	compactions sync.WaitGroup
	// writeMu keeps compaction and appends apart: an appender holds it shared from its first
	// sample to Commit or Rollback, a compaction exclusively. Prometheus' own compaction loop
	// is off (compactLoop runs it under writeMu): compacting the head and the out-of-order head
	// while an appender is adding samples to the range being compacted lost those samples
	// (committed, never in a block, gone at the next head truncation) — a collector batch
	// writing the first hours of a backfill behind another batch's newer samples lost them.
	writeMu     sync.RWMutex
	writes      writeLog
	autoCompact atomic.Bool
	stop        chan struct{}
	stopOnce    sync.Once
	loopDone    chan struct{}
}

// compactInterval is how often compactLoop looks for something to compact (Prometheus' loop
// looks every block-reload interval, a second here, and finds nothing most of the time).
const compactInterval = 5 * time.Second

var _ storage.Storage = (*DB)(nil)

// Open opens (or creates) the TSDB in opts.Dir and replays its WAL.
func Open(logger *slog.Logger, reg prometheus.Registerer, opts Options) (*DB, error) {
	if opts.Dir == "" {
		return nil, errors.New("tsdb: directory is empty")
	}
	if opts.Retention == 0 {
		opts.Retention = DefaultRetention
	}
	if opts.OutOfOrderWindow == 0 {
		opts.OutOfOrderWindow = DefaultOutOfOrderWindow
	}
	if opts.Retention < 0 || opts.OutOfOrderWindow < 0 {
		return nil, fmt.Errorf("tsdb: negative retention %s or out-of-order window %s", opts.Retention, opts.OutOfOrderWindow)
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create TSDB directory: %w", err)
	}
	o := promtsdb.DefaultOptions()
	o.RetentionDuration = opts.Retention.Milliseconds()
	o.OutOfOrderTimeWindow = opts.OutOfOrderWindow.Milliseconds()
	// Out-of-order chunks as large as Prometheus allows (default 32 samples): backfills and
	// corrections land there, and blocks compacted from them keep their chunks.
	o.OutOfOrderCapMax = 255
	// Compaction joins small chunks (rechunk.go).
	o.NewCompactorFunc = newCompactor
	// Blocks written beside the DB (WriteBlock) are picked up at the next reload.
	o.BlockReloadInterval = blockReloadInterval
	// As Prometheus does: blocks grow up to a tenth of the retention, at most 31 days.
	maxBlock := min(opts.Retention/10, 31*24*time.Hour)
	if maxBlock > 2*time.Hour {
		o.MaxBlockDuration = maxBlock.Milliseconds()
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = slog.New(overlapHandler{logger.Handler()}).With("component", "tsdb")
	db, err := promtsdb.Open(opts.Dir, logger, reg, o, nil)
	if err != nil {
		return nil, fmt.Errorf("open TSDB in %s: %w", opts.Dir, err)
	}
	db.DisableCompactions() // compactLoop compacts, under writeMu
	d := &DB{db: db, logger: logger, stop: make(chan struct{}), loopDone: make(chan struct{})}
	d.writes.replayed = headSpan(db.Head())
	d.autoCompact.Store(true)
	go d.compactLoop()
	return d, nil
}

// compactLoop compacts what is due every compactInterval, as Prometheus' own loop would, but
// never while an appender holds samples (writeMu).
func (d *DB) compactLoop() {
	defer close(d.loopDone)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-d.stop
		cancel()
	}()
	tick := time.NewTicker(compactInterval)
	defer tick.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-tick.C:
		}
		if !d.autoCompact.Load() {
			continue
		}
		d.writeMu.Lock()
		err := d.db.Compact(ctx)
		d.writeMu.Unlock()
		if err != nil && ctx.Err() == nil {
			d.logger.Error("compaction failed", "err", err)
		}
	}
}

// Appender returns a new appender. Samples become visible and durable on Commit. From its first
// sample to Commit or Rollback no compaction runs (DB.writeMu).
func (d *DB) Appender(ctx context.Context) storage.Appender {
	return &lockedAppender{db: d.db, ctx: ctx, mu: &d.writeMu, writes: &d.writes, span: emptySpan, tiers: newTierSpans()}
}

// AppenderV2 returns a new appender of Prometheus' next append interface, held apart from
// compaction as Appender is.
func (d *DB) AppenderV2(ctx context.Context) storage.AppenderV2 {
	return &lockedAppenderV2{db: d.db, ctx: ctx, mu: &d.writeMu, writes: &d.writes, span: emptySpan, tiers: newTierSpans()}
}

// Querier returns a querier over [mint, maxt] in milliseconds.
func (d *DB) Querier(mint, maxt int64) (storage.Querier, error) { return d.db.Querier(mint, maxt) }

// ChunkQuerier returns a chunk querier over [mint, maxt] in milliseconds.
func (d *DB) ChunkQuerier(mint, maxt int64) (storage.ChunkQuerier, error) {
	return d.db.ChunkQuerier(mint, maxt)
}

// Generation identifies what is stored over [mint, maxt] (ms, inclusive): the persisted blocks
// that overlap it, with their tombstone counts, and, where the head or the out-of-order head may
// hold some of the range, the last commit of this DB that wrote a sample into the range's UTC
// days. Blocks never change once written (a compaction, WriteBlock or a correction makes new
// ones) and the heads change only by commits, so while Generation returns the same value a
// querier over the range returns the same samples (query.Generations). It is false when the
// heads may hold samples of the range written before this DB was opened (replayed from the
// write-ahead logs): no commit of this DB accounts for them.
func (d *DB) Generation(mint, maxt int64) (string, bool) { return d.generation(mint, maxt, -1) }

// TierGeneration is Generation for the samples of one derived tier alone, named by its suffix
// (":sum1h", ":sum1d"): in the heads, only commits that wrote samples of that tier into the
// range's days change it. The suffix RawSuffix names the usage series' 1-minute samples, kept
// per UTC hour: only commits of such samples into the range's hours change it. Any other
// suffix gives Generation.
func (d *DB) TierGeneration(mint, maxt int64, suffix string) (string, bool) {
	tier := slices.Index(tierSuffixes[:], suffix)
	if suffix == RawSuffix {
		tier = rawTier
	}
	return d.generation(mint, maxt, tier)
}

// RawSuffix names the usage series' 1-minute samples in TierGeneration: they have no suffix.
const RawSuffix = ""

func (d *DB) generation(mint, maxt int64, tier int) (string, bool) {
	h := d.db.Head()
	inHead := h.MinTime() <= maxt || (h.MinOOOTime() <= maxt && h.MaxOOOTime() >= mint)
	var b strings.Builder
	if inHead {
		seq, ok := d.writes.last(mint, maxt, tier)
		if !ok {
			return "", false
		}
		b.WriteString("w")
		b.WriteString(strconv.FormatUint(seq, 10))
		b.WriteByte(' ')
	}
	for _, bl := range d.db.Blocks() {
		m := bl.Meta()
		if m.MaxTime <= mint || m.MinTime > maxt { // a block holds [MinTime, MaxTime)
			continue
		}
		b.WriteString(m.ULID.String())
		b.WriteByte('.')
		b.WriteString(strconv.FormatUint(m.Stats.NumTombstones, 10))
		b.WriteByte(' ')
	}
	return b.String(), true
}

const dayMs = 24 * 60 * 60 * 1000

// headSpan is the span the head and the out-of-order head may hold samples in.
func headSpan(h *promtsdb.Head) span {
	sp := emptySpan
	if h.NumSeries() > 0 && h.MinTime() <= h.MaxTime() {
		sp.add(h.MinTime())
		sp.add(h.MaxTime())
	}
	if h.MinOOOTime() <= h.MaxOOOTime() {
		sp.add(h.MinOOOTime())
		sp.add(h.MaxOOOTime())
	}
	return sp
}

// writeLog numbers the commits of a DB and keeps, per UTC day, the number of the last one that
// wrote a sample into it: what Generation tells of the heads.
type writeLog struct {
	mu    sync.Mutex
	seq   uint64
	byDay map[int64]uint64
	// byTier[k] is byDay for the samples of derived tier k alone (tierSuffixes): a commit of
	// 1-minute samples or gauges does not change a day of the hourly tier.
	byTier [len(tierSuffixes)]map[int64]uint64
	// byRawHour is, per UTC hour, the last commit that wrote a 1-minute sample of a usage series
	// (series.Usage) into it: the collector's, every cycle, into the current hour.
	byRawHour map[int64]uint64
	// replayed is the span of the samples the heads held when the DB was opened (replayed
	// from the write-ahead logs): no commit of this DB accounts for them.
	replayed span
}

// span is a range of sample timestamps (ms, inclusive); empty while min > max.
type span struct{ min, max int64 }

var emptySpan = span{math.MaxInt64, math.MinInt64}

func (s *span) add(t int64) {
	s.min, s.max = min(s.min, t), max(s.max, t)
}

func (s span) overlaps(mint, maxt int64) bool {
	return s.min <= s.max && s.min <= maxt && s.max >= mint
}

// committed records a commit of samples over sp, of which those of derived tier k over
// tiers[k]. Called after the commit, so that a Generation taken before a querier never names a
// commit the querier may miss.
func (w *writeLog) committed(sp span, tiers *tierSpans) {
	if sp.min > sp.max {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.byDay == nil {
		w.byDay = map[int64]uint64{}
	}
	w.seq++
	for day := floorTo(sp.min, dayMs); day <= sp.max; day += dayMs {
		w.byDay[day] = w.seq
	}
	for k := range tierSuffixes {
		ts := tiers[k]
		if ts.min > ts.max {
			continue
		}
		if w.byTier[k] == nil {
			w.byTier[k] = map[int64]uint64{}
		}
		for day := floorTo(ts.min, dayMs); day <= ts.max; day += dayMs {
			w.byTier[k][day] = w.seq
		}
	}
	if rs := tiers[rawTier]; rs.min <= rs.max {
		if w.byRawHour == nil {
			w.byRawHour = map[int64]uint64{}
		}
		for h := floorTo(rs.min, hourMs); h <= rs.max; h += hourMs {
			w.byRawHour[h] = w.seq
		}
	}
}

const hourMs = 60 * 60 * 1000

// tierSuffixes are the name suffixes of the derived tiers whose commits the write log also
// keeps apart (query.HourlySuffix, query.DailySuffix).
var tierSuffixes = [...]string{":sum1h", ":sum1d"}

// rawTier is the index in tierSpans of the usage series' 1-minute samples.
const rawTier = len(tierSuffixes)

// usageNames are the usage series (series.Usage), whose 1-minute samples are rawTier.
var usageNames = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range series.Usage {
		m[n] = true
	}
	return m
}()

// tierOf returns the index in tierSpans of the series l, or -1.
func tierOf(l labels.Labels) int {
	name := l.Get(labels.MetricName)
	for k, suf := range tierSuffixes {
		if strings.HasSuffix(name, suf) {
			return k
		}
	}
	if usageNames[name] {
		return rawTier
	}
	return -1
}

// tierSpans are the spans of a commit's samples per derived tier, and of the usage series'
// 1-minute samples (rawTier).
type tierSpans [len(tierSuffixes) + 1]span

func newTierSpans() tierSpans {
	var t tierSpans
	for k := range t {
		t[k] = emptySpan
	}
	return t
}

func (t *tierSpans) add(l labels.Labels, ts int64) {
	if k := tierOf(l); k >= 0 {
		t[k].add(ts)
	}
}

// flushed forgets the replayed span: the heads' samples are all in blocks now.
func (w *writeLog) flushed() {
	w.mu.Lock()
	w.replayed = emptySpan
	w.mu.Unlock()
}

// last returns the number of the last commit that wrote into the days of [mint, maxt] (tier
// -1) or into those days of derived tier k, and false when the range holds samples replayed at
// open.
func (w *writeLog) last(mint, maxt int64, tier int) (uint64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.replayed.overlaps(mint, maxt) {
		return 0, false
	}
	var seq uint64
	if tier == rawTier {
		for h := floorTo(mint, hourMs); h <= maxt; h += hourMs {
			seq = max(seq, w.byRawHour[h])
		}
		return seq, true
	}
	byDay := w.byDay
	if tier >= 0 {
		byDay = w.byTier[tier]
	}
	for day := floorTo(mint, dayMs); day <= maxt; day += dayMs {
		seq = max(seq, byDay[day])
	}
	return seq, true
}

// StartTime returns the oldest timestamp stored, in milliseconds.
func (d *DB) StartTime() (int64, error) { return d.db.StartTime() }

// overlapHandler demotes Prometheus' warning about overlapping blocks to debug: blocks written
// by WriteBlock overlap others by design (queries and compaction merge them), as after
// promtool's backfills.
type overlapHandler struct{ slog.Handler }

func (h overlapHandler) Handle(ctx context.Context, r slog.Record) error {
	// "Overlapping blocks found during opening" and "... during reloadBlocks".
	if r.Level == slog.LevelWarn && strings.HasPrefix(r.Message, "Overlapping blocks found during") {
		if !h.Handler.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		r.Level = slog.LevelDebug
	}
	return h.Handler.Handle(ctx, r)
}

func (h overlapHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return overlapHandler{h.Handler.WithAttrs(as)}
}

func (h overlapHandler) WithGroup(name string) slog.Handler {
	return overlapHandler{h.Handler.WithGroup(name)}
}

// blockReloadInterval is how often the DB looks for blocks written by WriteBlock (Prometheus'
// default is a minute; a second keeps a derive over old history at collection speed).
const blockReloadInterval = time.Second

// ErrOverlapsHead reports a block that would overlap the head's in-order samples.
var ErrOverlapsHead = errors.New("block would overlap the TSDB head")

// WriteBlock writes the samples fn appends, all stamped before maxt, as one persisted block in
// the DB's directory and waits until queries see it, as promtool's create-blocks-from does: for
// samples older than the out-of-order window, which the head refuses. Samples of one series
// must be appended in time order. Queries and compaction merge the block with any it overlaps.
//
// The block must lie before the head: on restart Prometheus drops the WAL's in-order samples
// older than the newest block's end. When maxt reaches into the head (a large backfill not yet
// compacted), the head is compacted first; if it still overlaps, ErrOverlapsHead.
func (d *DB) WriteBlock(ctx context.Context, maxt int64, fn func(app storage.Appender) error) error {
	if maxt >= d.db.Head().MinTime() {
		if err := d.compact(ctx); err != nil {
			return fmt.Errorf("compact the head before writing a block: %w", err)
		}
		if hm := d.db.Head().MinTime(); maxt >= hm {
			return fmt.Errorf("%w: block ends at %d, head starts at %d", ErrOverlapsHead, maxt, hm)
		}
	}
	tmp, err := os.MkdirTemp(d.db.Dir(), "block-*.tmp-for-creation")
	if err != nil {
		return fmt.Errorf("make a directory for a new block: %w", err)
	}
	defer os.RemoveAll(tmp)
	// The writer's head refuses samples more than half its chunk range before the first one
	// appended (and, for a later appender, before its newest): with Prometheus' 2 hours, the
	// Deriver's old hours of a series that starts earlier than the first series appended were
	// refused ("out of bounds"). writeBlockRange takes them in any order of series.
	w, err := promtsdb.NewBlockWriter(d.logger, tmp, writeBlockRange)
	if err != nil {
		return fmt.Errorf("open a block writer: %w", err)
	}
	defer w.Close()
	app := w.Appender(ctx)
	if err := fn(app); err != nil {
		_ = app.Rollback()
		return err
	}
	if err := app.Commit(); err != nil {
		return fmt.Errorf("commit a new block's samples: %w", err)
	}
	id, err := w.Flush(ctx)
	if errors.Is(err, promtsdb.ErrNoSeriesAppended) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("write a new block: %w", err)
	}
	if err := os.Rename(filepath.Join(tmp, id.String()), filepath.Join(d.db.Dir(), id.String())); err != nil {
		return fmt.Errorf("move block %s into the TSDB: %w", id, err)
	}
	// Loaded now rather than at the next periodic reload, then found (or already merged into a
	// bigger block by compaction).
	if err := d.loadBlocks(ctx); err != nil {
		return err
	}
	for _, b := range d.db.Blocks() {
		if slices.Contains(b.Meta().Compaction.Sources, id) {
			return nil
		}
	}
	return fmt.Errorf("block %s was not loaded", id)
}

// writeBlockRange is the chunk range of WriteBlock's block writer: wider than any block it
// writes (~34 years), so that its head takes every sample whatever the order of the series.
const writeBlockRange = int64(1) << 40

// Close writes everything the heads hold (Flush) into blocks and closes the TSDB, so that
// after a clean shutdown the blocks alone hold every sample: read-only tools (promtool tsdb
// dump, OpenReadOnly) and backups of the block directories miss nothing.
func (d *DB) Close() error {
	d.stopOnce.Do(func() { close(d.stop) })
	<-d.loopDone
	start := time.Now()
	d.logger.Info("writing the heads into blocks before closing")
	ferr := d.Flush(context.Background())
	if ferr != nil {
		d.logger.Warn("writing the heads into blocks failed; the next start replays the write-ahead log", "err", ferr)
	} else {
		d.logger.Info("heads written into blocks", "duration", time.Since(start).Round(time.Millisecond).String())
	}
	err := d.db.Close()
	d.compactions.Wait()
	if err != nil {
		return errors.Join(ferr, fmt.Errorf("close TSDB: %w", err))
	}
	return ferr
}

// Flush persists the out-of-order head (the samples rewritten behind the head by late-data
// corrections and backfills) and then the whole in-order head as blocks, and truncates the
// write-ahead logs they came from. The collector calls it after a one-shot backfill; Close
// calls it on shutdown.
func (d *DB) Flush(ctx context.Context) error {
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	if err := d.db.CompactOOOHead(ctx); err != nil {
		return fmt.Errorf("compact the out-of-order head: %w", err)
	}
	// The in-order head, one block per 2-hour range (the head's chunk range), aligned as the
	// leveled compactor cuts them, so that these blocks still merge into larger ones.
	h := d.db.Head()
	if h.NumSeries() == 0 || h.MinTime() > h.MaxTime() {
		d.writes.flushed()
		return nil
	}
	step := promtsdb.DefaultBlockDuration
	for h.NumSeries() > 0 && h.MinTime() <= h.MaxTime() {
		if err := ctx.Err(); err != nil {
			return err
		}
		t := floorTo(h.MinTime(), step)
		if err := d.db.CompactHead(promtsdb.NewRangeHeadWithIsolationDisabled(h, t, t+step-1)); err != nil {
			return fmt.Errorf("compact the head: %w", err)
		}
		if h.MinTime() <= t+step-1 {
			return fmt.Errorf("compact the head: its start stayed at %d after persisting [%d, %d]", h.MinTime(), t, t+step-1)
		}
	}
	d.writes.flushed()
	return nil
}

// floorTo rounds t down to a multiple of step (t may be negative).
func floorTo(t, step int64) int64 {
	q := t / step
	if t%step != 0 && t < 0 {
		q--
	}
	return q * step
}

// Compact persists the head's full blocks now and waits until it is done, instead of leaving
// it to the background loop. Bulk loads (and tests that measure memory) call it, then
// DisableCompactions, so that no compaction runs while they measure.
func (d *DB) Compact(ctx context.Context) error {
	if err := d.compact(ctx); err != nil {
		return fmt.Errorf("compact TSDB: %w", err)
	}
	return nil
}

// compact runs Prometheus' Compact, but stops waiting when ctx ends. Compact first takes the
// compaction lock, without looking at ctx; the DB's own background compaction holds that lock for
// as long as it runs (after a large backfill, the out-of-order head becomes hundreds of blocks, a
// minute or more), and only Close cancels it, which the caller's shutdown cannot reach while it
// waits here. A call given up on goes on in the background: once Close has stopped the DB it
// takes the lock, finds the DB stopping and returns; Close waits for it.
func (d *DB) compact(ctx context.Context) error {
	done := make(chan error, 1)
	d.compactions.Add(1)
	go func() {
		defer d.compactions.Done()
		d.writeMu.Lock()
		defer d.writeMu.Unlock()
		done <- d.db.Compact(ctx)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// DisableCompactions stops background compaction until EnableCompactions.
func (d *DB) DisableCompactions() { d.autoCompact.Store(false) }

// EnableCompactions lets background compaction run again.
func (d *DB) EnableCompactions() { d.autoCompact.Store(true) }

// ReadOnly is a read-only view of a TSDB directory that a running server may be writing at the
// same time: it takes no lock and writes nothing into the directory (Prometheus' DBReadOnly; the
// WAL is replayed into a temporary directory elsewhere). Samples appended out of order that are
// not compacted yet are not seen.
type ReadOnly struct {
	db      *promtsdb.DBReadOnly
	sandbox string
}

// OpenReadOnly opens dir for reading.
func OpenReadOnly(logger *slog.Logger, dir string) (*ReadOnly, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	sandbox, err := os.MkdirTemp("", "cygni-tsdb-ro-")
	if err != nil {
		return nil, fmt.Errorf("make a sandbox for the read-only TSDB: %w", err)
	}
	db, err := promtsdb.OpenDBReadOnly(dir, sandbox, slog.New(overlapHandler{logger.Handler()}).With("component", "tsdb"))
	if err != nil {
		_ = os.RemoveAll(sandbox)
		return nil, fmt.Errorf("open TSDB in %s read-only: %w", dir, err)
	}
	return &ReadOnly{db: db, sandbox: sandbox}, nil
}

// Querier implements storage.Queryable.
func (r *ReadOnly) Querier(mint, maxt int64) (storage.Querier, error) {
	return r.db.Querier(mint, maxt)
}

// Close releases the view and removes its sandbox.
func (r *ReadOnly) Close() error {
	err := r.db.Close()
	return errors.Join(err, os.RemoveAll(r.sandbox))
}

// lockedAppender is a storage.Appender that holds DB.writeMu shared from its first sample to
// Commit or Rollback, so that no compaction runs over samples it has not committed. It opens
// Prometheus' appender only then, under the lock: an initialised head registers an appender with
// its isolation at creation, and a compaction waits for every registered appender, so one opened
// before the lock would wait on an appender that waits on the lock.
type lockedAppender struct {
	db     *promtsdb.DB
	ctx    context.Context
	mu     *sync.RWMutex
	writes *writeLog
	span   span      // of the samples appended since the last Commit or Rollback
	tiers  tierSpans // of those of each derived tier
	opts   *storage.AppendOptions
	inner  storage.Appender // nil until the first sample, and again after Commit or Rollback
}

func (a *lockedAppender) app() storage.Appender {
	if a.inner == nil {
		a.mu.RLock()
		a.inner = a.db.Appender(a.ctx)
		if a.opts != nil {
			a.inner.SetOptions(a.opts)
		}
	}
	return a.inner
}

// end runs Commit or Rollback on the open appender, if any, and releases the lock.
func (a *lockedAppender) end(fn func(storage.Appender) error) error {
	if a.inner == nil {
		return nil
	}
	defer a.mu.RUnlock()
	inner := a.inner
	a.inner = nil
	return fn(inner)
}

func (a *lockedAppender) SetOptions(opts *storage.AppendOptions) {
	a.opts = opts
	if a.inner != nil {
		a.inner.SetOptions(opts)
	}
}

func (a *lockedAppender) Append(ref storage.SeriesRef, l labels.Labels, t int64, v float64) (storage.SeriesRef, error) {
	a.span.add(t)
	a.tiers.add(l, t)
	return a.app().Append(ref, l, t, v)
}

func (a *lockedAppender) AppendHistogram(ref storage.SeriesRef, l labels.Labels, t int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (storage.SeriesRef, error) {
	a.span.add(t)
	a.tiers.add(l, t)
	return a.app().AppendHistogram(ref, l, t, h, fh)
}

func (a *lockedAppender) AppendExemplar(ref storage.SeriesRef, l labels.Labels, e exemplar.Exemplar) (storage.SeriesRef, error) {
	return a.app().AppendExemplar(ref, l, e)
}

func (a *lockedAppender) UpdateMetadata(ref storage.SeriesRef, l labels.Labels, m metadata.Metadata) (storage.SeriesRef, error) {
	return a.app().UpdateMetadata(ref, l, m)
}

func (a *lockedAppender) AppendSTZeroSample(ref storage.SeriesRef, l labels.Labels, t, st int64) (storage.SeriesRef, error) {
	a.span.add(st)
	a.tiers.add(l, st)
	return a.app().AppendSTZeroSample(ref, l, t, st)
}

func (a *lockedAppender) AppendHistogramSTZeroSample(ref storage.SeriesRef, l labels.Labels, t, st int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (storage.SeriesRef, error) {
	a.span.add(st)
	a.tiers.add(l, st)
	return a.app().AppendHistogramSTZeroSample(ref, l, t, st, h, fh)
}

// Commit commits, then records the commit's span in the write log (Generation), whatever
// Commit returned: a failed commit may have written some of its samples.
func (a *lockedAppender) Commit() error {
	err := a.end(storage.Appender.Commit)
	a.writes.committed(a.span, &a.tiers)
	a.span, a.tiers = emptySpan, newTierSpans()
	return err
}

func (a *lockedAppender) Rollback() error {
	a.span, a.tiers = emptySpan, newTierSpans()
	return a.end(storage.Appender.Rollback)
}

// lockedAppenderV2 is lockedAppender for storage.AppenderV2.
type lockedAppenderV2 struct {
	db     *promtsdb.DB
	ctx    context.Context
	mu     *sync.RWMutex
	writes *writeLog
	span   span
	tiers  tierSpans
	inner  storage.AppenderV2
}

func (a *lockedAppenderV2) Append(ref storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AppendV2Options) (storage.SeriesRef, error) {
	a.span.add(t)
	a.tiers.add(ls, t)
	if st != 0 {
		a.span.add(st)
		a.tiers.add(ls, st)
	}
	if a.inner == nil {
		a.mu.RLock()
		a.inner = a.db.AppenderV2(a.ctx)
	}
	return a.inner.Append(ref, ls, st, t, v, h, fh, opts)
}

func (a *lockedAppenderV2) end(fn func(storage.AppenderV2) error) error {
	if a.inner == nil {
		return nil
	}
	defer a.mu.RUnlock()
	inner := a.inner
	a.inner = nil
	return fn(inner)
}

func (a *lockedAppenderV2) Commit() error {
	err := a.end(storage.AppenderV2.Commit)
	a.writes.committed(a.span, &a.tiers)
	a.span, a.tiers = emptySpan, newTierSpans()
	return err
}

func (a *lockedAppenderV2) Rollback() error {
	a.span, a.tiers = emptySpan, newTierSpans()
	return a.end(storage.AppenderV2.Rollback)
}
