package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/shopspring/decimal"

	"github.com/cygni/usage/budget"
	"github.com/cygni/usage/query"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/store"
)

// UsageQuerier answers usage and cost questions (query.Engine).
type UsageQuerier interface {
	Rollup(ctx context.Context, projects []string, bounds []time.Time, g query.Grouping) (*query.Rollup, error)
	RollupUsage(ctx context.Context, projects []string, bounds []time.Time, g query.Grouping) (*query.Rollup, error)
	Prices() query.Prices
	Forecast(ctx context.Context, projects []string, anchorDay int, now time.Time) (map[string]query.ProjectForecast, error)
	Recommendations(ctx context.Context, projects []string, now time.Time) ([]query.Recommendation, error)
	Now() time.Time
}

// UsageStore is what the usage endpoints need from the metadata store.
type UsageStore interface {
	GetProject(ctx context.Context, teamID, projectID string) (store.Project, error)
	ListProjects(ctx context.Context, teamID string) ([]store.Project, error)
	GetTeam(ctx context.Context, id string) (store.Team, error)
	SetBudgetLimit(ctx context.Context, teamID, projectID string, limit decimal.Decimal) error
}

// UsageDeps are the dependencies of the usage endpoints; nil parts make them answer 503.
type UsageDeps struct {
	Usage         UsageQuerier
	UsageProjects UsageStore
	// LimitChanged, if set, is called (without blocking) after a budget limit was changed, so
	// that the derived gauges and the alerts see it at once.
	LimitChanged func()
}

// MaxBudgetLimit is the largest budget limit POST /api/usage/limits accepts, in USD.
var MaxBudgetLimit = decimal.NewFromInt(1_000_000)

func (s *Server) registerUsage(r *mux.Router) {
	r.Handle("/api/usage/analytics", s.authed(RoleMember, s.usageHandler(s.analytics))).Methods(http.MethodGet)
	r.Handle("/api/usage/summary", s.authed(RoleMember, s.usageHandler(s.summary))).Methods(http.MethodGet)
	r.Handle("/api/usage/export", s.authed(RoleMember, s.usageHandler(s.export))).Methods(http.MethodGet)
	r.Handle("/api/usage/limits", s.authed(RoleMember, s.usageHandler(s.limits))).Methods(http.MethodGet)
	r.Handle("/api/usage/limits", s.authed(RoleAdmin, s.usageHandler(s.setLimit))).Methods(http.MethodPost)
	r.Handle("/api/usage/recommendations", s.authed(RoleMember, s.usageHandler(s.recommendations))).Methods(http.MethodGet)
	r.Handle("/api/projects/{projectId}/budget", s.authed(RoleMember, s.usageHandler(s.budget))).Methods(http.MethodGet)
	r.HandleFunc("/api/openapi.json", s.openAPI).Methods(http.MethodGet)
}

// usageReady reports a 503 when the usage dependencies are not wired.
func (s *Server) usageReady() error {
	if s.opts.Usage == nil || s.opts.UsageProjects == nil {
		return &Error{Kind: KindUnavailable, Code: "unavailable", Message: "the usage query layer is not running in this process"}
	}
	return nil
}

// usageHandler adapts a usage handler that returns its error: a 503 when the query layer is not
// wired in this process, then the handler; an error is written by usageFail.
func (s *Server) usageHandler(h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := s.usageReady()
		if err == nil {
			err = h(w, r)
		}
		if err != nil {
			s.usageFail(w, r, err)
		}
	}
}

// usageFail writes err, logging internal ones.
func (s *Server) usageFail(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if !errors.As(err, &e) {
		if errors.Is(err, context.Canceled) {
			return
		}
		s.logger.Error("usage request", "path", r.URL.Path, "err", err)
	}
	WriteError(w, err)
}

// ---- JSON rendering of exact decimals ----

// number renders a decimal as a JSON number with exactly the digits given (never a float).
type number string

func (n number) MarshalJSON() ([]byte, error) { return []byte(n), nil }

