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
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/storage"
	promtsdb "github.com/prometheus/prometheus/tsdb"
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
}

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
	// As Prometheus does: blocks grow up to a tenth of the retention, at most 31 days.
	maxBlock := min(opts.Retention/10, 31*24*time.Hour)
	if maxBlock > 2*time.Hour {
		o.MaxBlockDuration = maxBlock.Milliseconds()
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = slog.New(expectedWarnings{logger.Handler()}).With("component", "tsdb")
	db, err := promtsdb.Open(opts.Dir, logger, reg, o, nil)
	if err != nil {
		return nil, fmt.Errorf("open TSDB in %s: %w", opts.Dir, err)
	}
	return &DB{db: db, logger: logger}, nil
}

// Appender returns a new appender. Samples become visible and durable on Commit.
func (d *DB) Appender(ctx context.Context) storage.Appender { return d.db.Appender(ctx) }

// AppenderV2 returns a new appender of Prometheus' next append interface.
func (d *DB) AppenderV2(ctx context.Context) storage.AppenderV2 { return d.db.AppenderV2(ctx) }

// Querier returns a querier over [mint, maxt] in milliseconds.
func (d *DB) Querier(mint, maxt int64) (storage.Querier, error) { return d.db.Querier(mint, maxt) }

// ChunkQuerier returns a chunk querier over [mint, maxt] in milliseconds.
func (d *DB) ChunkQuerier(mint, maxt int64) (storage.ChunkQuerier, error) {
	return d.db.ChunkQuerier(mint, maxt)
}

// StartTime returns the oldest timestamp stored, in milliseconds.
func (d *DB) StartTime() (int64, error) { return d.db.StartTime() }

// Close flushes and closes the TSDB.
func (d *DB) Close() error {
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("close TSDB: %w", err)
	}
	return nil
}

// Compact persists the head's full blocks now and waits until it is done, instead of leaving
// it to the background loop. Bulk loads (and tests that measure memory) call it, then
// DisableCompactions, so that no compaction runs while they measure.
func (d *DB) Compact(ctx context.Context) error {
	if err := d.db.Compact(ctx); err != nil {
		return fmt.Errorf("compact TSDB: %w", err)
	}
	return nil
}

// DisableCompactions stops background compaction until EnableCompactions.
func (d *DB) DisableCompactions() { d.db.DisableCompactions() }

// EnableCompactions lets background compaction run again.
func (d *DB) EnableCompactions() { d.db.EnableCompactions() }

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
	db, err := promtsdb.OpenDBReadOnly(dir, sandbox, logger.With("component", "tsdb"))
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

// expectedWarnings demotes to debug the TSDB warnings that the out-of-order window makes part of
// normal operation: blocks cut from the out-of-order head overlap the in-order blocks of the
// same range until the next compaction merges them ("Overlapping blocks found during
// reloadBlocks", logged once per reload, hundreds of lines after a backfill).
type expectedWarnings struct{ slog.Handler }

func (h expectedWarnings) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn && r.Message == "Overlapping blocks found during reloadBlocks" {
		if !h.Handler.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		r.Level = slog.LevelDebug
	}
	return h.Handler.Handle(ctx, r)
}

func (h expectedWarnings) WithAttrs(as []slog.Attr) slog.Handler {
	return expectedWarnings{h.Handler.WithAttrs(as)}
}

func (h expectedWarnings) WithGroup(name string) slog.Handler {
	return expectedWarnings{h.Handler.WithGroup(name)}
}
