package collector

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/cenkalti/backoff/v5"

	"github.com/cygni/usage/tsdb"
)

// CloudWatch's retention of each resolution: a period too fine for old data returns nothing.
const (
	retentionFine   = 15 * 24 * time.Hour // 1-minute data
	retentionMedium = 63 * 24 * time.Hour // 5-minute data
)

// chunk is one unit of work: every query over [from, to) at one period (seconds). from and to
// are multiples of the period.
type chunk struct {
	from, to time.Time
	period   int64
}

func (ch chunk) periods() int {
	return int(ch.to.Sub(ch.from) / (time.Duration(ch.period) * time.Second))
}

// plan splits [from, to) into chunks: 60 s periods within CloudWatch's 15-day retention of
// 1-minute data, 300 s within 63 days, 3600 s beyond. The boundaries between resolutions are
// whole hours, so coarse samples never straddle an hour, and no chunk holds more than
// MaxChunkPoints datapoints for the given number of queries.
func (c *Collector) plan(from, to time.Time, queries int) []chunk {
	return c.planAtLeast(from, to, queries, 0)
}

// planAtLeast is plan with chunks of at least floor (when the segment is that long), whatever
// MaxChunkPoints says: a scheduled cycle's window is one chunk, so every metric is requested
// once per cycle even for a fleet whose queries would otherwise shrink the chunk below it.
func (c *Collector) planAtLeast(from, to time.Time, queries int, floor time.Duration) []chunk {
	now := c.opts.Now()
	fineFrom := now.Add(-retentionFine).Truncate(time.Hour).Add(time.Hour)
	mediumFrom := now.Add(-retentionMedium).Truncate(time.Hour).Add(time.Hour)
	segs := []struct {
		a, b   time.Time
		period int64
	}{
		{from, minTime(to, mediumFrom), 3600},
		{maxTime(from, mediumFrom), minTime(to, fineFrom), 300},
		{maxTime(from, fineFrom), to, 60},
	}
	queries = max(queries, 1)
	var out []chunk
	for _, s := range segs {
		p := time.Duration(s.period) * time.Second
		a, b := s.a.Truncate(p), s.b.Truncate(p)
		if !a.Before(b) {
			continue
		}
		n := int64(c.opts.Chunk / p)
		n = max(1, min(n, max(int64(c.opts.MaxChunkPoints/queries), int64((floor+p-1)/p))))
		step := time.Duration(n) * p
		// Chunks start at the window's start, not at multiples of step: a cycle's window shorter
		// than step is one chunk, so every metric is requested once per cycle (GetMetricData is
		// billed per metric requested).
		for cur := a; cur.Before(b); {
			end := minTime(cur.Add(step), b)
			out = append(out, chunk{from: cur, to: end, period: s.period})
			cur = end
		}
	}
	return out
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(ts ...time.Time) time.Time {
	m := ts[0]
	for _, t := range ts[1:] {
		if t.After(m) {
			m = t
		}
	}
	return m
}

// collectChunk reads what the TSDB holds for the chunk, then fetches and appends every batch
// with at most Concurrency in flight. Batches that succeed commit even when others fail.
//
// newest is the end of the newest period for which CloudWatch returned a CpuReserved datapoint
// of any service (zero when none): how far it has published.
//
// With bf, the chunk's samples go to the backfill's blocks instead of the TSDB's head.
func (c *Collector) collectChunk(ctx context.Context, plan *fleetPlan, ch chunk, bf *tsdb.Backfill) (rejected int, newest time.Time, err error) {
	existing, err := c.readExisting(ctx, ch, plan.series)
	if err != nil {
		return 0, time.Time{}, err
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, c.opts.Concurrency)
	)
	for i, b := range plan.batches {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return rejected, newest, ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			n, last, err := c.runBatch(ctx, b, ch, existing, bf)
			mu.Lock()
			defer mu.Unlock()
			rejected += n
			if last.After(newest) {
				newest = last
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("batch %d of %d (%d queries): %w", i+1, len(plan.batches), len(b), err))
			}
		}()
	}
	wg.Wait()
	return rejected, newest, errors.Join(errs...)
}

// runBatch fetches one batch under the collector's jittered exponential back-off (on top of the
// SDK's own retryer), then appends and commits it.
func (c *Collector) runBatch(ctx context.Context, b []metricQuery, ch chunk, existing existingData, bf *tsdb.Backfill) (rejected int, newest time.Time, err error) {
	res, err := withRetry(ctx, c, "GetMetricData batch", func() (*batchResult, error) { return c.fetch(ctx, b, ch) })
	if err != nil {
		return 0, time.Time{}, err
	}
	if res.newest >= 0 {
		newest = ch.from.Add(time.Duration(res.newest+1) * time.Duration(ch.period) * time.Second)
	}
	rejected, err = c.appendBatch(ctx, res, ch, existing, bf)
	return rejected, newest, err
}