// UnmarshalJSON keeps a JSON number's digits as they are (the CLI reads the API's answers).
func (n *number) UnmarshalJSON(b []byte) error {
	var d json.Number
	if err := json.Unmarshal(b, &d); err != nil {
		return err
	}
	*n = number(d)
	return nil
}

func numFixed(d decimal.Decimal, places int32) number { return number(d.StringFixed(places)) }
func numRound(d decimal.Decimal, places int32) number { return number(d.Round(places).String()) }

// money renders an amount in USD as a string with 6 decimals (analytics, export) or 2 (bills).
func money(d decimal.Decimal, places int32) string { return d.StringFixed(places) }

var gib = decimal.NewFromInt(series.GiB)

// metricsJSON are the usage quantities of one bucket, project or total.
type metricsJSON struct {
	CPUSeconds         number `json:"cpuSeconds"`
	CPUHours           number `json:"cpuHours"`
	MemoryGBHours      number `json:"memoryGbHours"`
	ContainerInstances number `json:"containerInstances"`
	EgressGB           number `json:"egressGB"`
	Requests           number `json:"requests"`
	StorageGBHours     number `json:"storageGbHours"`
}

// costJSON is a cost breakdown in USD, amounts as decimal strings.
type costJSON struct {
	Compute   string `json:"compute"`
	Memory    string `json:"memory"`
	Bandwidth string `json:"bandwidth"`
	Requests  string `json:"requests"`
	Storage   string `json:"storage"`
	Total     string `json:"total"`
}

// ---- parameters ----

// parseDate reads an ISO 8601 date-time (RFC 3339, fractional seconds allowed) or a date
// (YYYY-MM-DD, midnight in loc).
func parseDate(r *http.Request, name string, loc *time.Location, required bool) (time.Time, bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		if required {
			return time.Time{}, false, BadParam(name, "is required (ISO 8601, e.g. 2024-01-01T00:00:00Z)")
		}
		return time.Time{}, false, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, true, nil
	}
	if t, err := time.ParseInLocation("2006-01-02", v, loc); err == nil {
		return t, true, nil
	}
	return time.Time{}, false, BadParam(name, "%q is not an ISO 8601 date (e.g. 2024-01-01T00:00:00Z or 2024-01-01)", v)
}

func parseTZ(r *http.Request) (*time.Location, error) {
	v := r.URL.Query().Get("tz")
	if v == "" {
		return time.UTC, nil
	}
	if v == "Local" {
		return nil, BadParam("tz", "%q is not an IANA time zone name (e.g. America/New_York)", v)
	}
	loc, err := time.LoadLocation(v)
	if err != nil {
		return nil, BadParam("tz", "%q is not an IANA time zone name (e.g. America/New_York)", v)
	}
	return loc, nil
}

// checkParams rejects parameters the endpoint does not know, so a typo is not silently ignored.
func checkParams(r *http.Request, known ...string) error {
	for k := range r.URL.Query() {
		switch {
		case slices.Contains(known, k):
		case len(known) == 0:
			return BadParam(k, "is not a parameter of %s (it takes none)", r.URL.Path)
		default:
			return BadParam(k, "is not a parameter of %s (known: %s)", r.URL.Path, strings.Join(known, ", "))
		}
	}
	return nil
}

// teamProjects returns the caller's projects: all of the team, or the one named by projectId
// (404 for an unknown or another team's project).
func (s *Server) teamProjects(ctx context.Context, teamID, projectID string) ([]store.Project, error) {
	if projectID != "" {
		if !store.ValidID(store.PrefixProject, projectID) {
			return nil, BadParam("projectId", "%q is not a project id (proj_ followed by 1-64 letters, digits, '-' or '_')", projectID)
		}
		p, err := s.opts.UsageProjects.GetProject(ctx, teamID, projectID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, NotFound("project %q not found", projectID)
		}
		if err != nil {
			return nil, err
		}
		return []store.Project{p}, nil
	}
	ps, err := s.opts.UsageProjects.ListProjects(ctx, teamID)
	if err != nil {
		return nil, err
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].ID < ps[j].ID })
	return ps, nil
}

