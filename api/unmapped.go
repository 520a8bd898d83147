package api

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/shopspring/decimal"

	"github.com/cygni/usage/query"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/store"
)

// ProjectLister lists every project the metadata store knows.
type ProjectLister interface {
	AllProjects(ctx context.Context) ([]store.Project, error)
}

// UnmappedDeps are the dependencies of GET /api/usage/unmapped.
type UnmappedDeps struct {
	Series   storage.Queryable // the TSDB
	Projects ProjectLister
	Prices   query.Prices     // the price sheets the estimated costs use (zero: the defaults)
	Now      func() time.Time // nil: time.Now
}

// Unmapped reasons.
const (
	ReasonUnknownProject = "unknown_project" // tagged with a project the store does not know
	ReasonUntagged       = "untagged"        // no cygni:project tag at all
)

// DefaultUnmappedDays is how far back GET /api/usage/unmapped looks by default.
const DefaultUnmappedDays = 7

// UnmappedService is an ECS service whose usage was collected but belongs to no known project.
// Its usage stays in the TSDB; creating the project (or tagging the service) attributes it.
type UnmappedService struct {
	Reason     string    `json:"reason"`            // ReasonUnknownProject or ReasonUntagged
	Project    string    `json:"project,omitempty"` // the unknown project id, "" when untagged
	Deployment string    `json:"deployment"`
	Cluster    string    `json:"cluster"`
	Region     string    `json:"region"`
	Account    string    `json:"account,omitempty"` // the AWS account of a target reached through a role
	LastSeen   time.Time `json:"lastSeen"`          // the end of the last collected period
	// Usage is what the service used in the period, and EstimatedCost what it would cost at the
	// price sheets in force hour by hour (the revenue nobody is billed for), both rounded as
	// on a bill (docs/api.md).
	Usage         metricsJSON `json:"usage"`
	EstimatedCost costJSON    `json:"estimatedCost"`
}

// FindUnmapped lists the services with usage samples in [from, to] whose project is not in
// known (or who have no project), by reason, project, cluster and deployment, with their usage
// and estimated cost in the period (integer quanta summed per hour, priced per hour with prices).
func FindUnmapped(ctx context.Context, q storage.Queryable, known map[string]bool, from, to time.Time, prices query.Prices) ([]UnmappedService, error) {
	prices = prices.OrDefault()
	querier, err := q.Querier(from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("open a TSDB querier: %w", err)
	}
	defer querier.Close()
	hints := &storage.SelectHints{Start: from.UnixMilli(), End: to.UnixMilli()}
	names := make([]string, len(series.Usage))
	for i, n := range series.Usage {
		names[i] = regexp.QuoteMeta(n)
	}
	set := querier.Select(ctx, false, hints, labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, strings.Join(names, "|")))
	type key struct{ project, cluster, deployment, region, account string }
	type acc struct {
		last  int64
		hours map[int64]*query.Amounts // by the hour's start, unix ms
	}
	found := map[key]*acc{}
	const hourMs = int64(time.Hour / time.Millisecond)
	for set.Next() {
		ls := set.At().Labels()
		k := key{ls.Get(series.LabelProject), ls.Get(series.LabelCluster), ls.Get(series.LabelDeployment), ls.Get(series.LabelRegion), ls.Get(series.LabelAccount)}
		if k.project != "" && known[k.project] {
			continue
		}
		m, ok := query.MetricOf(ls.Get(labels.MetricName))
		if !ok {
			continue
		}
		a := found[k]
		it := set.At().Iterator(nil)
		for it.Next() != chunkenc.ValNone {
			t, v := it.At()
			if t <= from.UnixMilli() {
				continue // the period (t − 1 min, t] began before from
			}
			qv, err := query.Quantize(m, v)
			if err != nil {
				return nil, fmt.Errorf("read series %s: %w", ls, err)
			}
			if a == nil {
				a = &acc{hours: map[int64]*query.Amounts{}}
				found[k] = a
			}
			if t > a.last { // any metric: running tasks are read only at the right-sizing cadence
				a.last = t
			}
			h := (t - 1) / hourMs * hourMs // a sample stamped at t covers the period before it
			if a.hours[h] == nil {
				a.hours[h] = &query.Amounts{}
			}
			if err := a.hours[h].AddQuanta(m, qv); err != nil {
				return nil, err
			}
		}
		if err := it.Err(); err != nil {
			return nil, fmt.Errorf("read series %s: %w", ls, err)
		}
	}
	if err := set.Err(); err != nil {
		return nil, fmt.Errorf("select the usage series: %w", err)
	}
	out := make([]UnmappedService, 0, len(found))
	for k, a := range found {
		if a.last == 0 {
			continue // no sample inside (from, to]
		}
		var total query.Amounts
		cost := shownCost{places: placesBill}
		for h, am := range a.hours {
			if err := total.Add(am); err != nil {
				return nil, err
			}
			cost = cost.add(showCost(prices.CostAt(time.UnixMilli(h), am), placesBill+4))
		}
		// Each hour's cost is kept to 6 decimals, the period's parts rounded once to cents.
		cost = cost.rounded(placesBill)
		u := UnmappedService{Reason: ReasonUnknownProject, Project: k.project, Deployment: k.deployment, Cluster: k.cluster, Region: k.region, Account: k.account,
			LastSeen: time.UnixMilli(a.last).UTC(), Usage: showMetrics(&total, from, to, to).json(), EstimatedCost: cost.json()}
		if k.project == "" {
			u.Reason = ReasonUntagged
		}
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Reason != b.Reason {
			return a.Reason < b.Reason
		}
		if a.Project != b.Project {
			return a.Project < b.Project
		}
		if a.Cluster != b.Cluster {
			return a.Cluster < b.Cluster
		}
		if a.Deployment != b.Deployment {
			return a.Deployment < b.Deployment
		}
		if a.Region != b.Region {
			return a.Region < b.Region
		}
		return a.Account < b.Account
	})
	return out, nil
}

