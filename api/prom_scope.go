package api

import (
	"context"
	"regexp"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/cygni/usage/series"
)

// promScope is the set of projects one request of the Prometheus API may see. It travels in the
// request's context from the auth wrapper down to every Select of the PromQL engine, so that the
// team restriction is a matcher on every selector and never a filter on results.
type promScope struct {
	matcher *labels.Matcher // project=~"<ids>"; nil when the team has no project
}

type promScopeKey struct{}

// withPromScope returns ctx restricted to the projects with the given ids.
func withPromScope(ctx context.Context, projectIDs []string) (context.Context, error) {
	var sc promScope
	if len(projectIDs) > 0 {
		quoted := make([]string, len(projectIDs))
		for i, id := range projectIDs {
			quoted[i] = regexp.QuoteMeta(id)
		}
		m, err := labels.NewMatcher(labels.MatchRegexp, series.LabelProject, strings.Join(quoted, "|"))
		if err != nil {
			return nil, err
		}
		sc.matcher = m
	}
	return context.WithValue(ctx, promScopeKey{}, sc), nil
}

// scopeMatchers returns ms plus the request's project matcher, or ok=false when the request may
// see nothing: no scope in the context (fail closed) or a team without projects.
func scopeMatchers(ctx context.Context, ms []*labels.Matcher) ([]*labels.Matcher, bool) {
	sc, found := ctx.Value(promScopeKey{}).(promScope)
	if !found || sc.matcher == nil {
		return nil, false
	}
	out := make([]*labels.Matcher, 0, len(ms)+1)
	out = append(out, ms...)
	return append(out, sc.matcher), true
}

// scopedQueryable wraps the TSDB so that every querier it hands out (to the PromQL engine, to
// series, labels and label values) adds the request's project matcher to every Select,
// LabelNames and LabelValues call.
type scopedQueryable struct {
	storage.SampleAndChunkQueryable
}

func (s scopedQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	q, err := s.SampleAndChunkQueryable.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return scopedQuerier{q}, nil
}

func (s scopedQueryable) ChunkQuerier(mint, maxt int64) (storage.ChunkQuerier, error) {
	q, err := s.SampleAndChunkQueryable.ChunkQuerier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return scopedChunkQuerier{q}, nil
}

type scopedQuerier struct{ storage.Querier }

func (q scopedQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	scoped, ok := scopeMatchers(ctx, ms)
	if !ok {
		return storage.EmptySeriesSet()
	}
	return budgeted(ctx, q.Querier.Select(ctx, sortSeries, hints, scoped...))
}

func (q scopedQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return scopedLabelValues(ctx, q.Querier, name, hints, ms)
}

func (q scopedQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return scopedLabelNames(ctx, q.Querier, hints, ms)
}

type scopedChunkQuerier struct{ storage.ChunkQuerier }

func (q scopedChunkQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.ChunkSeriesSet {
	scoped, ok := scopeMatchers(ctx, ms)
	if !ok {
		return storage.EmptyChunkSeriesSet()
	}
	return budgetedChunks(ctx, q.ChunkQuerier.Select(ctx, sortSeries, hints, scoped...))
}

func (q scopedChunkQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return scopedLabelValues(ctx, q.ChunkQuerier, name, hints, ms)
}

func (q scopedChunkQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return scopedLabelNames(ctx, q.ChunkQuerier, hints, ms)
}

func scopedLabelValues(ctx context.Context, q storage.LabelQuerier, name string, hints *storage.LabelHints, ms []*labels.Matcher) ([]string, annotations.Annotations, error) {
	scoped, ok := scopeMatchers(ctx, ms)
	if !ok {
		return nil, nil, nil
	}
	return q.LabelValues(ctx, name, hints, scoped...)
}

func scopedLabelNames(ctx context.Context, q storage.LabelQuerier, hints *storage.LabelHints, ms []*labels.Matcher) ([]string, annotations.Annotations, error) {
	scoped, ok := scopeMatchers(ctx, ms)
	if !ok {
		return nil, nil, nil
	}
	return q.LabelNames(ctx, hints, scoped...)
}