// teamScope returns the caller's team and its projects (or the one project projectID, a 404
// when it is unknown or another team's).
func (s *Server) teamScope(r *http.Request, projectID string) (store.Team, []store.Project, error) {
	p, _ := PrincipalFrom(r.Context())
	ps, err := s.teamProjects(r.Context(), p.TeamID, projectID)
	if err != nil {
		return store.Team{}, nil, err
	}
	team, err := s.opts.UsageProjects.GetTeam(r.Context(), p.TeamID)
	if err != nil {
		return store.Team{}, nil, err
	}
	return team, ps, nil
}

func projectIDs(ps []store.Project) []string {
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	return ids
}

// rangeError maps the query layer's range errors to 400s naming the parameter.
func rangeError(err error) error {
	switch {
	case errors.Is(err, query.ErrRangeOrder):
		return BadParam("startDate", "is after endDate")
	case errors.Is(err, query.ErrRangeTooLarge):
		return BadParam("endDate", "%s", strings.TrimPrefix(err.Error(), ""))
	}
	return err
}

// ---- GET /api/usage/analytics ----

type analyticsBucketJSON struct {
	Period string `json:"period"`
	Start  string `json:"start"`
	End    string `json:"end"`
	metricsJSON
	Cost costJSON `json:"cost"`
}

type analyticsProjectJSON struct {
	ProjectID   string                `json:"projectId"`
	ProjectName string                `json:"projectName"`
	Data        []analyticsBucketJSON `json:"data"`
	// Deployments are the same buckets per deployment, with deployments=true.
	Deployments []analyticsDeploymentJSON `json:"deployments,omitempty"`
}

type analyticsDeploymentJSON struct {
	Deployment string                `json:"deployment"`
	Data       []analyticsBucketJSON `json:"data"`
}

type analyticsJSON struct {
	ProjectID *string               `json:"projectId"`
	StartDate string                `json:"startDate"`
	EndDate   string                `json:"endDate"`
	GroupBy   string                `json:"groupBy"`
	TZ        string                `json:"tz"`
	Data      []analyticsBucketJSON `json:"data"`
	Totals    struct {
		metricsJSON
		Cost costJSON `json:"cost"`
	} `json:"totals"`
	Projects []analyticsProjectJSON `json:"projects"`
}