// UnmappedTotal is the sum of the services' shown estimated costs: the revenue not attributed.
func UnmappedTotal(list []UnmappedService) decimal.Decimal {
	sum := decimal.Zero
	for _, u := range list {
		if d, err := decimal.NewFromString(u.EstimatedCost.Total); err == nil {
			sum = sum.Add(d)
		}
	}
	return sum
}

// KnownProjects returns the set of project ids in the store.
func KnownProjects(ctx context.Context, pl ProjectLister) (map[string]bool, error) {
	ps, err := pl.AllProjects(ctx)
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	known := make(map[string]bool, len(ps))
	for _, p := range ps {
		known[p.ID] = true
	}
	return known, nil
}

func (s *Server) registerUnmapped(r *mux.Router) {
	r.Handle("/api/usage/unmapped", s.operator(s.unmapped)).Methods(http.MethodGet)
}

// unmapped serves GET /api/usage/unmapped?days=N (admin): {"unmapped": [...], "from", "to"}.
func (s *Server) unmapped(w http.ResponseWriter, r *http.Request) {
	deps := s.opts.Unmapped
	if deps.Series == nil || deps.Projects == nil {
		WriteError(w, &Error{Kind: KindUnavailable, Code: "not_configured", Message: "the TSDB or the metadata store is not configured"})
		return
	}
	days := DefaultUnmappedDays
	v := r.URL.Query()
	for name := range v {
		if name != "days" {
			WriteError(w, BadParam(name, "unknown parameter; this endpoint takes days"))
			return
		}
	}
	if d := v.Get("days"); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 1 || n > 400 {
			WriteError(w, BadParam("days", "%q is not an integer in 1..400", d))
			return
		}
		days = n
	}
	known, err := KnownProjects(r.Context(), deps.Projects)
	if err != nil {
		s.internal(w, "list unmapped services", err)
		return
	}
	now := time.Now
	if deps.Now != nil {
		now = deps.Now
	}
	to := now().UTC()
	from := to.Add(-time.Duration(days) * 24 * time.Hour)
	list, err := FindUnmapped(r.Context(), deps.Series, known, from, to, deps.Prices)
	if err != nil {
		s.internal(w, "list unmapped services", err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{
		"from":                  from.Format(time.RFC3339),
		"to":                    to.Format(time.RFC3339),
		"unmapped":              list,
		"estimatedCostUnmapped": UnmappedTotal(list).StringFixed(placesBill),
	})
}
