package tsdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/storage/remote"
	"github.com/prometheus/prometheus/tsdb/fileutil"
	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/prometheus/prometheus/util/compression"

	"github.com/prometheus/prometheus/model/exemplar"
)

// The durable write queue of remote mode.
//
// Why not Prometheus' own remote-write path (tsdb/agent + storage/remote's QueueManager): its
// WAL watcher forwards only samples stamped after the moment it started (wlog.Watcher's
// startTimestamp) and keeps no record of what the store acknowledged. Usage samples are stamped
// at the end of periods that closed minutes to days ago (CloudWatch's delay, backfills, late
// corrections), so it would drop every one of them, and a restart would forget what was queued.
// This queue keeps Prometheus' parts — the WAL segment format (tsdb/wlog), the remote-write
// message (prompb) and its HTTP client with retry classification (storage/remote) — and adds
// the two things the product needs: it sends every record regardless of its timestamps, and it
// records in a file which records the store has acknowledged, so a restart resends exactly the
// unacknowledged ones. A resend writes the same (timestamp, value) again, which both stores
// absorb.
const (
	queueSegmentSize = 16 << 20 // bytes per WAL segment; delivered segments are deleted
	maxRecordSamples = 10000    // samples per WAL record (a large commit is split)
	maxBatchSamples  = 20000    // samples per remote-write request
	positionFile     = "delivered.json"
)

// position is the first record not yet acknowledged: record Records of segment Segment.
type position struct {
	Segment int `json:"segment"`
	Records int `json:"records"`
}

type queue struct {
	logger     *slog.Logger
	dir        string // the WAL segments
	posPath    string
	wl         *wlog.WL
	client     remote.WriteClient
	minB, maxB time.Duration
	ownFirst   int // the first segment this process writes
	lock       fileutil.Releaser
	// readerMetrics counts corrupt records (unregistered: the queue's own metrics say more).
	readerMetrics *wlog.LiveReaderMetrics

	mu               sync.Mutex
	committedRecords uint64 // records this process logged
	committedSamples uint64
	deliveredRecs    uint64 // of those, acknowledged (or refused by the store)
	deliveredSamples uint64
	changed          chan struct{} // closed and replaced on each delivery

	notify chan struct{}
	quit   chan struct{}
	done   chan struct{}
	ctx    context.Context // cancelled on close: ends a request in flight
	cancel context.CancelFunc

	sent, rejected, retries prometheus.Counter
	pending                 prometheus.GaugeFunc
}

func openQueue(logger *slog.Logger, reg prometheus.Registerer, dir string, client remote.WriteClient, minB, maxB time.Duration) (*queue, error) {
	walDir := filepath.Join(dir, "wal")
	if err := os.MkdirAll(walDir, 0o755); err != nil {
		return nil, fmt.Errorf("create the remote-write queue directory: %w", err)
	}
	// One process per queue: a second writer would interleave segments.
	lock, _, err := fileutil.Flock(filepath.Join(dir, "lock"))
	if err != nil {
		return nil, fmt.Errorf("lock the remote-write queue in %s (is another process using this data_dir?): %w", dir, err)
	}
	_, last, err := wlog.Segments(walDir)
	if err != nil {
		_ = lock.Release()
		return nil, fmt.Errorf("list the remote-write queue in %s: %w", walDir, err)
	}
	// wlog starts a new segment after the last one found.
	wl, err := wlog.NewSize(logger, nil, walDir, queueSegmentSize, compression.Snappy)
	if err != nil {
		_ = lock.Release()
		return nil, fmt.Errorf("open the remote-write queue in %s: %w", walDir, err)
	}
	q := &queue{
		logger: logger, dir: walDir, posPath: filepath.Join(dir, positionFile), wl: wl, client: client,
		minB: minB, maxB: maxB, ownFirst: last + 1, lock: lock, readerMetrics: wlog.NewLiveReaderMetrics(nil),
		changed: make(chan struct{}), notify: make(chan struct{}, 1),
		quit: make(chan struct{}), done: make(chan struct{}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cygni_remote_write_samples_sent_total", Help: "Samples the remote store acknowledged.",
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cygni_remote_write_samples_rejected_total", Help: "Samples the remote store refused with a 4xx answer (dropped after isolating them).",
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cygni_remote_write_retries_total", Help: "Remote-write requests retried after a network error, a 5xx or a 429.",
		}),
	}
	q.pending = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cygni_remote_write_pending_samples", Help: "Samples this process committed that the remote store has not acknowledged yet.",
	}, func() float64 { return float64(q.pendingSamples()) })
	if reg != nil {
		reg.MustRegister(q.sent, q.rejected, q.retries, q.pending)
	}
	q.ctx, q.cancel = context.WithCancel(context.Background())
	pos, err := q.readPosition()
	if err != nil {
		_ = wl.Close()
		_ = lock.Release()
		return nil, err
	}
	go q.run(pos)
	return q, nil
}