func (s *Server) analytics(w http.ResponseWriter, r *http.Request) error {
	if err := checkParams(r, "projectId", "startDate", "endDate", "groupBy", "tz", "deployments"); err != nil {
		return err
	}
	var byDeployment bool
	switch v := r.URL.Query().Get("deployments"); v {
	case "", "false":
	case "true":
		byDeployment = true
	default:
		return BadParam("deployments", "%q is not true or false", v)
	}
	loc, err := parseTZ(r)
	if err != nil {
		return err
	}
	from, _, err := parseDate(r, "startDate", loc, true)
	if err != nil {
		return err
	}
	to, _, err := parseDate(r, "endDate", loc, true)
	if err != nil {
		return err
	}
	g := query.Day
	if v := r.URL.Query().Get("groupBy"); v != "" {
		if g, err = query.ParseGroupBy(v); err != nil {
			return BadParam("groupBy", "%q is not one of hour, day, week, month", v)
		}
	}
	bounds, err := query.Buckets(from, to, g, loc)
	if err != nil {
		return rangeError(err)
	}
	p, _ := PrincipalFrom(r.Context())
	projectID := r.URL.Query().Get("projectId")
	ps, err := s.teamProjects(r.Context(), p.TeamID, projectID)
	if err != nil {
		return err
	}
	// Usage only: each project's buckets are priced and shown below in integers (Prices.Shown).
	ru, err := s.opts.Usage.RollupUsage(r.Context(), projectIDs(ps), bounds, query.ByProject)
	if err != nil {
		return err
	}
	now := s.opts.Usage.Now()
	out := analyticsAnswer{startDate: from.Format(time.RFC3339), endDate: to.Format(time.RFC3339), groupBy: string(g), tz: loc.String()}
	if projectID != "" {
		out.projectID = &projectID
	}
	n := max(len(bounds)-1, 0)
	out.times = make([][3]string, n)
	for i := range out.times {
		out.times[i] = [3]string{g.Floor(bounds[i], loc).In(loc).Format(time.RFC3339), bounds[i].In(loc).Format(time.RFC3339), bounds[i+1].In(loc).Format(time.RFC3339)}
	}
	// Each project's bucket is shown rounded once (money.go); the buckets of all projects and
	// the totals are sums of what is shown.
	show := func(prices query.Prices, bs []query.Bucket) []shownBucket {
		d := make([]shownBucket, len(bs))
		for i := range bs {
			b := &bs[i]
			d[i] = shownBucket{showMetrics(&b.Usage, b.Start, b.End, now), showBucketCost(prices, b, placesHourly)}
		}
		return d
	}
	// The projects are shown, and their buckets summed, in parts on every core (a month of
	// 1,000 projects by hour is 744,000 buckets); the sums are exact integers, so the parts
	// merge to the same figures in any split.
	keys := ru.Keys()
	type part struct {
		data []shownBucket
		all  query.Amounts // the usage of the part's projects over the range
		err  error
	}
	shownRows := make([][]shownBucket, len(keys))
	parts := make([]part, renderParts(len(keys)*n))
	var wg sync.WaitGroup
	for pi := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pt := &parts[pi]
			pt.data = make([]shownBucket, n)
			for i := range pt.data {
				pt.data[i].c.places = placesHourly
			}
			lo, hi := pi*len(keys)/len(parts), (pi+1)*len(keys)/len(parts)
			for ki := lo; ki < hi; ki++ {
				k := keys[ki]
				row := ru.Rows[k]
				d := show(ru.Prices.Of(k.Project), row)
				shownRows[ki] = d
				for i, x := range d {
					pt.data[i].m = pt.data[i].m.add(x.m)
					pt.data[i].c = pt.data[i].c.add(x.c)
					if err := pt.all.Add(&row[i].Usage); err != nil && pt.err == nil {
						pt.err = err
					}
				}
			}
		}()
	}
	wg.Wait()
	out.data = make([]shownBucket, n)
	for i := range out.data {
		out.data[i].c.places = placesHourly
	}
	var all query.Amounts // the usage of every project over the range
	for pi := range parts {
		pt := &parts[pi]
		if pt.err != nil {
			return pt.err
		}
		for i, x := range pt.data {
			out.data[i].m = out.data[i].m.add(x.m)
			out.data[i].c = out.data[i].c.add(x.c)
		}
		if err := all.Add(&pt.all); err != nil {
			return err
		}
	}
	shownOf := make(map[query.Key][]shownBucket, len(keys))
	for ki, k := range keys {
		shownOf[k] = shownRows[ki]
	}
	out.totals.c.places = placesHourly
	for _, x := range out.data {
		out.totals.m = out.totals.m.add(x.m)
		out.totals.c = out.totals.c.add(x.c)
	}
	// The average task count over the whole range is not the sum of the buckets' averages.
	if n > 0 {
		out.totals.m.setTasks(&all, bounds[0], bounds[n], now)
	} else {
		out.totals.m.f.setFixed(mTasks, 0, &metricPlaces)
	}
	byDep := map[string][]query.Key{} // the deployments of each project, sorted
	var depRows *query.Rollup
	if byDeployment {
		if depRows, err = s.opts.Usage.RollupUsage(r.Context(), projectIDs(ps), bounds, query.ByDeployment); err != nil {
			return err
		}
		for _, k := range depRows.Keys() {
			byDep[k.Project] = append(byDep[k.Project], k)
		}
	}
	out.projects = make([]analyticsProject, 0, len(ps))
	for _, pr := range ps {
		d, ok := shownOf[query.Key{Project: pr.ID}]
		if !ok {
			continue
		}
		pj := analyticsProject{id: pr.ID, name: pr.Name, data: d}
		if depRows != nil {
			prices := depRows.Prices.Of(pr.ID)
			for _, k := range byDep[pr.ID] {
				pj.deployments = append(pj.deployments, analyticsDeployment{name: k.Deployment, data: show(prices, depRows.Rows[k])})
			}
		}
		out.projects = append(out.projects, pj)
	}
	if err := out.write(w); err != nil {
		// The status is sent: nothing to answer, the client went away mid-body.
		s.logger.Debug("analytics: writing the answer", "err", err)
	}
	return nil
}

