package tsdb

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
)

// vmQueryable reads VictoriaMetrics' raw samples through /api/v1/export: every sample as it
// was written, no PromQL evaluation in between, so the product's own query layer sums exactly
// what it sums over the embedded TSDB.
type vmQueryable struct {
	base string // the Prometheus API base: http://host:8428
	hc   *http.Client
}

func (v *vmQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	return labelsQuerier{&vmQuerier{v: v, mint: mint, maxt: maxt}}, nil
}

func (v *vmQueryable) ChunkQuerier(mint, maxt int64) (storage.ChunkQuerier, error) {
	q, _ := v.Querier(mint, maxt)
	return chunkQuerier{q}, nil
}

type vmQuerier struct {
	v          *vmQueryable
	mint, maxt int64
}

// selector writes the matchers as a series selector VictoriaMetrics parses.
func selector(ms []*labels.Matcher) string {
	parts := make([]string, 0, len(ms))
	for _, m := range ms {
		parts = append(parts, m.Name+m.Type.String()+strconv.Quote(m.Value))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// msToSeconds writes a millisecond timestamp as seconds with three decimals.
func msToSeconds(ms int64) string {
	sign := ""
	if ms < 0 {
		sign, ms = "-", -ms
	}
	return fmt.Sprintf("%s%d.%03d", sign, ms/1000, ms%1000)
}

type exportLine struct {
	Metric     map[string]string `json:"metric"`
	Values     []json.Number     `json:"values"`
	Timestamps []int64           `json:"timestamps"`
}

func (q *vmQuerier) Select(ctx context.Context, _ bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	mint, maxt := q.mint, q.maxt
	if hints != nil {
		mint, maxt = max(mint, hints.Start), min(maxt, hints.End)
	}
	if mint > maxt {
		return storage.EmptySeriesSet()
	}
	form := url.Values{}
	form.Set("match[]", selector(ms))
	form.Set("start", msToSeconds(mint))
	form.Set("end", msToSeconds(maxt))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, q.v.base+"/api/v1/export", strings.NewReader(form.Encode()))
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := q.v.hc.Do(req)
	if err != nil {
		return storage.ErrSeriesSet(fmt.Errorf("read VictoriaMetrics: %w", err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return storage.ErrSeriesSet(fmt.Errorf("read VictoriaMetrics: %s: %s", resp.Status, strings.TrimSpace(string(b))))
	}
	// The export may split one series over several lines: merge them by label set.
	byKey := map[string]*listSeries{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 1<<20), 1<<30)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var l exportLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return storage.ErrSeriesSet(fmt.Errorf("read VictoriaMetrics: unexpected export line: %w", err))
		}
		if len(l.Values) != len(l.Timestamps) {
			return storage.ErrSeriesSet(fmt.Errorf("read VictoriaMetrics: export line with %d values and %d timestamps", len(l.Values), len(l.Timestamps)))
		}
		lset := labels.FromMap(l.Metric)
		key := lset.String()
		s := byKey[key]
		if s == nil {
			s = &listSeries{lset: lset}
			byKey[key] = s
		}
		for i, t := range l.Timestamps {
			if t < mint || t > maxt {
				continue
			}
			f, err := parseValue(l.Values[i])
			if err != nil {
				return storage.ErrSeriesSet(fmt.Errorf("read VictoriaMetrics: %w", err))
			}
			s.ts = append(s.ts, t)
			s.vs = append(s.vs, f)
		}
	}
	if err := sc.Err(); err != nil {
		return storage.ErrSeriesSet(fmt.Errorf("read VictoriaMetrics: %w", err))
	}
	out := make([]storage.Series, 0, len(byKey))
	for _, s := range byKey {
		if len(s.ts) == 0 {
			continue
		}
		s.sortSamples()
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return labels.Compare(out[i].Labels(), out[j].Labels()) < 0 })
	return &listSeriesSet{series: out, i: -1}
}

func parseValue(n json.Number) (float64, error) {
	return strconv.ParseFloat(string(n), 64)
}

func (q *vmQuerier) LabelValues(context.Context, string, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	panic("unreachable: wrapped by labelsQuerier")
}

func (q *vmQuerier) LabelNames(context.Context, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	panic("unreachable: wrapped by labelsQuerier")
}

