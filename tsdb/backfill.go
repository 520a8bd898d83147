package tsdb

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/storage"
	promtsdb "github.com/prometheus/prometheus/tsdb"
)

// BackfillRange is the span of the blocks a Backfill writes: Prometheus' own first block range,
// aligned as the head's blocks are, so that compaction merges them level by level like any
// others.
const BackfillRange = promtsdb.DefaultBlockDuration

// Backfill writes samples that lie before the head as persisted blocks, one per aligned
// BackfillRange, instead of through the write-ahead log and the out-of-order head: what a
// collector reading history writes. Its appenders may be used concurrently; samples of one
// series must be appended in time order (a sample behind its series' last one is refused with
// storage.ErrOutOfOrderSample). Flush hands the ranges the caller has passed to a goroutine that
// writes and loads their blocks while the caller goes on reading; nothing is durable or visible
// before Loaded (or Wait) reports them loaded.
type Backfill struct {
	db *DB

	mu       sync.Mutex
	writers  map[int64]*rangeWriter // by range start (ms), taking samples
	inflight map[int64]bool         // ranges being written and loaded
	err      error                  // the first failed flush
	closed   bool
	flushes  sync.WaitGroup
}

type rangeWriter struct {
	dir string
	w   *promtsdb.BlockWriter
}

// HeadMaxTime is the newest timestamp the head holds in order (math.MinInt64 while it holds
// none): the head takes samples in order down to about half a block range before it.
func (d *DB) HeadMaxTime() int64 { return d.db.Head().MaxTime() }

// NewBackfill starts a backfill. Close it when done: it discards what was never flushed.
func (d *DB) NewBackfill() *Backfill {
	return &Backfill{db: d, writers: map[int64]*rangeWriter{}, inflight: map[int64]bool{}}
}

func rangeStart(t int64) int64 { return floorTo(t, BackfillRange) }

// writer returns the writer of the range holding t, opening it on first use.
func (b *Backfill) writer(t int64) (*rangeWriter, error) {
	start := rangeStart(t)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, errors.New("tsdb: append to a closed backfill")
	}
	if rw, ok := b.writers[start]; ok {
		return rw, nil
	}
	dir, err := os.MkdirTemp(b.db.db.Dir(), "block-*.tmp-for-creation")
	if err != nil {
		return nil, fmt.Errorf("make a directory for a new block: %w", err)
	}
	// The writer's head refuses samples more than half its chunk range before the first one
	// appended or, for a later appender, before its newest; twice the range takes the whole range
	// in any order of series and batches.
	w, err := promtsdb.NewBlockWriter(b.db.logger, dir, 2*BackfillRange)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("open a block writer: %w", err)
	}
	rw := &rangeWriter{dir: dir, w: w}
	b.writers[start] = rw
	return rw, nil
}

// Appender returns an appender that routes each sample to the block of its range. The series
// references it returns are its own: pass them back to this appender only.
func (b *Backfill) Appender(ctx context.Context) storage.Appender {
	return &backfillAppender{b: b, ctx: ctx, apps: map[int64]storage.Appender{}}
}

// OldestPending returns the start (ms) of the oldest range whose block is not loaded yet.
func (b *Backfill) OldestPending() (int64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	oldest, ok := int64(math.MaxInt64), false
	for s := range b.writers {
		oldest, ok = min(oldest, s), true
	}
	for s := range b.inflight {
		oldest, ok = min(oldest, s), true
	}
	return oldest, ok
}

// Flush hands every range that ends at or before until (ms) to a goroutine that writes its
// block, moves it into the TSDB and loads it, once the flush handed before it is done (so at
// most one is under way: a reader's chunk is read while the previous chunk's blocks are
// written, and after Flush returns every range handed before is loaded). No appender may add
// samples to those ranges any more. It returns the error of an earlier flush, if one failed.
func (b *Backfill) Flush(ctx context.Context, until int64) error {
	b.flushes.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return b.err
	}
	var starts []int64
	for s := range b.writers {
		if s+BackfillRange <= until {
			starts = append(starts, s)
		}
	}
	if len(starts) == 0 {
		return nil
	}
	slices.Sort(starts)
	rws := make([]*rangeWriter, len(starts))
	for i, s := range starts {
		rws[i] = b.writers[s]
		delete(b.writers, s)
		b.inflight[s] = true
	}
	b.flushes.Add(1)
	go func() {
		defer b.flushes.Done()
		err := b.flush(ctx, rws)
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, s := range starts {
			delete(b.inflight, s)
		}
		if err != nil && b.err == nil {
			b.err = err
		}
	}()
	return nil
}

// flush writes, moves and loads the blocks of rws.
func (b *Backfill) flush(ctx context.Context, rws []*rangeWriter) error {
	n := 0
	var err error
	for _, rw := range rws {
		var id ulid.ULID
		if err == nil {
			id, err = rw.flush(ctx, b.db.db.Dir())
		} else {
			err = errors.Join(err, rw.w.Close(), os.RemoveAll(rw.dir))
		}
		if id != (ulid.ULID{}) {
			n++
		}
	}
	if n > 0 {
		// Loaded even after a failure: the blocks moved in are in the TSDB.
		err = errors.Join(err, b.db.loadBlocks(ctx))
	}
	return err
}