// ---- GET /api/usage/summary ----

type summaryProjectJSON struct {
	ProjectID   string      `json:"projectId"`
	ProjectName string      `json:"projectName"`
	Cost        costJSON    `json:"cost"`
	TotalCost   string      `json:"totalCost"`
	Metrics     metricsJSON `json:"metrics"`
}

type summaryJSON struct {
	PeriodStart  string               `json:"periodStart"`
	PeriodEnd    string               `json:"periodEnd"`
	TotalCost    string               `json:"totalCost"`
	Cost         costJSON             `json:"cost"`
	MetricTotals metricsJSON          `json:"metricTotals"`
	Projects     []summaryProjectJSON `json:"projects"`
}

func (s *Server) summary(w http.ResponseWriter, r *http.Request) error {
	if err := checkParams(r); err != nil {
		return err
	}
	team, ps, err := s.teamScope(r, "")
	if err != nil {
		return err
	}
	now := s.opts.Usage.Now()
	start, end := budget.Period(now, team.BillingAnchorDay)
	cut := now.Truncate(time.Minute)
	ru, err := s.opts.Usage.Rollup(r.Context(), projectIDs(ps), []time.Time{start, cut}, query.ByProject)
	if err != nil {
		return err
	}
	out := summaryJSON{PeriodStart: start.Format(time.RFC3339), PeriodEnd: end.Format(time.RFC3339), Projects: make([]summaryProjectJSON, 0, len(ps))}
	// As an invoice (money.go): each project's parts rounded once to cents, every total the
	// sum of the parts shown.
	cost := shownCost{places: placesBill}
	var metrics shownMetrics
	for _, pr := range ps {
		var b query.Bucket
		if row, ok := ru.Rows[query.Key{Project: pr.ID}]; ok {
			b = row[0]
		}
		c, m := showBucketCost(ru.Prices.Of(pr.ID), &b, placesBill), showMetrics(&b.Usage, start, cut, now)
		cost, metrics = cost.add(c), metrics.add(m)
		out.Projects = append(out.Projects, summaryProjectJSON{
			ProjectID: pr.ID, ProjectName: pr.Name, Cost: c.json(), TotalCost: c.totalString(),
			Metrics: m.json(),
		})
	}
	out.Cost = cost.json()
	out.TotalCost = cost.totalString()
	out.MetricTotals = metrics.json()
	WriteJSON(w, http.StatusOK, out)
	return nil
}

// ---- GET/POST /api/usage/limits ----

type limitProjectJSON struct {
	ProjectID      string `json:"projectId"`
	ProjectName    string `json:"projectName"`
	BudgetLimit    number `json:"budgetLimit"`
	BudgetExceeded bool   `json:"budgetExceeded"`
	Suspended      bool   `json:"suspended"`
	Deployments    int    `json:"deployments"`
}

type limitsJSON struct {
	DefaultLimit number             `json:"defaultLimit"`
	Projects     []limitProjectJSON `json:"projects"`
}

// limitNumber renders a limit as the seed does: 100, 250.5.
func limitNumber(d decimal.Decimal) number { return number(d.String()) }

