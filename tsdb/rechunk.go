package tsdb

import (
	"context"
	"log/slog"
	"math"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/storage"
	promtsdb "github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
)

// Chunks that compaction carries over as they are stay as small as the heads cut them: a head
// never lets a chunk cross a 2-hour block boundary, and a backfill or a correction lands in
// out-of-order chunks persisted 2 hours at a time. So the hourly tier held 1–2 samples per chunk
// and the daily tier 1, each chunk with its own header, checksum and index entry (~30 bytes for
// an 8-byte sample) and a chunk read per sample on every query; 1-minute series lost a third of
// their chunk fill to the same cuts. When blocks are compacted into a larger one, the compactor
// here joins each series' consecutive small float chunks into chunks of up to rechunkSamples
// samples (re-encoded, samples unchanged); any other chunk is carried over as before.

// rechunkSamples is the fill a joined chunk aims at: Prometheus' own target for head chunks.
const rechunkSamples = 120

// newCompactor is Prometheus' leveled compactor with the default merge (overlapping chunks
// merged) followed by the joining of small chunks.
func newCompactor(ctx context.Context, r prometheus.Registerer, l *slog.Logger, ranges []int64, pool chunkenc.Pool, opts *promtsdb.Options) (promtsdb.Compactor, error) {
	merge := storage.NewCompactingChunkSeriesMerger(storage.ChainedSeriesMerge)
	return promtsdb.NewLeveledCompactorWithOptions(ctx, r, l, ranges, pool, promtsdb.LeveledCompactorOptions{
		MaxBlockChunkSegmentSize:    opts.MaxBlockChunkSegmentSize,
		EnableOverlappingCompaction: opts.EnableOverlappingCompaction,
		PD:                          opts.PostingsDecoderFactory,
		UseUncachedIO:               opts.UseUncachedIO,
		BlockExcludeFilter:          opts.BlockCompactionExcludeFunc,
		MergeFunc: func(series ...storage.ChunkSeries) storage.ChunkSeries {
			s := merge(series...)
			return &storage.ChunkSeriesEntry{Lset: s.Labels(), ChunkIteratorFn: func(chunks.Iterator) chunks.Iterator {
				return &rechunker{in: s.Iterator(nil)}
			}}
		},
	})
}

// rechunker joins consecutive EncXOR chunks of in into chunks of up to rechunkSamples samples.
type rechunker struct {
	in     chunks.Iterator
	peeked *chunks.Meta
	cur    chunks.Meta
	err    error
	it     chunkenc.Iterator
}

func (r *rechunker) At() chunks.Meta { return r.cur }
func (r *rechunker) Err() error      { return r.err }

// pull returns the next chunk of in.
func (r *rechunker) pull() (chunks.Meta, bool) {
	if r.peeked != nil {
		m := *r.peeked
		r.peeked = nil
		return m, true
	}
	if !r.in.Next() {
		r.err = r.in.Err()
		return chunks.Meta{}, false
	}
	return r.in.At(), true
}

// joinable reports whether m is a float chunk of plain XOR encoding (no start timestamps) that
// can take more samples.
func joinable(m chunks.Meta) bool {
	return m.Chunk != nil && m.Chunk.Encoding() == chunkenc.EncXOR && m.Chunk.NumSamples() < rechunkSamples
}

func (r *rechunker) Next() bool {
	if r.err != nil {
		return false
	}
	first, ok := r.pull()
	if !ok {
		return false
	}
	if !joinable(first) {
		r.cur = first
		return true
	}
	next, ok := r.pull()
	if !ok || !joinable(next) || first.Chunk.NumSamples()+next.Chunk.NumSamples() > rechunkSamples || next.MinTime <= first.MaxTime {
		if ok {
			r.peeked = &next
		}
		r.cur = first
		return r.err == nil
	}
	// Join first, next and the chunks after them while they fit.
	c := chunkenc.NewXORChunk()
	app, err := c.Appender()
	if err != nil {
		r.err = err
		return false
	}
	joined := chunks.Meta{Chunk: c, MinTime: math.MaxInt64, MaxTime: math.MinInt64}
	add := func(m chunks.Meta) bool {
		r.it = m.Chunk.Iterator(r.it)
		for r.it.Next() == chunkenc.ValFloat {
			t, v := r.it.At()
			app.Append(0, t, v)
			joined.MinTime, joined.MaxTime = min(joined.MinTime, t), max(joined.MaxTime, t)
		}
		if err := r.it.Err(); err != nil {
			r.err = err
			return false
		}
		return true
	}
	if !add(first) || !add(next) {
		return false
	}
	for {
		m, ok := r.pull()
		if !ok {
			break
		}
		if !joinable(m) || c.NumSamples()+m.Chunk.NumSamples() > rechunkSamples || m.MinTime <= joined.MaxTime {
			r.peeked = &m
			break
		}
		if !add(m) {
			return false
		}
	}
	if r.err != nil {
		return false
	}
	r.cur = joined
	return true
}
