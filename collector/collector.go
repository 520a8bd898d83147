// Package collector is the first stage of the pipeline: it discovers ECS services, reads their
// usage from CloudWatch (Container Insights and ALB RequestCount) with GetMetricData, converts it
// to per-period amounts and appends it to the TSDB.
//
// Invariants:
//   - A sample is the usage inside (end − period, end] and is stamped at the period END
//     (CloudWatch stamps datapoints at the period start; the collector adds the period).
//   - Corrections without overwrites. The TSDB rejects a different value at an existing
//     timestamp, and CloudWatch data arrives late, so before appending a window the collector
//     reads what the TSDB already holds per series and period (the sum S of the k samples in
//     (end − period, end]). If the new value V equals S (relative tolerance 1e-12) nothing is
//     written; otherwise the difference V − S is appended at end − k ms (k = 0 writes the first
//     sample at end itself). sum_over_time over any period-aligned window is therefore exact, and
//     re-reading a period any number of times never double-counts. cygni_running_tasks follows
//     the same rule.
//   - The watermark (a JSON file in the data dir, replaced atomically) only moves past a chunk
//     after every sample of that chunk is committed to the TSDB. A failed batch stops the
//     watermark but not the other batches: they commit, and the failed window is read again in
//     the next cycle. After a restart the collector resumes from the watermark, re-reading the
//     look-back.
//   - Untagged services (no cygni:project tag) are collected without a project label
//     (deployment = service name) and reported; they are never attributed to a guessed project.
package collector

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/storage"

	"github.com/cygni/usage/tsdb"
)

// CloudWatchAPI is the part of the CloudWatch client the collector uses.
type CloudWatchAPI interface {
	GetMetricData(ctx context.Context, in *cloudwatch.GetMetricDataInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.GetMetricDataOutput, error)
	ListMetrics(ctx context.Context, in *cloudwatch.ListMetricsInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.ListMetricsOutput, error)
}

// ECSAPI is the part of the ECS client the collector uses.
type ECSAPI interface {
	ListClusters(ctx context.Context, in *ecs.ListClustersInput, optFns ...func(*ecs.Options)) (*ecs.ListClustersOutput, error)
	ListServices(ctx context.Context, in *ecs.ListServicesInput, optFns ...func(*ecs.Options)) (*ecs.ListServicesOutput, error)
	DescribeServices(ctx context.Context, in *ecs.DescribeServicesInput, optFns ...func(*ecs.Options)) (*ecs.DescribeServicesOutput, error)
}

// Storage is where samples go: *tsdb.DB satisfies it.
type Storage interface {
	storage.Appendable
	storage.Queryable
}

// Progress reports how much of a collection window is committed.
type Progress struct {
	From, To time.Time     // the whole window
	Done     time.Duration // committed from From onwards
	Samples  uint64        // samples appended in the window so far (first values and corrections)
	// Started is when the collection of the window began and At when this report was made,
	// both by the collector's clock.
	Started, At time.Time
}

// Target is one AWS account and region to collect from: its clients (credentials of the
// account, endpoints of the region) and the value of the region label of its series.
type Target struct {
	// Name identifies the target in logs (e.g. the role ARN and region).
	Name   string
	Region string // required
	// Account labels the target's series (series.LabelAccount) when set: the account id of the
	// role assumed for it. Empty for the base credentials' own account.
	Account    string
	CloudWatch CloudWatchAPI // required
	ECS        ECSAPI        // required
}