func (s *Server) limits(w http.ResponseWriter, r *http.Request) error {
	if err := checkParams(r); err != nil {
		return err
	}
	team, ps, err := s.teamScope(r, "")
	if err != nil {
		return err
	}
	f, err := s.opts.Usage.Forecast(r.Context(), projectIDs(ps), team.BillingAnchorDay, s.opts.Usage.Now())
	if err != nil {
		return err
	}
	def := store.DefaultBudgetLimit
	if team.DefaultLimit != nil {
		def = *team.DefaultLimit
	}
	out := limitsJSON{DefaultLimit: limitNumber(def), Projects: make([]limitProjectJSON, 0, len(ps))}
	for _, pr := range ps {
		out.Projects = append(out.Projects, limitEntry(pr, team, f[pr.ID]))
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

func limitEntry(p store.Project, t store.Team, f query.ProjectForecast) limitProjectJSON {
	limit := store.EffectiveLimit(p, t)
	return limitProjectJSON{
		ProjectID: p.ID, ProjectName: p.Name, BudgetLimit: limitNumber(limit),
		BudgetExceeded: budget.IsExceeded(f.MonthToDate.Total(), limit),
		Suspended:      p.Suspended, Deployments: p.Deployments,
	}
}

func (s *Server) setLimit(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<16))
	if err != nil {
		return &Error{Kind: KindTooLarge, Code: "body_too_large", Message: "the request body is larger than 64 KiB"}
	}
	var req struct {
		ProjectID   *string         `json:"projectId"`
		BudgetLimit json.RawMessage `json:"budgetLimit"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		msg := err.Error()
		if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
			return BadParam(strings.Trim(f, `"`), "is not a field of the request (known: projectId, budgetLimit)")
		}
		return &Error{Kind: KindBadRequest, Code: "invalid_body", Message: "body: not a JSON object {\"projectId\", \"budgetLimit\"}: " + msg}
	}
	if dec.More() {
		return &Error{Kind: KindBadRequest, Code: "invalid_body", Message: "body: more than one JSON value"}
	}
	if req.ProjectID == nil || *req.ProjectID == "" {
		return BadParam("projectId", "is required")
	}
	raw := strings.TrimSpace(string(req.BudgetLimit))
	if raw == "" || raw == "null" {
		return BadParam("budgetLimit", "is required (a positive amount in USD, e.g. 200 or 150.50)")
	}
	limit, err := decimal.NewFromString(raw)
	switch {
	case err != nil || !strings.ContainsAny(raw[:1], "-0123456789"):
		return BadParam("budgetLimit", "%s is not a JSON number (e.g. 200 or 150.50)", raw)
	case !limit.IsPositive():
		return BadParam("budgetLimit", "%s must be positive", limit)
	case limit.Exponent() < -2 && !limit.Equal(limit.Round(2)):
		return BadParam("budgetLimit", "%s has more than 2 decimals", raw)
	case limit.GreaterThan(MaxBudgetLimit):
		return BadParam("budgetLimit", "%s is above the maximum of %s USD; contact support for larger limits", limit, MaxBudgetLimit)
	}
	limit = limit.Round(2)
	p, _ := PrincipalFrom(r.Context())
	before, err := s.teamProjects(r.Context(), p.TeamID, *req.ProjectID)
	if err != nil {
		return err
	}
	if err := s.opts.UsageProjects.SetBudgetLimit(r.Context(), p.TeamID, *req.ProjectID, limit); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return NotFound("project %q not found", *req.ProjectID)
		}
		return err
	}
	if len(before) == 1 {
		old := ""
		if before[0].BudgetLimit != nil {
			old = before[0].BudgetLimit.String()
		}
		s.recordAudit(r, p.TeamID, store.AuditBudgetLimit, *req.ProjectID, old, limit.String())
	}
	if s.opts.LimitChanged != nil {
		s.opts.LimitChanged()
	}
	team, err := s.opts.UsageProjects.GetTeam(r.Context(), p.TeamID)
	if err != nil {
		return err
	}
	pr, err := s.opts.UsageProjects.GetProject(r.Context(), p.TeamID, *req.ProjectID)
	if err != nil {
		return err
	}
	f, err := s.opts.Usage.Forecast(r.Context(), []string{pr.ID}, team.BillingAnchorDay, s.opts.Usage.Now())
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, limitEntry(pr, team, f[pr.ID]))
	return nil
}