// loadBlocks makes queries see the blocks written into the directory now rather than at the
// next periodic reload (blockReloadInterval). Prometheus exports no reload of its own; its
// compaction of the out-of-order head reloads the blocks whatever it found to compact, so that
// is what runs here, under writeMu as every compaction does.
func (d *DB) loadBlocks(ctx context.Context) error {
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	if err := d.db.CompactOOOHead(ctx); err != nil {
		return fmt.Errorf("load the new blocks: %w", err)
	}
	return nil
}

func (rw *rangeWriter) flush(ctx context.Context, dbDir string) (ulid.ULID, error) {
	defer os.RemoveAll(rw.dir)
	defer rw.w.Close()
	id, err := rw.w.Flush(ctx)
	if errors.Is(err, promtsdb.ErrNoSeriesAppended) {
		return ulid.ULID{}, nil
	}
	if err != nil {
		return ulid.ULID{}, fmt.Errorf("write a backfill block: %w", err)
	}
	if err := os.Rename(filepath.Join(rw.dir, id.String()), filepath.Join(dbDir, id.String())); err != nil {
		return ulid.ULID{}, fmt.Errorf("move block %s into the TSDB: %w", id, err)
	}
	return id, nil
}

// Loaded reports whether every range handed to Flush has its block written and loaded; an
// error if a flush failed.
func (b *Backfill) Loaded() (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.inflight) == 0, b.err
}

// Wait waits until every range handed to Flush is written and loaded, and returns the first
// error of a flush.
func (b *Backfill) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { b.flushes.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// Close waits for the flushes under way and discards every range not handed to Flush.
func (b *Backfill) Close() error {
	b.flushes.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	var errs []error
	for s, rw := range b.writers {
		errs = append(errs, rw.w.Close(), os.RemoveAll(rw.dir))
		delete(b.writers, s)
	}
	return errors.Join(errs...)
}

// backfillAppender routes samples to one appender per range, each on that range's block writer.
// It remembers the series it was given so that a caller passing its references back skips the
// label lookups in each range's head.
type backfillAppender struct {
	b    *Backfill
	ctx  context.Context
	apps map[int64]storage.Appender // by range start
	// series[ref-1] is a series this appender returned ref for, with its reference in each range.
	series []backfillSeries
}

type backfillSeries struct {
	lset labels.Labels
	refs []rangeRef // usually one or two ranges
}

type rangeRef struct {
	start int64
	ref   storage.SeriesRef
}

func (a *backfillAppender) Append(ref storage.SeriesRef, l labels.Labels, t int64, v float64) (storage.SeriesRef, error) {
	if ref == 0 || int(ref) > len(a.series) || !labels.Equal(a.series[ref-1].lset, l) {
		a.series = append(a.series, backfillSeries{lset: l})
		ref = storage.SeriesRef(len(a.series))
	}
	s := &a.series[ref-1]
	start := rangeStart(t)
	app, ok := a.apps[start]
	if !ok {
		rw, err := a.b.writer(t)
		if err != nil {
			return 0, err
		}
		app = rw.w.Appender(a.ctx)
		a.apps[start] = app
	}
	i := slices.IndexFunc(s.refs, func(r rangeRef) bool { return r.start == start })
	if i < 0 {
		s.refs = append(s.refs, rangeRef{start: start})
		i = len(s.refs) - 1
	}
	r, err := app.Append(s.refs[i].ref, l, t, v)
	if err != nil {
		return ref, err
	}
	s.refs[i].ref = r
	return ref, nil
}

func (a *backfillAppender) Commit() error {
	var errs []error
	for _, app := range a.apps {
		errs = append(errs, app.Commit())
	}
	clear(a.apps)
	return errors.Join(errs...)
}

func (a *backfillAppender) Rollback() error {
	var errs []error
	for _, app := range a.apps {
		errs = append(errs, app.Rollback())
	}
	clear(a.apps)
	return errors.Join(errs...)
}

func (*backfillAppender) SetOptions(*storage.AppendOptions) {}

func (*backfillAppender) AppendExemplar(storage.SeriesRef, labels.Labels, exemplar.Exemplar) (storage.SeriesRef, error) {
	return 0, errors.New("tsdb: a backfill takes float samples only")
}

func (*backfillAppender) AppendHistogram(storage.SeriesRef, labels.Labels, int64, *histogram.Histogram, *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return 0, errors.New("tsdb: a backfill takes float samples only")
}

func (*backfillAppender) AppendHistogramSTZeroSample(storage.SeriesRef, labels.Labels, int64, int64, *histogram.Histogram, *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return 0, errors.New("tsdb: a backfill takes float samples only")
}

func (*backfillAppender) UpdateMetadata(ref storage.SeriesRef, _ labels.Labels, _ metadata.Metadata) (storage.SeriesRef, error) {
	return ref, nil
}

func (*backfillAppender) AppendSTZeroSample(ref storage.SeriesRef, _ labels.Labels, _, _ int64) (storage.SeriesRef, error) {
	return ref, nil
}
