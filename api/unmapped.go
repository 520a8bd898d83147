package api

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

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
	LastSeen   time.Time `json:"lastSeen"` // the end of the last collected period
}

// FindUnmapped lists the services with cygni_running_tasks samples in [from, to] whose project
// is not in known (or who have no project), by reason, project, cluster and deployment.
func FindUnmapped(ctx context.Context, q storage.Queryable, known map[string]bool, from, to time.Time) ([]UnmappedService, error) {
	querier, err := q.Querier(from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("open a TSDB querier: %w", err)
	}
	defer querier.Close()
	hints := &storage.SelectHints{Start: from.UnixMilli(), End: to.UnixMilli()}
	set := querier.Select(ctx, false, hints, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, series.RunningTasks))
	type key struct{ project, cluster, deployment, region string }
	found := map[key]int64{}
	for set.Next() {
		ls := set.At().Labels()
		k := key{ls.Get(series.LabelProject), ls.Get(series.LabelCluster), ls.Get(series.LabelDeployment), ls.Get(series.LabelRegion)}
		if k.project != "" && known[k.project] {
			continue
		}
		var last int64
		it := set.At().Iterator(nil)
		for it.Next() != 0 {
			if t := it.AtT(); t > last {
				last = t
			}
		}
		if err := it.Err(); err != nil {
			return nil, fmt.Errorf("read series %s: %w", ls, err)
		}
		if last == 0 {
			continue // no sample inside [from, to]
		}
		if prev, ok := found[k]; !ok || last > prev {
			found[k] = last
		}
	}
	if err := set.Err(); err != nil {
		return nil, fmt.Errorf("select %s: %w", series.RunningTasks, err)
	}
	out := make([]UnmappedService, 0, len(found))
	for k, last := range found {
		u := UnmappedService{Reason: ReasonUnknownProject, Project: k.project, Deployment: k.deployment, Cluster: k.cluster, Region: k.region, LastSeen: time.UnixMilli(last).UTC()}
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
		return a.Deployment < b.Deployment
	})
	return out, nil
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
	list, err := FindUnmapped(r.Context(), deps.Series, known, from, to)
	if err != nil {
		s.internal(w, "list unmapped services", err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{
		"from":     from.Format(time.RFC3339),
		"to":       to.Format(time.RFC3339),
		"unmapped": list,
	})
}