// ---- GET /api/projects/{projectId}/budget ----

type budgetJSON struct {
	ProjectID   string `json:"projectId"`
	Used        number `json:"used"`
	Limit       number `json:"limit"`
	Remaining   number `json:"remaining"`
	PercentUsed number `json:"percentUsed"`
	Status      string `json:"status"`
	Breakdown   struct {
		Compute struct {
			Cost     string `json:"cost"`
			CPUHours string `json:"cpuHours"`
		} `json:"compute"`
		Memory struct {
			Cost    string `json:"cost"`
			GBHours string `json:"gbHours"`
		} `json:"memory"`
		Storage struct {
			Cost    string `json:"cost"`
			GBHours string `json:"gbHours"`
		} `json:"storage"`
		Bandwidth struct {
			Cost     string `json:"cost"`
			EgressGB string `json:"egressGB"`
		} `json:"bandwidth"`
		Requests struct {
			Cost     string `json:"cost"`
			Requests string `json:"requests"`
		} `json:"requests"`
	} `json:"breakdown"`
	Forecast    number `json:"forecast"`
	PeriodStart string `json:"periodStart"`
	PeriodEnd   string `json:"periodEnd"`
}

func (s *Server) budget(w http.ResponseWriter, r *http.Request) error {
	if err := checkParams(r); err != nil {
		return err
	}
	id := mux.Vars(r)["projectId"]
	team, ps, err := s.teamScope(r, id)
	if err != nil {
		return err
	}
	now := s.opts.Usage.Now()
	start, end := budget.Period(now, team.BillingAnchorDay)
	ru, err := s.opts.Usage.Rollup(r.Context(), []string{id}, []time.Time{start, now.Truncate(time.Minute)}, query.ByProject)
	if err != nil {
		return err
	}
	f, err := s.opts.Usage.Forecast(r.Context(), []string{id}, team.BillingAnchorDay, now)
	if err != nil {
		return err
	}
	var b query.Bucket
	if row, ok := ru.Rows[query.Key{Project: id}]; ok {
		b = row[0]
	}
	// As a bill (money.go): used is the sum of the breakdown's costs as shown.
	shownC, shownM := showBucketCost(ru.Prices.Of(id), &b, placesBill), showMetrics(&b.Usage, start, now.Truncate(time.Minute), now)
	used := shownC.total()
	limit := store.EffectiveLimit(ps[0], team)
	remaining := decimal.Max(limit.Sub(used), decimal.Zero)
	// Status and percent from the exact cost, by the rules the alerts use (package budget).
	status, pct := budget.Status(b.Cost.Total(), limit), budget.PercentUsed(b.Cost.Total(), limit)
	out := budgetJSON{
		ProjectID: id, Used: numFixed(used, 2), Limit: numFixed(limit, 2), Remaining: numFixed(remaining, 2),
		PercentUsed: numFixed(pct, placesPercent), Status: status, Forecast: numFixed(f[id].Forecast, 2),
		PeriodStart: start.Format(time.RFC3339), PeriodEnd: end.Format(time.RFC3339),
	}
	out.Breakdown.Compute.Cost = shownC.part(cCompute)
	out.Breakdown.Compute.CPUHours = shownM.str(mCPUHours)
	out.Breakdown.Memory.Cost = shownC.part(cMemory)
	out.Breakdown.Memory.GBHours = shownM.str(mMemory)
	out.Breakdown.Storage.Cost = shownC.part(cStorage)
	out.Breakdown.Storage.GBHours = shownM.str(mStorage)
	out.Breakdown.Bandwidth.Cost = shownC.part(cBandwidth)
	out.Breakdown.Bandwidth.EgressGB = shownM.str(mEgress)
	out.Breakdown.Requests.Cost = shownC.part(cRequests)
	out.Breakdown.Requests.Requests = shownM.str(mRequests)
	WriteJSON(w, http.StatusOK, out)
	return nil
}