func (q *queue) readPosition() (position, error) {
	b, err := os.ReadFile(q.posPath)
	if errors.Is(err, os.ErrNotExist) {
		return position{}, nil
	}
	if err != nil {
		return position{}, fmt.Errorf("read the remote-write queue position: %w", err)
	}
	var p position
	if err := json.Unmarshal(b, &p); err != nil {
		// A torn file is older than the segments it names: start from the oldest segment.
		q.logger.Warn("remote-write queue position unreadable; resending the whole queue", "file", q.posPath, "err", err)
		return position{}, nil
	}
	return p, nil
}

// writePosition replaces the position file atomically. It is not fsynced: a machine crash
// that loses it only resends records, which the store absorbs.
func (q *queue) writePosition(p position) error {
	b, _ := json.Marshal(p)
	tmp := q.posPath + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, q.posPath)
}

// commit logs the series as WAL records; when it returns, they survive a crash of the process.
func (q *queue) commit(ts []prompb.TimeSeries) error {
	var recs [][]byte
	var n uint64
	for len(ts) > 0 {
		var part []prompb.TimeSeries
		samples := 0
		for len(ts) > 0 && samples < maxRecordSamples {
			s := ts[0]
			if room := maxRecordSamples - samples; len(s.Samples) > room {
				part = append(part, prompb.TimeSeries{Labels: s.Labels, Samples: s.Samples[:room]})
				ts[0].Samples = s.Samples[room:]
				samples += room
				break
			}
			part = append(part, s)
			samples += len(s.Samples)
			ts = ts[1:]
		}
		b, err := (&prompb.WriteRequest{Timeseries: part}).Marshal()
		if err != nil {
			return fmt.Errorf("encode remote-write record: %w", err)
		}
		recs = append(recs, b)
		n += uint64(samples)
	}
	if len(recs) == 0 {
		return nil
	}
	q.mu.Lock()
	err := q.wl.Log(recs...)
	if err == nil {
		q.committedRecords += uint64(len(recs))
		q.committedSamples += n
	}
	q.mu.Unlock()
	if err != nil {
		return fmt.Errorf("write to the remote-write queue: %w", err)
	}
	select {
	case q.notify <- struct{}{}:
	default:
	}
	return nil
}

func (q *queue) pendingSamples() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.committedSamples - q.deliveredSamples
}

func (q *queue) deliveredRecords() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.deliveredRecs
}

// waitDelivered returns once every record committed before the call is acknowledged.
func (q *queue) waitDelivered(ctx context.Context) error {
	q.mu.Lock()
	target := q.committedRecords
	for q.deliveredRecs < target {
		ch := q.changed
		q.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-q.done:
			return errors.New("remote-write queue closed")
		}
		q.mu.Lock()
	}
	q.mu.Unlock()
	return nil
}

func (q *queue) close() error {
	close(q.quit)
	q.cancel()
	<-q.done
	return errors.Join(q.wl.Close(), q.lock.Release())
}

var errQuit = errors.New("queue closed")

// batch is what the sender has read but not yet sent.
type batch struct {
	ts         []prompb.TimeSeries
	samples    int
	records    int // records in the batch
	ownRecords int // of which this process wrote
	ownSamples int
}

// run sends the queue from pos on until close.
func (q *queue) run(pos position) {
	defer close(q.done)
	for {
		next, err := q.sendSegment(pos)
		if errors.Is(err, errQuit) {
			return
		}
		if err != nil {
			q.logger.Error("remote-write queue segment unreadable; skipping to the next one", "segment", pos.Segment, "err", err)
		}
		pos = next
		if err := q.writePosition(pos); err != nil {
			q.logger.Warn("write the remote-write queue position", "err", err)
		}
		if _, last, err := wlog.Segments(q.dir); err == nil && pos.Segment <= last {
			if err := q.wl.Truncate(pos.Segment); err != nil {
				q.logger.Warn("delete delivered remote-write queue segments", "err", err)
			}
		}
	}
}