func (*vmQuerier) Close() error { return nil }

// labelsFromSeries wraps a remote-read queryable whose querier cannot list label names and
// values (Prometheus' remote read has no such call): they are taken from the series selected.
type labelsFromSeries struct {
	storage.SampleAndChunkQueryable
}

func (l labelsFromSeries) Querier(mint, maxt int64) (storage.Querier, error) {
	q, err := l.SampleAndChunkQueryable.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return labelsQuerier{q}, nil
}

// labelsQuerier answers LabelValues and LabelNames from Select: exact, and the same for every
// store.
type labelsQuerier struct{ storage.Querier }

var anySeries = labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, ".+")

func (q labelsQuerier) each(ctx context.Context, ms []*labels.Matcher, f func(labels.Labels)) error {
	if len(ms) == 0 {
		ms = []*labels.Matcher{anySeries}
	}
	ss := q.Select(ctx, false, &storage.SelectHints{Start: minInt64, End: maxInt64, Func: "series"}, ms...)
	for ss.Next() {
		f(ss.At().Labels())
	}
	return ss.Err()
}

const (
	minInt64 = -1 << 63
	maxInt64 = 1<<63 - 1
)

func (q labelsQuerier) LabelValues(ctx context.Context, name string, _ *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	seen := map[string]struct{}{}
	err := q.each(ctx, ms, func(l labels.Labels) {
		if v := l.Get(name); v != "" {
			seen[v] = struct{}{}
		}
	})
	return sortedKeys(seen), nil, err
}

func (q labelsQuerier) LabelNames(ctx context.Context, _ *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	seen := map[string]struct{}{}
	err := q.each(ctx, ms, func(l labels.Labels) {
		l.Range(func(x labels.Label) { seen[x.Name] = struct{}{} })
	})
	return sortedKeys(seen), nil, err
}

func sortedKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// chunkQuerier serves a Querier's series as chunks.
type chunkQuerier struct{ storage.Querier }

func (c chunkQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.ChunkSeriesSet {
	return storage.NewSeriesSetToChunkSet(c.Querier.Select(ctx, sortSeries, hints, ms...))
}

// listSeries is one series read into memory.
type listSeries struct {
	lset labels.Labels
	ts   []int64
	vs   []float64
}

func (s *listSeries) Labels() labels.Labels { return s.lset }

// sortSamples orders the samples by timestamp, keeping the order of equal ones.
func (s *listSeries) sortSamples() {
	if sort.SliceIsSorted(s.ts, func(i, j int) bool { return s.ts[i] < s.ts[j] }) {
		return
	}
	idx := make([]int, len(s.ts))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool { return s.ts[idx[i]] < s.ts[idx[j]] })
	ts, vs := make([]int64, len(idx)), make([]float64, len(idx))
	for i, k := range idx {
		ts[i], vs[i] = s.ts[k], s.vs[k]
	}
	s.ts, s.vs = ts, vs
}

func (s *listSeries) Iterator(chunkenc.Iterator) chunkenc.Iterator {
	return storage.NewListSeriesIterator(listSamples{s})
}

// listSamples serves a listSeries to Prometheus' list iterator.
type listSamples struct{ s *listSeries }

func (l listSamples) Get(i int) chunks.Sample { return floatSample{l.s.ts[i], l.s.vs[i]} }
func (l listSamples) Len() int                { return len(l.s.ts) }

type floatSample struct {
	t int64
	f float64
}

func (s floatSample) T() int64                    { return s.t }
func (floatSample) ST() int64                     { return 0 }
func (s floatSample) F() float64                  { return s.f }
func (floatSample) H() *histogram.Histogram       { return nil }
func (floatSample) FH() *histogram.FloatHistogram { return nil }
func (floatSample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s floatSample) Copy() chunks.Sample         { return s }

type listSeriesSet struct {
	series []storage.Series
	i      int
}

func (s *listSeriesSet) Next() bool                        { s.i++; return s.i < len(s.series) }
func (s *listSeriesSet) At() storage.Series                { return s.series[s.i] }
func (s *listSeriesSet) Err() error                        { return nil }
func (s *listSeriesSet) Warnings() annotations.Annotations { return nil }