// withRetry runs op under a jittered exponential back-off while its error is retryable
// (throttling, 5xx, PartialData, transport), within RetryMaxElapsed and the context.
func withRetry[T any](ctx context.Context, c *Collector, what string, op func() (T, error)) (T, error) {
	eb := backoff.NewExponentialBackOff() // randomization factor 0.5: jittered
	eb.InitialInterval = c.opts.RetryInitial
	eb.MaxInterval = max(c.opts.RetryInitial, 30*time.Second)
	return backoff.Retry(ctx, func() (T, error) {
		r, err := op()
		if err != nil && !retryable(err) {
			return r, backoff.Permanent(err)
		}
		return r, err
	},
		backoff.WithBackOff(eb),
		backoff.WithMaxElapsedTime(c.opts.RetryMaxElapsed),
		backoff.WithNotify(func(err error, d time.Duration) {
			c.m.retries.Inc()
			c.logger.Warn("AWS call failed; retrying after back-off", "what", what, "err", err, "backoff", d.String())
		}))
}

// batchResult is the converted data of one batch: per target of the batch, per period of the
// chunk, the summed value (NaN where CloudWatch had no datapoint).
type batchResult struct {
	targets []*target
	values  []float64 // len(targets) × periods
	newest  int       // the newest period with a datapoint of a clock query (metricQuery.clock); -1 none
}

// errPartial reports a GetMetricData answer that stayed PartialData after its last page.
var errPartial = errors.New("CloudWatch returned PartialData without a NextToken")

// fetch runs GetMetricData for one batch over the chunk, following NextToken.
func (c *Collector) fetch(ctx context.Context, b []metricQuery, ch chunk) (*batchResult, error) {
	np := ch.periods()
	res := &batchResult{newest: -1}
	local := make([]int, len(b)) // query index -> target index in res
	seen := map[*target]int{}
	queries := make([]cwtypes.MetricDataQuery, len(b))
	for i := range b {
		q := &b[i]
		ti, ok := seen[q.t]
		if !ok {
			ti = len(res.targets)
			seen[q.t] = ti
			res.targets = append(res.targets, q.t)
		}
		local[i] = ti
		metric := q.metric
		queries[i] = cwtypes.MetricDataQuery{
			Id:         aws.String("q" + strconv.Itoa(i)),
			MetricStat: &cwtypes.MetricStat{Metric: &metric, Period: aws.Int32(int32(ch.period)), Stat: aws.String(q.stat)},
			ReturnData: aws.Bool(true),
		}
	}
	res.values = make([]float64, len(res.targets)*np)
	for i := range res.values {
		res.values[i] = math.NaN()
	}
	in := &cloudwatch.GetMetricDataInput{
		StartTime:         aws.Time(ch.from),
		EndTime:           aws.Time(ch.to),
		MetricDataQueries: queries,
		ScanBy:            cwtypes.ScanByTimestampAscending,
	}
	status := make([]cwtypes.StatusCode, len(b))
	p := cloudwatch.NewGetMetricDataPaginator(c.opts.Targets[b[0].tgt].CloudWatch, in)
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		c.m.call("cloudwatch", "GetMetricData", err)
		c.m.requested(len(queries))
		if err != nil {
			return nil, fmt.Errorf("read CloudWatch page: %w", err)
		}
		if err := res.add(out.MetricDataResults, b, local, status, ch); err != nil {
			return nil, err
		}
	}
	partial := 0
	for _, s := range status {
		if s == cwtypes.StatusCodePartialData {
			partial++
		}
	}
	if partial > 0 {
		return nil, fmt.Errorf("%w (%d queries)", errPartial, partial)
	}
	return res, nil
}

// add decodes one page of results into the batch, converting each value to its stored unit and
// moving the timestamp from the period start to the period end.
func (r *batchResult) add(results []cwtypes.MetricDataResult, b []metricQuery, local []int, status []cwtypes.StatusCode, ch chunk) error {
	np := ch.periods()
	from := ch.from.Unix()
	for _, res := range results {
		id := aws.ToString(res.Id)
		qi, err := strconv.Atoi(id[min(1, len(id)):])
		if err != nil || qi < 0 || qi >= len(b) {
			return fmt.Errorf("CloudWatch answered an unknown query id %q", id)
		}
		if len(res.Timestamps) != len(res.Values) {
			return fmt.Errorf("CloudWatch query %s: %d timestamps but %d values", id, len(res.Timestamps), len(res.Values))
		}
		status[qi] = res.StatusCode
		row := r.values[local[qi]*np : (local[qi]+1)*np]
		conv := b[qi].conv
		for j, ts := range res.Timestamps {
			start := ts.Unix()
			if (start-from)%ch.period != 0 {
				return fmt.Errorf("CloudWatch query %s: timestamp %s is not aligned to the %ds period", id, ts.UTC().Format(time.RFC3339), ch.period)
			}
			pi := (start - from) / ch.period
			if pi < 0 || pi >= int64(np) {
				continue
			}
			if b[qi].clock && int(pi) > r.newest {
				r.newest = int(pi)
			}
			v := conv.apply(res.Values[j], ch.period)
			if math.IsNaN(row[pi]) {
				row[pi] = v
			} else {
				row[pi] += v
			}
		}
	}
	return nil
}