// Options configure a Collector. Zero values take the defaults.
type Options struct {
	// CloudWatch, ECS and Region are the one target collected when Targets is empty.
	CloudWatch CloudWatchAPI
	ECS        ECSAPI
	Storage    Storage // required
	// Region is the value of the region label of the single target, and the region part of the
	// watermark key. Required.
	Region string
	// Targets, if set, are the accounts and regions collected (instead of CloudWatch, ECS and
	// Region alone): one discovery, one plan and one watermark over all of them; every
	// GetMetricData call goes to the target of its services.
	Targets []Target
	// DataDir holds the watermark file. Required for Run and RunOnce.
	DataDir string
	// Metrics receives the cygni_collector_* counters. Default: a private set.
	Metrics *metrics.Set

	Interval time.Duration // between runs; default 5m
	Lookback time.Duration // re-read behind the watermark; default 15m
	Backfill time.Duration // history read when there is no watermark; default 7d
	// RightSizingInterval is how often the right-sizing metrics, priced by nothing (CpuUtilized,
	// MemoryUtilized), are read, each time from their own watermark at 1-minute periods; default
	// 1h. Reading them every cycle is a third of the CloudWatch bill. A value at or below Interval
	// reads them every cycle.
	RightSizingInterval time.Duration
	// DiscoveryInterval is how long an ECS discovery is reused; default 10m. It must not exceed
	// Lookback, so that the first minutes of a service created just after a discovery are still
	// inside the window re-read once it is found.
	DiscoveryInterval time.Duration
	// LateDataHold is how long the watermark waits for minutes CloudWatch has not published
	// while ECS reports running tasks (a CloudWatch backlog or incident); default 6h. Minutes
	// still missing after it are counted in cygni_collector_abandoned_minutes_total and logged.
	LateDataHold time.Duration
	// CloudWatchPricePer1000 is GetMetricData's price per 1,000 metrics requested, in USD, for
	// the cygni_collector_cloudwatch_estimated_cost_usd_total counter; default 0.01.
	CloudWatchPricePer1000 float64
	// Chunk is the span of one unit of work (fetch, commit, advance the watermark); default 6h.
	// It shrinks automatically so that a chunk holds at most MaxChunkPoints datapoints.
	Chunk time.Duration
	// MaxChunkPoints bounds the datapoints (queries × periods) held in memory per chunk;
	// default 2,000,000.
	MaxChunkPoints int
	// MaxQueriesPerCall is the number of queries per GetMetricData call, at most 500 (default).
	MaxQueriesPerCall int
	// Concurrency is the number of GetMetricData batches in flight; default 4.
	Concurrency int
	// RetryMaxElapsed bounds the collector's own back-off around one batch; default 2m.
	RetryMaxElapsed time.Duration
	// RetryInitial is the first back-off interval; default 500ms.
	RetryInitial time.Duration
	// OnProgress, if set, is called after every committed chunk.
	OnProgress func(Progress)
	// OnDiscover, if set, is called after every ECS discovery with the services found (tagged
	// and untagged). The process records the deployments of known projects with it. It must not
	// block for long; an error is logged and collection goes on.
	OnDiscover func(ctx context.Context, services []Discovered) error
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Shard and Shards split the fleet between collectors: this one collects the services whose
	// hash of cluster and service name (ShardOf) is Shard modulo Shards. Shards 0 or 1: the
	// whole fleet.
	Shard, Shards int
	// Watermarks, if set, keeps the watermark in a shared store (the metadata store, in remote
	// mode) under WatermarkKey instead of the file in DataDir, so the collector may restart on
	// another machine. The watermark then moves only once the storage has delivered the chunk
	// (Storage's Sync, when it has one), so a machine lost with its queue loses no data either.
	Watermarks WatermarkStore
}

// WatermarkStore keeps collector watermarks (store.Store implements it).
type WatermarkStore interface {
	CollectorWatermark(ctx context.Context, key string) (time.Time, bool, error)
	SetCollectorWatermark(ctx context.Context, key string, shards int, t time.Time) error
}

// syncer is a Storage that delivers asynchronously (remote mode): Sync returns once
// everything committed before it is in the store.
type syncer interface {
	Sync(ctx context.Context) error
}

// ShardOf returns the shard, of shards, of an ECS service: FNV-1a of cluster and name.
func ShardOf(cluster, service string, shards int) int {
	if shards <= 1 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(cluster + "\x00" + service))
	return int(h.Sum32() % uint32(shards))
}

// WatermarkKey is the key of a collector's watermark in a WatermarkStore: region and shard.
func WatermarkKey(region string, shard, shards int) string {
	return fmt.Sprintf("%s/%dof%d", region, shard, max(shards, 1))
}