// sendSegment sends segment pos.Segment from record pos.Records on, tailing it while it is the
// newest, and returns the position of the following segment once a newer one exists.
func (q *queue) sendSegment(pos position) (position, error) {
	first, last, err := wlog.Segments(q.dir)
	if err != nil {
		return pos, err
	}
	if pos.Segment < first {
		pos = position{Segment: first}
	}
	if pos.Segment > last {
		// Nothing to read yet (only possible before wlog created its segment).
		select {
		case <-q.quit:
			return pos, errQuit
		case <-time.After(100 * time.Millisecond):
			return pos, nil
		}
	}
	seg, err := wlog.OpenReadSegment(wlog.SegmentName(q.dir, pos.Segment))
	if err != nil {
		return position{Segment: pos.Segment + 1}, err
	}
	defer seg.Close()
	r := wlog.NewLiveReader(q.logger, q.readerMetrics, seg)
	own := pos.Segment >= q.ownFirst
	read := 0
	var b batch
	flush := func() error {
		if b.records == 0 {
			return nil
		}
		if err := q.send(b.ts); err != nil {
			return err
		}
		if err := q.writePosition(position{Segment: pos.Segment, Records: read}); err != nil {
			q.logger.Warn("write the remote-write queue position", "err", err)
		}
		q.mu.Lock()
		q.deliveredRecs += uint64(b.ownRecords)
		q.deliveredSamples += uint64(b.ownSamples)
		close(q.changed)
		q.changed = make(chan struct{})
		q.mu.Unlock()
		q.sent.Add(float64(b.samples))
		b = batch{}
		return nil
	}
	final := false // a newer segment exists: this one is complete
	for {
		if r.Next() {
			rec := r.Record()
			read++
			if read <= pos.Records {
				continue // acknowledged before the restart
			}
			var wr prompb.WriteRequest
			if err := wr.Unmarshal(rec); err != nil {
				q.logger.Error("remote-write queue record unreadable; skipped", "segment", pos.Segment, "record", read, "err", err)
				continue
			}
			n := 0
			for _, s := range wr.Timeseries {
				n += len(s.Samples)
			}
			b.ts = append(b.ts, wr.Timeseries...)
			b.samples += n
			b.records++
			if own {
				b.ownRecords++
				b.ownSamples += n
			}
			if b.samples >= maxBatchSamples {
				if err := flush(); err != nil {
					return pos, err
				}
			}
			continue
		}
		rerr := r.Err()
		if err := flush(); err != nil {
			return pos, err
		}
		if final {
			if rerr != nil && !errors.Is(rerr, io.EOF) {
				return position{Segment: pos.Segment + 1}, rerr
			}
			return position{Segment: pos.Segment + 1}, nil
		}
		if _, last, err := wlog.Segments(q.dir); err == nil && last > pos.Segment {
			final = true // read once more: what was written before the switch
			continue
		}
		select {
		case <-q.quit:
			return pos, errQuit
		case <-q.notify:
		case <-time.After(time.Second):
		}
	}
}

// send delivers ts, retrying network errors, 5xx and 429 answers with backoff until the store
// takes them. A 4xx answer refuses the whole request for any bad sample in it (Prometheus'
// receiver rolls the request back), so the request is split until the refused samples are
// isolated; only those are dropped, and counted.
func (q *queue) send(ts []prompb.TimeSeries) error {
	b, err := (&prompb.WriteRequest{Timeseries: ts}).Marshal()
	if err != nil {
		return fmt.Errorf("encode remote-write request: %w", err)
	}
	body := snappy.Encode(nil, b)
	backoff := q.minB
	for attempt := 0; ; attempt++ {
		_, err := q.client.Store(q.ctx, body, attempt)
		if err == nil {
			return nil
		}
		if q.ctx.Err() != nil {
			return errQuit
		}
		var re remote.RecoverableError
		if !errors.As(err, &re) {
			return q.refused(ts, err)
		}
		q.retries.Inc()
		if attempt == 0 || attempt%20 == 0 {
			q.logger.Warn("remote store unreachable; the samples stay queued and are retried", "attempt", attempt+1, "err", err)
		}
		select {
		case <-q.quit:
			return errQuit
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, q.maxB)
	}
}

func (q *queue) refused(ts []prompb.TimeSeries, err error) error {
	n := 0
	for _, s := range ts {
		n += len(s.Samples)
	}
	switch {
	case n == 1:
		q.rejected.Inc()
		q.logger.Error("remote store refused a sample; dropped", "series", labelsOf(ts[0]).String(), "timestamp", ts[0].Samples[0].Timestamp, "value", ts[0].Samples[0].Value, "err", err)
		return nil
	case len(ts) > 1:
		if err := q.send(ts[:len(ts)/2]); err != nil {
			return err
		}
		return q.send(ts[len(ts)/2:])
	default:
		s := ts[0]
		h := len(s.Samples) / 2
		if err := q.send([]prompb.TimeSeries{{Labels: s.Labels, Samples: s.Samples[:h]}}); err != nil {
			return err
		}
		return q.send([]prompb.TimeSeries{{Labels: s.Labels, Samples: s.Samples[h:]}})
	}
}

