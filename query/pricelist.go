package query

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/cygni/usage/config"
)

// ProjectOverrides are the negotiated price overrides of one project (config.PriceOverride):
// its team's and its own, each list in increasing EffectiveFrom order. At each instant the
// project's own override in force beats its team's, which beats the default sheets.
type ProjectOverrides struct{ Team, Project []config.PriceOverride }

// OverridesFunc returns the overrides of projects (nil: every project), only for the projects
// that have any. The Engine calls it once per rollup (and the Deriver once per cycle), never per
// sample.
type OverridesFunc func(ctx context.Context, projects []string) (map[string]ProjectOverrides, error)

// PriceList is the prices of a set of projects on one timeline of sheets: the default sheets
// (Prices) with each project's overrides on top. Every project's Prices holds a sheet for each
// instant at which any project's prices change, so a sheet index (Bucket.Sheet) means the same
// span of time for every project of the list.
type PriceList struct {
	def Prices            // the default sheets on the common timeline
	by  map[string]Prices // the projects with overrides
}

// Of returns the prices of a project: its overrides on top of the default sheets.
func (l PriceList) Of(project string) Prices {
	if p, ok := l.by[project]; ok {
		return p
	}
	return l.def
}

// Default returns the default sheets on the list's timeline (the prices of a project without
// overrides).
func (l PriceList) Default() Prices { return l.def }

// uniform reports whether every project has the default prices.
func (l PriceList) uniform() bool { return len(l.by) == 0 }

// NewPriceList puts the projects' overrides on top of def (which must hold at least one sheet).
func NewPriceList(def Prices, overrides map[string]ProjectOverrides) PriceList {
	def = def.OrDefault()
	if len(overrides) == 0 {
		return PriceList{def: def}
	}
	// The common timeline: every instant at which a default sheet or any override takes effect.
	at := slices.Clone(def.from[1:])
	for _, o := range overrides {
		for _, l := range [][]config.PriceOverride{o.Team, o.Project} {
			for _, x := range l {
				at = append(at, x.EffectiveFrom.UnixMilli())
			}
		}
	}
	slices.Sort(at)
	at = slices.Compact(at)
	from := append([]int64{minTime}, at...)
	base := make([]config.PriceSheet, len(from))
	for i, t := range from {
		base[i] = def.sheets[def.sheet(t)]
	}
	l := PriceList{def: pricesAt(base, from), by: make(map[string]Prices, len(overrides))}
	sheets := make([]config.PriceSheet, len(from))
	for project, o := range overrides {
		for i, t := range from {
			s := base[i]
			if x, ok := inForce(o.Team, t); ok {
				s = x.Apply(s)
			}
			if x, ok := inForce(o.Project, t); ok {
				s = x.Apply(s)
			}
			sheets[i] = s
		}
		l.by[project] = pricesAt(slices.Clone(sheets), from)
	}
	return l
}

// inForce returns the override of list (increasing EffectiveFrom) in force at t (ms).
func inForce(list []config.PriceOverride, t int64) (config.PriceOverride, bool) {
	for i := len(list) - 1; i >= 0; i-- {
		if list[i].EffectiveFrom.UnixMilli() <= t {
			return list[i], true
		}
	}
	return config.PriceOverride{}, false
}

// PriceList reads the overrides of projects (nil: every project) once and returns their
// prices. Without an OverridesFunc every project has the default sheets.
func (e *Engine) PriceList(ctx context.Context, projects []string) (PriceList, error) {
	if e.overrides == nil || (projects != nil && len(projects) == 0) {
		return PriceList{def: e.prices}, nil
	}
	ov, err := e.overrides(ctx, projects)
	if err != nil {
		return PriceList{}, fmt.Errorf("read the price overrides: %w", err)
	}
	return NewPriceList(e.prices, ov), nil
}

// EffectiveSheets returns the sheets in force for a project over time, merged where
// consecutive sheets are equal: what GET /api/teams/{teamId}/prices shows.
func (p Prices) EffectiveSheets() []config.PriceSheet {
	var out []config.PriceSheet
	for i, s := range p.sheets {
		s.EffectiveFrom = time.Time{}
		if i > 0 {
			s.EffectiveFrom = time.UnixMilli(p.from[i]).UTC()
		}
		if n := len(out); n > 0 && sameSheet(out[n-1], s) {
			continue
		}
		out = append(out, s)
	}
	return out
}

func sameSheet(a, b config.PriceSheet) bool {
	return a.VCPUHour.Equal(b.VCPUHour.Decimal) && a.MemoryGBHour.Equal(b.MemoryGBHour.Decimal) && a.EgressGB.Equal(b.EgressGB.Decimal) &&
		a.StorageGBHour.Equal(b.StorageGBHour.Decimal) && a.MillionRequests.Equal(b.MillionRequests.Decimal)
}