// ---- GET /api/usage/recommendations ----

type recommendationJSON struct {
	ProjectID         string `json:"projectId"`
	Deployment        string `json:"deployment"`
	CurrentCPU        number `json:"currentCpu"`
	CurrentMemoryGB   number `json:"currentMemoryGB"`
	PeakCPUUsed       number `json:"peakCpuUsed"`
	PeakMemoryUsedGB  number `json:"peakMemoryUsedGB"`
	RecommendedCPU    number `json:"recommendedCpu"`
	RecommendedMemory number `json:"recommendedMemoryGB"`
	AverageTasks      number `json:"averageTasks"`
	MonthlySaving     string `json:"monthlySaving"`
	Reason            string `json:"reason"`
}

func (s *Server) recommendations(w http.ResponseWriter, r *http.Request) error {
	if err := checkParams(r, "projectId"); err != nil {
		return err
	}
	p, _ := PrincipalFrom(r.Context())
	ps, err := s.teamProjects(r.Context(), p.TeamID, r.URL.Query().Get("projectId"))
	if err != nil {
		return err
	}
	recs, err := s.opts.Usage.Recommendations(r.Context(), projectIDs(ps), s.opts.Usage.Now())
	if err != nil {
		return err
	}
	out := struct {
		Window          string               `json:"window"`
		Recommendations []recommendationJSON `json:"recommendations"`
	}{Window: "14d", Recommendations: make([]recommendationJSON, 0, len(recs))}
	for _, rc := range recs {
		out.Recommendations = append(out.Recommendations, recommendationJSON{
			ProjectID: rc.Project, Deployment: rc.Deployment,
			CurrentCPU: numRound(rc.Current.VCPU, 2), CurrentMemoryGB: numRound(rc.Current.MemoryGB, 2),
			PeakCPUUsed: numRound(rc.PeakVCPU, 3), PeakMemoryUsedGB: numRound(rc.PeakMemoryGB, 3),
			RecommendedCPU: numRound(rc.Recommended.VCPU, 2), RecommendedMemory: numRound(rc.Recommended.MemoryGB, 2),
			AverageTasks: numRound(rc.AverageTasks, 2), MonthlySaving: money(rc.MonthlySaving, 2), Reason: rc.Reason,
		})
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

// ---- GET /api/usage/export ----

// errStreamed marks an error after the first byte was written: too late for a JSON error body.
var errStreamed = errors.New("export cut short")

func (s *Server) export(w http.ResponseWriter, r *http.Request) error {
	if err := checkParams(r, "startDate", "endDate", "format", "projectId"); err != nil {
		return err
	}
	from, _, err := parseDate(r, "startDate", time.UTC, true)
	if err != nil {
		return err
	}
	to, _, err := parseDate(r, "endDate", time.UTC, true)
	if err != nil {
		return err
	}
	format := r.URL.Query().Get("format")
	switch format {
	case "":
		format = "json"
	case "json", "csv":
	default:
		return BadParam("format", "%q is not csv or json", format)
	}
	if from.After(to) {
		return BadParam("startDate", "is after endDate")
	}
	if to.Sub(from) > query.MaxRange {
		return BadParam("endDate", "the range covers at most %d days", int(query.MaxRange/(24*time.Hour)))
	}
	p, _ := PrincipalFrom(r.Context())
	ps, err := s.teamProjects(r.Context(), p.TeamID, r.URL.Query().Get("projectId"))
	if err != nil {
		return err
	}
	name := fmt.Sprintf("cygni-usage-%s-%s.%s", from.UTC().Format("20060102T150405Z"), to.UTC().Format("20060102T150405Z"), format)
	enc := newExportEncoder(w, format)
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if err := exportRows(r.Context(), s.opts.Usage, ps, from, to, enc); err != nil {
		// The status is sent; the client sees a truncated body (CSV without its end, JSON
		// without its closing bracket) and the error is logged.
		s.logger.Warn("export cut short; the client got a truncated file", "err", err)
		return nil
	}
	return enc.close()
}