// Defaults for Options.
const (
	DefaultInterval          = 5 * time.Minute
	DefaultLookback          = 15 * time.Minute
	DefaultBackfill          = 7 * 24 * time.Hour
	DefaultChunk             = 6 * time.Hour
	DefaultMaxChunkPoints    = 2_000_000
	DefaultMaxQueriesPerCall = 500
	DefaultConcurrency       = 4
	DefaultRetryMaxElapsed   = 2 * time.Minute
	DefaultRetryInitial      = 500 * time.Millisecond
	DefaultRightSizing       = time.Hour
	DefaultDiscovery         = 10 * time.Minute
	DefaultLateDataHold      = 6 * time.Hour
	DefaultCloudWatchPrice   = 0.01
)

// WatermarkFile is the name of the watermark file inside Options.DataDir.
const WatermarkFile = "collector-watermark.json"

// Errors reported by the collector.
var (
	// ErrNotReady is returned by Ready until the first collection cycle has completed.
	ErrNotReady = errors.New("collector: the first collection has not completed yet")
	// ErrTooOld is returned by Collect when the TSDB rejected samples that lie further behind its
	// newest sample than the out-of-order window (tsdb.out_of_order_window); the others are stored.
	ErrTooOld = errors.New("the TSDB rejected samples older than its out-of-order window (tsdb.out_of_order_window)")
)

// Collector reads CloudWatch into the TSDB on a schedule.
type Collector struct {
	opts   Options
	logger *slog.Logger
	m      *collectorMetrics

	// discovery state, touched by one cycle at a time (cycleMu)
	cycleMu    sync.Mutex
	series     map[string]*target // by label string; kept across cycles for the cached refs
	untagged   map[string]bool    // service ARNs already logged as untagged
	lbByTG     map[string]string  // target index + "/" + TargetGroup dimension -> LoadBalancer dimension
	lbListed   time.Time          // when lbByTG was last refreshed from ListMetrics
	svcs       []service          // the last discovery, reused for DiscoveryInterval
	discovered time.Time          // when svcs was listed
	watermark  atomic.Int64       // unix ms; 0 = none
	// rightSizing is the watermark of the right-sizing metrics (unix ms; 0 = none).
	rightSizing atomic.Int64
	// published is the end of the newest minute CloudWatch had published at the last cycle
	// (unix ms; 0 = unknown).
	published atomic.Int64
	ready     atomic.Bool
	// windowSamples counts the samples appended in the current collection window (Progress).
	windowSamples atomic.Uint64
}