func labelsOf(ts prompb.TimeSeries) labels.Labels {
	b := labels.NewScratchBuilder(len(ts.Labels))
	for _, l := range ts.Labels {
		b.Add(l.Name, l.Value)
	}
	b.Sort()
	return b.Labels()
}

// appender collects samples per series; Commit logs them to the queue.
type appender struct {
	q      *queue
	ts     []prompb.TimeSeries
	byHash map[uint64][]int // labels hash → indexes in ts
	lset   []labels.Labels  // labels of ts[i]
}

// add appends a sample. The reference it returns is the hash of the labels, so a reference kept
// from an earlier appender never names another series: with empty labels, a reference is only
// taken when it names a series of this appender.
func (a *appender) add(ref storage.SeriesRef, l labels.Labels, t int64, v float64) (storage.SeriesRef, error) {
	if a.byHash == nil {
		a.byHash = map[uint64][]int{}
	}
	if l.IsEmpty() {
		if is := a.byHash[uint64(ref)]; len(is) == 1 {
			a.ts[is[0]].Samples = append(a.ts[is[0]].Samples, prompb.Sample{Timestamp: t, Value: v})
			return ref, nil
		}
		return 0, fmt.Errorf("remote storage: append without labels and with unknown reference %d", ref)
	}
	h := l.Hash()
	for _, i := range a.byHash[h] {
		if labels.Equal(a.lset[i], l) {
			a.ts[i].Samples = append(a.ts[i].Samples, prompb.Sample{Timestamp: t, Value: v})
			return storage.SeriesRef(h), nil
		}
	}
	pl := make([]prompb.Label, 0, l.Len())
	l.Range(func(x labels.Label) { pl = append(pl, prompb.Label{Name: x.Name, Value: x.Value}) })
	a.ts = append(a.ts, prompb.TimeSeries{Labels: pl, Samples: []prompb.Sample{{Timestamp: t, Value: v}}})
	a.lset = append(a.lset, l.Copy())
	a.byHash[h] = append(a.byHash[h], len(a.ts)-1)
	return storage.SeriesRef(h), nil
}

func (a *appender) Append(ref storage.SeriesRef, l labels.Labels, t int64, v float64) (storage.SeriesRef, error) {
	return a.add(ref, l, t, v)
}

func (*appender) SetOptions(*storage.AppendOptions) {}

func (*appender) AppendExemplar(ref storage.SeriesRef, _ labels.Labels, _ exemplar.Exemplar) (storage.SeriesRef, error) {
	return ref, nil
}

var errNoHistograms = errors.New("remote storage: native histograms are not written")

func (*appender) AppendHistogram(storage.SeriesRef, labels.Labels, int64, *histogram.Histogram, *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return 0, errNoHistograms
}

func (*appender) AppendHistogramSTZeroSample(storage.SeriesRef, labels.Labels, int64, int64, *histogram.Histogram, *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return 0, errNoHistograms
}

func (*appender) UpdateMetadata(ref storage.SeriesRef, _ labels.Labels, _ metadata.Metadata) (storage.SeriesRef, error) {
	return ref, nil
}

// AppendSTZeroSample is a no-op: the product's series are per-period amounts, not counters.
func (*appender) AppendSTZeroSample(ref storage.SeriesRef, _ labels.Labels, _, _ int64) (storage.SeriesRef, error) {
	return ref, nil
}

func (a *appender) Commit() error {
	ts := a.ts
	a.ts, a.byHash, a.lset = nil, nil, nil
	return a.q.commit(ts)
}

func (a *appender) Rollback() error {
	a.ts, a.byHash, a.lset = nil, nil, nil
	return nil
}

// appenderV2 is the same appender behind Prometheus' AppenderV2 interface (the rule engine).
type appenderV2 struct {
	q *queue
	a appender
}

func (a *appenderV2) Append(ref storage.SeriesRef, ls labels.Labels, _, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, _ storage.AppendV2Options) (storage.SeriesRef, error) {
	if h != nil || fh != nil {
		return 0, errNoHistograms
	}
	a.a.q = a.q
	return a.a.add(ref, ls, t, v)
}

func (a *appenderV2) Commit() error   { a.a.q = a.q; return a.a.Commit() }
func (a *appenderV2) Rollback() error { return a.a.Rollback() }
