package collector

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/cygni/usage/tsdb"
)

// cell is what the TSDB holds for one series in one period: the sum and number of its samples.
type cell struct {
	sum float64
	n   int
}

type existingSeries struct {
	lset  labels.Labels
	cells []cell // one per period of the chunk
}

// existingData is what the TSDB holds in a chunk, by label hash. It is read once per chunk,
// before any batch appends, and only read afterwards.
type existingData map[uint64][]*existingSeries

func (e existingData) lookup(t *target) []cell {
	for _, s := range e[t.hash] {
		if labels.Equal(s.lset, t.lset) {
			return s.cells
		}
	}
	return nil
}

// readExisting sums the samples of the named usage series already stored in each period
// (end − period, end] of the chunk.
func (c *Collector) readExisting(ctx context.Context, ch chunk, names []string) (existingData, error) {
	mint, maxt := ch.from.UnixMilli()+1, ch.to.UnixMilli()
	q, err := c.opts.Storage.Querier(mint, maxt)
	if err != nil {
		return nil, fmt.Errorf("query stored samples: %w", err)
	}
	defer q.Close()
	m, err := labels.NewMatcher(labels.MatchRegexp, labels.MetricName, strings.Join(names, "|"))
	if err != nil {
		return nil, fmt.Errorf("build series matcher: %w", err)
	}
	ss := q.Select(ctx, false, nil, m)
	out := existingData{}
	np := ch.periods()
	pms := ch.period * 1000
	var it chunkenc.Iterator
	for ss.Next() {
		s := ss.At()
		es := &existingSeries{lset: s.Labels(), cells: make([]cell, np)}
		it = s.Iterator(it)
		for it.Next() == chunkenc.ValFloat {
			t, v := it.At()
			pi := (t - mint) / pms // t in (from, to] → period index
			if pi < 0 || pi >= int64(np) {
				continue
			}
			es.cells[pi].sum += v
			es.cells[pi].n++
		}
		if err := it.Err(); err != nil {
			return nil, fmt.Errorf("read stored samples of %s: %w", es.lset, err)
		}
		h := es.lset.Hash()
		out[h] = append(out[h], es)
	}
	if err := ss.Err(); err != nil {
		return nil, fmt.Errorf("select stored samples: %w", err)
	}
	return out, nil
}

// same reports whether a and b are equal within a relative tolerance of 1e-12.
func same(a, b float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= 1e-12*max(math.Abs(a), math.Abs(b))
}

// appendBatch applies the correction rule to every value of the batch and commits: a period
// seen for the first time gets its value at the period end; a period whose stored sum differs
// gets the difference at end − k ms (k = samples already in the period); an equal one gets
// nothing. With bf the samples go to its blocks instead of the TSDB's head.
func (c *Collector) appendBatch(ctx context.Context, r *batchResult, ch chunk, existing existingData, bf *tsdb.Backfill) (rejectedSamples int, err error) {
	np := ch.periods()
	pms := ch.period * 1000
	first := ch.from.UnixMilli() + pms
	var app storage.Appender
	if bf != nil {
		app = bf.Appender(ctx)
	} else {
		app = c.opts.Storage.Appender(ctx)
	}
	appended, corrections, rejected := 0, 0, 0
	var firstReject error
	for ti, t := range r.targets {
		cells := existing.lookup(t)
		row := r.values[ti*np : (ti+1)*np]
		// A backfill's references are its appender's own: never kept in t.ref, which is the
		// head's.
		ref := t.ref
		if bf != nil {
			ref = 0
		}
		for pi, v := range row {
			if math.IsNaN(v) {
				continue
			}
			ts := first + int64(pi)*pms
			if cells != nil && cells[pi].n > 0 {
				old := cells[pi]
				if same(v, old.sum) {
					continue
				}
				if int64(old.n) >= pms {
					rejected++
					continue
				}
				v -= old.sum
				ts -= int64(old.n)
				corrections++
			}
			r, err := app.Append(ref, t.lset, ts, v)
			switch {
			case err == nil:
				ref = r
				if bf == nil {
					t.ref = r
				}
				appended++
			case errors.Is(err, storage.ErrOutOfBounds), errors.Is(err, storage.ErrTooOldSample),
				errors.Is(err, storage.ErrOutOfOrderSample), errors.Is(err, storage.ErrDuplicateSampleForTimestamp):
				rejected++
				if firstReject == nil {
					firstReject = fmt.Errorf("append %s at %d: %w", t.lset, ts, err)
				}
			default:
				_ = app.Rollback()
				return 0, fmt.Errorf("append %s: %w", t.lset, err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		return 0, fmt.Errorf("commit samples: %w", err)
	}
	c.m.appended.Add(appended)
	c.windowSamples.Add(uint64(appended + corrections))
	c.m.corrections.Add(corrections)
	if rejected > 0 {
		c.m.rejected.Add(rejected)
		c.logger.Warn("TSDB rejected samples (older than the out-of-order window?); they are skipped",
			"rejected", rejected, "first", firstReject)
	}
	return rejected, nil
}