// New validates opts and builds a Collector. It starts no goroutines and does no I/O.
func New(logger *slog.Logger, reg prometheus.Registerer, opts Options) (*Collector, error) {
	_ = reg // the collector's own metrics live in opts.Metrics (VictoriaMetrics)
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if len(opts.Targets) == 0 {
		if opts.CloudWatch == nil || opts.ECS == nil {
			return nil, errors.New("collector: the CloudWatch and ECS clients are required")
		}
		opts.Targets = []Target{{Name: opts.Region, Region: opts.Region, CloudWatch: opts.CloudWatch, ECS: opts.ECS}}
	}
	for i, t := range opts.Targets {
		if t.CloudWatch == nil || t.ECS == nil || t.Region == "" {
			return nil, fmt.Errorf("collector: target %d (%s) needs CloudWatch and ECS clients and a region", i+1, t.Name)
		}
	}
	if opts.Storage == nil {
		return nil, errors.New("collector: storage is required")
	}
	if opts.Region == "" {
		return nil, errors.New("collector: region is empty (set aws.region or AWS_REGION)")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&opts.Interval, DefaultInterval)
	def(&opts.Lookback, DefaultLookback)
	def(&opts.Backfill, DefaultBackfill)
	def(&opts.Chunk, DefaultChunk)
	def(&opts.RetryMaxElapsed, DefaultRetryMaxElapsed)
	def(&opts.RetryInitial, DefaultRetryInitial)
	def(&opts.RightSizingInterval, DefaultRightSizing)
	def(&opts.DiscoveryInterval, DefaultDiscovery)
	def(&opts.LateDataHold, DefaultLateDataHold)
	if opts.CloudWatchPricePer1000 == 0 {
		opts.CloudWatchPricePer1000 = DefaultCloudWatchPrice
	}
	if opts.MaxChunkPoints == 0 {
		opts.MaxChunkPoints = DefaultMaxChunkPoints
	}
	if opts.MaxQueriesPerCall == 0 {
		opts.MaxQueriesPerCall = DefaultMaxQueriesPerCall
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = DefaultConcurrency
	}
	switch {
	case opts.RightSizingInterval < 0 || opts.DiscoveryInterval < 0 || opts.CloudWatchPricePer1000 < 0 || opts.LateDataHold < 0:
		return nil, fmt.Errorf("collector: right-sizing interval %s, discovery interval %s and CloudWatch price %g must not be negative",
			opts.RightSizingInterval, opts.DiscoveryInterval, opts.CloudWatchPricePer1000)
	case opts.Interval < 0 || opts.Lookback < 0 || opts.Backfill < 0 || opts.Chunk < time.Minute:
		return nil, fmt.Errorf("collector: interval %s, lookback %s, backfill %s must not be negative and chunk %s at least 1m",
			opts.Interval, opts.Lookback, opts.Backfill, opts.Chunk)
	case opts.MaxQueriesPerCall < 1 || opts.MaxQueriesPerCall > 500:
		return nil, fmt.Errorf("collector: max queries per call is %d; want 1..500", opts.MaxQueriesPerCall)
	case opts.Concurrency < 1:
		return nil, fmt.Errorf("collector: concurrency is %d; want at least 1", opts.Concurrency)
	case opts.MaxChunkPoints < 1:
		return nil, fmt.Errorf("collector: max chunk points is %d; want at least 1", opts.MaxChunkPoints)
	case opts.Shards < 0 || opts.Shard < 0 || (opts.Shards > 0 && opts.Shard >= opts.Shards) || (opts.Shards == 0 && opts.Shard != 0):
		return nil, fmt.Errorf("collector: shard %d of %d; want 0 <= shard < shards", opts.Shard, opts.Shards)
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.NewSet()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Collector{
		opts:     opts,
		logger:   logger.With("component", "collector"),
		series:   map[string]*target{},
		untagged: map[string]bool{},
		lbByTG:   map[string]string{},
	}
	c.m = newCollectorMetrics(opts.Metrics, c)
	return c, nil
}

// Ready reports nil once the first collection cycle has completed, ErrNotReady before.
func (c *Collector) Ready() error {
	if c.ready.Load() {
		return nil
	}
	return ErrNotReady
}

// Run collects once at once (catching up from the watermark), then every Interval, until ctx
// ends. A failed cycle is logged and retried at the next tick; Run returns only with ctx.
func (c *Collector) Run(ctx context.Context) error {
	t := time.NewTicker(c.opts.Interval)
	defer t.Stop()
	for {
		if err := c.RunOnce(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.logger.Warn("collection cycle failed; the window is read again next cycle",
				"err", err, "next_in", c.opts.Interval.String())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// RunOnce runs one scheduled cycle: it reads [watermark − Lookback, now truncated to the
// minute) — or [now − Backfill, …) without a watermark — chunk by chunk, advancing and persisting
// the watermark after every committed chunk. The right-sizing metrics have their own watermark
// and are read only when RightSizingInterval has passed since it.
func (c *Collector) RunOnce(ctx context.Context) error {
	if c.opts.DataDir == "" && c.opts.Watermarks == nil {
		return errors.New("collector: data dir is empty; the watermark has nowhere to go")
	}
	c.cycleMu.Lock()
	defer c.cycleMu.Unlock()
	now := c.opts.Now()
	to := now.Truncate(time.Minute)
	wf, err := c.readWatermarks(ctx)
	if err != nil {
		return err
	}
	wm, rs := wf.Watermark, wf.RightSizing
	if rs.IsZero() {
		rs = wm // a watermark file from before the right-sizing cadence: both were read together
	}
	c.watermark.Store(unixMilliOrZero(wm))
	c.rightSizing.Store(unixMilliOrZero(rs))
	// One pass of every metric while both watermarks agree (a first start, a backfill);
	// otherwise the billed metrics from their watermark, and the right-sizing ones from theirs
	// when they are due — separate windows, so neither splits into more chunks than it needs.
	type pass struct {
		ms metricSet
		wm time.Time
	}
	due := c.opts.RightSizingInterval <= c.opts.Interval || wm.IsZero() || to.Sub(rs) >= c.opts.RightSizingInterval
	var passes []pass
	switch {
	case due && rs.Equal(wm):
		passes = []pass{{allMetrics, wm}}
	case due:
		passes = []pass{{billedMetrics, wm}, {rightSizingMetrics, rs}}
	default:
		passes = []pass{{billedMetrics, wm}}
	}
	for _, p := range passes {
		var from time.Time
		if !p.wm.IsZero() {
			from = p.wm.Add(-c.opts.Lookback)
			c.logger.Debug("resuming from the watermark", "watermark", p.wm, "from", from, "to", to)
		} else {
			from = to.Add(-c.opts.Backfill)
			c.logger.Info("no watermark; backfilling", "from", from, "to", to)
		}
		if err := c.collect(ctx, from, to, p.ms, true); err != nil {
			return err
		}
	}
	c.m.lastSuccess.Set(float64(c.opts.Now().Unix()))
	c.ready.Store(true)
	return nil
}

// Collect reads [from, to) once (a one-shot backfill), without reading or moving the watermark.
// Re-reading periods that are already stored writes only corrections, so overlapping an
// earlier collection is safe.
func (c *Collector) Collect(ctx context.Context, from, to time.Time) error {
	if !from.Before(to) {
		return fmt.Errorf("collector: from %s is not before to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	c.cycleMu.Lock()
	defer c.cycleMu.Unlock()
	err := c.collect(ctx, from, to, allMetrics, false)
	// A backfill lands behind the head, in the TSDB's out-of-order head: persist it as blocks
	// now (tsdb.DB.Flush), so that blocks alone hold it.
	if f, ok := c.opts.Storage.(flusher); ok && (err == nil || errors.Is(err, ErrTooOld)) {
		if ferr := f.Flush(ctx); ferr != nil {
			return errors.Join(err, fmt.Errorf("persist the backfill as blocks: %w", ferr))
		}
	}
	return err
}

// backfiller is a Storage that can write history as blocks of its own (*tsdb.DB).
type backfiller interface {
	NewBackfill() *tsdb.Backfill
	HeadMaxTime() int64
}

// inOrder reports whether the head takes chunk ch in order, its newest sample being at headMax
// (ms): the chunk does not start more than half a block range (an hour) before it, and is no
// longer than that, so that the batches, each appending the whole chunk, keep one another in
// the head's in-order window. A backfill of a large fleet (short chunks, in time order) then
// goes through the head, whose series persist from chunk to chunk; longer chunks (a small
// fleet) and history behind the head go into blocks.
func inOrder(ch chunk, headMax int64) bool {
	half := tsdb.BackfillRange / 2
	if ch.to.Sub(ch.from).Milliseconds() > half {
		return false
	}
	return headMax == math.MinInt64 || ch.from.UnixMilli() >= headMax-half // an empty head takes any
}

// flusher is a Storage that can persist its heads as blocks (*tsdb.DB).
type flusher interface {
	Flush(ctx context.Context) error
}

// Watermark returns the end of the last committed chunk of a scheduled cycle, and false when
// there is none yet.
func (c *Collector) Watermark() (time.Time, bool) {
	ms := c.watermark.Load()
	if ms == 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(ms).UTC(), true
}

func (c *Collector) watermarkPath() string { return filepath.Join(c.opts.DataDir, WatermarkFile) }

// advance moves the watermarks of the metrics in ms to t (never backwards) and persists both.
func (c *Collector) advance(ctx context.Context, ms metricSet, t time.Time) error {
	wm, rs := c.watermark.Load(), c.rightSizing.Load()
	if ms.has(false) && t.UnixMilli() > wm {
		wm = t.UnixMilli()
	}
	if ms.has(true) && t.UnixMilli() > rs {
		rs = t.UnixMilli()
	}
	if wm == c.watermark.Load() && rs == c.rightSizing.Load() {
		return nil
	}
	f := watermarkFile{}
	if wm != 0 {
		f.Watermark = time.UnixMilli(wm).UTC()
	}
	if rs != 0 {
		f.RightSizing = time.UnixMilli(rs).UTC()
	}
	if err := c.writeWatermarks(ctx, f); err != nil {
		return err
	}
	c.watermark.Store(wm)
	c.rightSizing.Store(rs)
	return nil
}

// RightSizingWatermark returns the end of the last committed chunk of the right-sizing metrics
// (CpuUtilized, MemoryUtilized), and false when there is none yet.
func (c *Collector) RightSizingWatermark() (time.Time, bool) {
	ms := c.rightSizing.Load()
	if ms == 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(ms).UTC(), true
}

func unixMilliOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// WatermarkKey is the key of this collector's watermark in a WatermarkStore (its region and
// shard).
func (c *Collector) WatermarkKey() string { return c.watermarkKey() }

func (c *Collector) watermarkKey() string {
	return WatermarkKey(c.opts.Region, c.opts.Shard, c.opts.Shards)
}

// rightSizingKey keeps the right-sizing watermark beside the shard's in a WatermarkStore; it is
// written with shards 0, so that it never counts as a shard of the fleet watermark.
func (c *Collector) rightSizingKey() string { return c.watermarkKey() + "/right_sizing" }

// readWatermarks reads both watermarks: from the file, or from the shared store (Watermarks).
func (c *Collector) readWatermarks(ctx context.Context) (watermarkFile, error) {
	if c.opts.Watermarks == nil {
		return readWatermark(c.watermarkPath())
	}
	var f watermarkFile
	wm, ok, err := c.opts.Watermarks.CollectorWatermark(ctx, c.watermarkKey())
	if err != nil {
		return f, err
	}
	if ok {
		f.Watermark = wm
	}
	rs, ok, err := c.opts.Watermarks.CollectorWatermark(ctx, c.rightSizingKey())
	if err != nil {
		return f, err
	}
	if ok {
		f.RightSizing = rs
	}
	return f, nil
}

// writeWatermarks persists both watermarks: to the file, or (Watermarks) to the shared store
// once the storage has delivered what was committed before.
func (c *Collector) writeWatermarks(ctx context.Context, f watermarkFile) error {
	if c.opts.Watermarks == nil {
		return writeWatermark(c.watermarkPath(), f)
	}
	if s, ok := c.opts.Storage.(syncer); ok {
		if err := s.Sync(ctx); err != nil {
			return fmt.Errorf("wait for the store to take the chunk before moving the watermark: %w", err)
		}
	}
	if !f.RightSizing.IsZero() {
		if err := c.opts.Watermarks.SetCollectorWatermark(ctx, c.rightSizingKey(), 0, f.RightSizing); err != nil {
			return err
		}
	}
	if f.Watermark.IsZero() {
		return nil
	}
	return c.opts.Watermarks.SetCollectorWatermark(ctx, c.watermarkKey(), max(c.opts.Shards, 1), f.Watermark)
}

// collect discovers the services and reads the selected metrics over [from, to) chunk by chunk.
// With advance, the watermarks of those metrics move after each committed chunk.
func (c *Collector) collect(ctx context.Context, from, to time.Time, ms metricSet, advance bool) error {
	started := c.opts.Now()
	targets, err := c.discover(ctx, ms)
	if err != nil {
		return err
	}
	var floor time.Duration
	if advance {
		// a scheduled window: the look-back, one (right-sizing) interval and a late cycle
		floor = c.opts.Lookback + max(c.opts.Interval, c.opts.RightSizingInterval) + c.opts.Interval
	}
	chunks := c.planAtLeast(from, to, targets.queries, floor)
	if len(chunks) == 0 {
		return nil
	}
	total := Progress{From: chunks[0].from, To: chunks[len(chunks)-1].to, Started: started}
	c.windowSamples.Store(0) // cycles never overlap (cycleMu)
	rejected := 0
	// Late data: while ECS says tasks run, the watermark of the billed metrics does not pass the
	// newest minute CloudWatch has published (a CpuReserved datapoint of any service), so minutes
	// published after the look-back are still read; for at most LateDataHold.
	// The right-sizing metrics, read alone, wait for the same minute their billed pass found.
	hold := advance && ms.has(false) && targets.running > 0
	var published, followed time.Time
	if advance && !ms.has(false) && targets.running > 0 {
		followed = time.UnixMilli(c.published.Load()).UTC()
	}
	// History the head would take out of order goes into blocks of its own (tsdb.Backfill): no
	// write-ahead log, no out-of-order head, no out-of-order window. The watermark then moves
	// only over ranges whose blocks are loaded.
	var bf *tsdb.Backfill
	bs, _ := c.opts.Storage.(backfiller)
	if bs != nil {
		bf = bs.NewBackfill()
		defer bf.Close()
	}
	history := started.Add(-time.Duration(tsdb.BackfillRange) * time.Millisecond)
	var lastNext time.Time // the watermark the last chunk allows, once its samples are loaded
	for _, ch := range chunks {
		var chunkBF *tsdb.Backfill
		if bf != nil && !ch.to.After(history) && !inOrder(ch, bs.HeadMaxTime()) {
			chunkBF = bf
		}
		n, newest, err := c.collectChunk(ctx, targets, ch, chunkBF)
		rejected += n
		if err != nil {
			return fmt.Errorf("collect %s..%s (period %ds): %w",
				ch.from.Format(time.RFC3339), ch.to.Format(time.RFC3339), ch.period, err)
		}
		durable := ch.to
		if bf != nil {
			// The ranges this chunk completed are written while the next chunk is read; the
			// watermark passes only ranges whose blocks are loaded.
			if err := bf.Flush(ctx, ch.to.UnixMilli()); err != nil {
				return fmt.Errorf("collect %s..%s: %w", ch.from.Format(time.RFC3339), ch.to.Format(time.RFC3339), err)
			}
			if oldest, ok := bf.OldestPending(); ok {
				durable = minTime(durable, time.UnixMilli(oldest).UTC())
			}
		}
		if newest.After(published) {
			published = newest
		}
		if advance {
			next := ch.to
			if hold && published.Before(next) {
				// Not past what CloudWatch has published, nor behind the watermark or the window's
				// start; only the hold's end moves it on. (A later chunk's start is no floor: the
				// minutes between the newest published one and that start are as unread as the
				// chunk's own.)
				floor := maxTime(from, to.Add(-c.opts.LateDataHold))
				if wm := c.watermark.Load(); wm != 0 {
					floor = maxTime(floor, time.UnixMilli(wm).UTC())
				}
				next = minTime(next, maxTime(published, floor))
				old := ch.from
				if wm := c.watermark.Load(); wm != 0 {
					old = maxTime(old, time.UnixMilli(wm))
				}
				if seen := maxTime(old, published); next.After(seen) {
					c.m.abandoned.Add(int(next.Sub(seen) / time.Minute))
					c.logger.Error("CloudWatch published nothing for these minutes within collector.late_data_hold; the collector moves on and they stay unread",
						"from", seen, "to", next, "late_data_hold", c.opts.LateDataHold.String())
				}
			}
			if !followed.IsZero() && followed.Before(next) {
				next = maxTime(followed, to.Add(-c.opts.LateDataHold))
			}
			lastNext = next
			if next = minTime(next, durable); !next.IsZero() {
				if err := c.advance(ctx, ms, next); err != nil {
					return err
				}
			}
		}
		if c.opts.OnProgress != nil {
			total.Done = ch.to.Sub(total.From)
			total.Samples = c.windowSamples.Load()
			total.At = c.opts.Now()
			c.opts.OnProgress(total)
		}
	}
	if bf != nil {
		if err := bf.Flush(ctx, math.MaxInt64); err != nil {
			return fmt.Errorf("collect %s..%s: %w", from.Format(time.RFC3339), to.Format(time.RFC3339), err)
		}
		if err := bf.Wait(ctx); err != nil {
			return fmt.Errorf("collect %s..%s: %w", from.Format(time.RFC3339), to.Format(time.RFC3339), err)
		}
		if advance && !lastNext.IsZero() {
			if err := c.advance(ctx, ms, lastNext); err != nil {
				return err
			}
		}
	}
	if hold {
		c.published.Store(unixMilliOrZero(published))
		if behind := to.Sub(published); published.IsZero() || behind > c.opts.Lookback {
			c.logger.Warn("CloudWatch is behind by more than the look-back; the watermark waits for its data",
				"newest_published", published, "behind", behind.String(), "lookback", c.opts.Lookback.String(), "late_data_hold", c.opts.LateDataHold.String())
		}
	}
	if rejected > 0 && !advance {
		return fmt.Errorf("%w: %d samples", ErrTooOld, rejected)
	}
	return nil
}
