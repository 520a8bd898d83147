package api

// The Prometheus API's guard: CORS, the Prometheus envelope for auth errors, and the limits that
// run before the upstream handler parses or evaluates anything.

import (
	"context"
	"errors"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
)

// promCORSHeaders are the headers an allowed origin gets (those of Prometheus' own SetCORS).
var promCORSHeaders = map[string]string{
	"Access-Control-Allow-Headers":  "Accept, Authorization, Content-Type, Origin",
	"Access-Control-Allow-Methods":  "GET, POST, OPTIONS",
	"Access-Control-Expose-Headers": "Date",
}

// promCORS answers cross-origin requests to /api/v1/: an origin of Limits.CORSAllowedOrigins
// gets the CORS headers (on errors too, so a browser script can read them); any other origin
// gets none. The Origin header is then removed, so the upstream handler never acts on it.
func (s *Server) promCORS(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Add("Vary", "Origin")
		if slices.Contains(s.lim.CORSAllowedOrigins, origin) {
			for k, v := range promCORSHeaders {
				w.Header().Set(k, v)
			}
			w.Header().Set("Access-Control-Allow-Origin", origin)
		}
		r2 := *r
		r2.Header = r.Header.Clone()
		r2.Header.Del("Origin")
		h.ServeHTTP(w, &r2)
	})
}

// promPreflight answers a CORS preflight (OPTIONS) of /api/v1/: 204, with the CORS headers
// for an allowed origin (promCORS sets them).
func promPreflight(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }

// promAuthed is authed with Prometheus' error envelope, which Grafana and promtool parse.
func (s *Server) promAuthed(min Role, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r)
		if err == nil && !p.Role.Allows(min) {
			err = Forbidden("this endpoint needs the %s role; the token has %s", min, p.Role)
		}
		if err != nil {
			writePromAPIError(w, err)
			return
		}
		h.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

// writePromAPIError writes an *Error (or an internal error) in Prometheus' envelope.
func writePromAPIError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) || e.Kind == KindInternal {
		writePromError(w, http.StatusInternalServerError, "internal", "internal error")
		return
	}
	typ := "bad_data"
	switch e.Kind {
	case KindUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="cygni-usage"`)
		typ = "unauthorized"
	case KindForbidden:
		typ = "forbidden"
	case KindNotFound:
		typ = "not_found"
	case KindMethodNotAllowed:
		typ = "method_not_allowed"
	case KindUnavailable:
		typ = "unavailable"
	}
	writePromError(w, kindStatus[e.Kind], typ, e.Message)
}

func writePromLimit(w http.ResponseWriter, e *limitError) {
	if e.status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	writePromError(w, e.status, e.promErrorType(), e.Error())
}

// promGuard runs the upstream query handler within the limits: the form is read (capped by
// limits.request_body_bytes), every expression and selector is measured and checked before
// upstream parses it, the request waits for one of its team's slots, and the answer may not
// grow past limits.query.max_response_bytes. limits.query.timeout runs from here.
func (s *Server) promGuard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l := s.lim
		ctx, cancel := context.WithTimeout(r.Context(), l.QueryTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		if err := r.ParseForm(); err != nil {
			if isMaxBytes(err) {
				writePromLimit(w, bodyTooLarge(l.RequestBodyBytes))
				return
			}
			writePromError(w, http.StatusBadRequest, "bad_data", "the form cannot be read: "+err.Error())
			return
		}
		if le := checkPromRequest(r, l); le != nil {
			writePromLimit(w, le)
			return
		}
		p, _ := PrincipalFrom(ctx)
		release, err := s.promSlots.acquire(ctx, p.TeamID)
		if err != nil {
			var le *limitError
			switch {
			case errors.As(err, &le):
				writePromLimit(w, le)
			case errors.Is(err, context.DeadlineExceeded):
				writePromLimit(w, queryTimeout(l.QueryTimeout))
			default: // the client left
				writePromError(w, 499, "canceled", "the client closed the request")
			}
			return
		}
		defer release()
		ctx = withSeriesBudget(ctx, l.MaxSeries)
		hw := &holdWriter{ResponseWriter: w, max: l.MaxResponseBytes}
		hw.onLimit = func() {
			writePromLimit(w, refuse(http.StatusUnprocessableEntity, "limits.query.max_response_bytes",
				"the answer is larger than %d bytes; narrow the selectors, shorten the range or raise the step", l.MaxResponseBytes))
		}
		hw.replace = func(status int) bool {
			if status >= 400 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				w.Header().Del("Content-Encoding")
				writePromLimit(w, queryTimeout(l.QueryTimeout))
				return true
			}
			return false
		}
		h.ServeHTTP(hw, r.WithContext(ctx))
		hw.finish()
	})
}

func queryTimeout(d time.Duration) *limitError {
	return refuse(http.StatusUnprocessableEntity, "limits.query.timeout", "the query took longer than %s", model.Duration(d))
}

// checkPromRequest checks the parameters of a Prometheus API request against the limits
// without evaluating anything: expressions (query) and selectors (match[]) by length and
// nesting depth before any parsing, then subqueries' resolution, then query_range's step.
func checkPromRequest(r *http.Request, l Limits) *limitError {
	for _, q := range r.Form["query"] {
		if le := checkPromExpr("query", q, l); le != nil {
			return le
		}
	}
	for _, m := range r.Form["match[]"] {
		if le := checkPromSize("match[]", m, l); le != nil {
			return le
		}
	}
	if strings.HasSuffix(r.URL.Path, "/query_range") {
		return checkPromStep(r, l)
	}
	return nil
}

func checkPromSize(param, q string, l Limits) *limitError {
	if len(q) > l.MaxQueryLength {
		return refuse(http.StatusUnprocessableEntity, "limits.query.max_query_length",
			"%s: the expression is %d bytes long, more than %d", param, len(q), l.MaxQueryLength)
	}
	if d := promNestingDepth(q); d > l.MaxNestingDepth {
		return refuse(http.StatusUnprocessableEntity, "limits.query.max_nesting_depth",
			"%s: the expression nests brackets %d deep, more than %d", param, d, l.MaxNestingDepth)
	}
	return nil
}

// promSubqueryDefaultStep is the step of a subquery that names none (NewPromEngine's
// NoStepSubqueryIntervalFn).
const promSubqueryDefaultStep = time.Minute

func checkPromExpr(param, q string, l Limits) *limitError {
	if le := checkPromSize(param, q, l); le != nil {
		return le
	}
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(q)
	if err != nil {
		return nil // upstream parses it again and reports the error as Prometheus does
	}
	var le *limitError
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		sq, ok := n.(*parser.SubqueryExpr)
		if !ok || le != nil {
			return nil
		}
		step := sq.Step
		if step == 0 {
			step = promSubqueryDefaultStep
		}
		if step < l.MinSubqueryStep {
			le = refuse(http.StatusUnprocessableEntity, "limits.query.min_subquery_step",
				"%s: the subquery [%s:%s] has a resolution finer than %s", param, model.Duration(sq.Range), model.Duration(step), model.Duration(l.MinSubqueryStep))
			return nil
		}
		if pts := int64(sq.Range / step); pts > int64(l.MaxSubqueryPoints) {
			le = refuse(http.StatusUnprocessableEntity, "limits.query.max_subquery_points",
				"%s: the subquery [%s:%s] has %d points per series, more than %d", param, model.Duration(sq.Range), model.Duration(step), pts, l.MaxSubqueryPoints)
		}
		return nil
	})
	return le
}

// promNestingDepth is the deepest nesting of (, [ and { in q outside string literals and
// comments: a linear scan, so that a hostile expression is measured without parsing it.
func promNestingDepth(q string) int {
	depth, deepest := 0, 0
	for i := 0; i < len(q); i++ {
		switch c := q[i]; c {
		case '"', '\'', '`':
			for i++; i < len(q) && q[i] != c; i++ {
				if q[i] == '\\' && c != '`' {
					i++
				}
			}
		case '#':
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case '(', '[', '{':
			depth++
			deepest = max(deepest, depth)
		case ')', ']', '}':
			depth--
		}
	}
	return deepest
}

// checkPromStep refuses a query_range step under limits.query.min_step or one that gives more
// points per series than limits.query.max_points_per_series. Values upstream cannot parse are
// left to it.
func checkPromStep(r *http.Request, l Limits) *limitError {
	step, ok := promParseDuration(r.FormValue("step"))
	if !ok || step <= 0 {
		return nil
	}
	if step < l.MinStep {
		return refuse(http.StatusUnprocessableEntity, "limits.query.min_step",
			"step: %s is finer than the minimum step of %s", r.FormValue("step"), model.Duration(l.MinStep))
	}
	start, ok1 := promParseTime(r.FormValue("start"))
	end, ok2 := promParseTime(r.FormValue("end"))
	if ok1 && ok2 && end > start {
		if pts := (end - start) / step.Seconds(); pts > float64(l.MaxPoints) {
			return refuse(http.StatusUnprocessableEntity, "limits.query.max_points_per_series",
				"step: %s over this range gives %.0f points per series, more than %d; raise the step", r.FormValue("step"), math.Floor(pts), l.MaxPoints)
		}
	}
	return nil
}

// promParseDuration parses a step as Prometheus' API does: float seconds or a duration.
func promParseDuration(s string) (time.Duration, bool) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		ns := f * float64(time.Second)
		if math.IsNaN(ns) || math.IsInf(ns, 0) || ns >= math.MaxInt64 || ns < math.MinInt64 {
			return 0, false
		}
		return time.Duration(ns), true
	}
	if d, err := model.ParseDuration(s); err == nil {
		return time.Duration(d), true
	}
	return 0, false
}

// promParseTime parses a time parameter (unix seconds or RFC 3339) to unix seconds.
func promParseTime(s string) (float64, bool) {
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
		return f, true
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return float64(t.UnixNano()) / 1e9, true
	}
	return 0, false
}

// seriesBudget counts the series one request selects, over all its selectors.
type seriesBudget struct {
	left atomic.Int64
	max  int
}

type seriesBudgetKey struct{}

func withSeriesBudget(ctx context.Context, max int) context.Context {
	b := &seriesBudget{max: max}
	b.left.Store(int64(max))
	return context.WithValue(ctx, seriesBudgetKey{}, b)
}

func (b *seriesBudget) take() error {
	if b.left.Add(-1) < 0 {
		return refuse(http.StatusUnprocessableEntity, "limits.query.max_series",
			"the query selects more than %d series; narrow its selectors", b.max)
	}
	return nil
}

type budgetSeriesSet struct {
	storage.SeriesSet
	b   *seriesBudget
	err error
}

func (s *budgetSeriesSet) Next() bool {
	if s.err != nil || !s.SeriesSet.Next() {
		return false
	}
	s.err = s.b.take()
	return s.err == nil
}

func (s *budgetSeriesSet) Err() error {
	if s.err != nil {
		return s.err
	}
	return s.SeriesSet.Err()
}

type budgetChunkSeriesSet struct {
	storage.ChunkSeriesSet
	b   *seriesBudget
	err error
}

func (s *budgetChunkSeriesSet) Next() bool {
	if s.err != nil || !s.ChunkSeriesSet.Next() {
		return false
	}
	s.err = s.b.take()
	return s.err == nil
}

func (s *budgetChunkSeriesSet) Err() error {
	if s.err != nil {
		return s.err
	}
	return s.ChunkSeriesSet.Err()
}

// budgeted wraps ss with the request's series budget, if it has one.
func budgeted(ctx context.Context, ss storage.SeriesSet) storage.SeriesSet {
	if b, ok := ctx.Value(seriesBudgetKey{}).(*seriesBudget); ok {
		return &budgetSeriesSet{SeriesSet: ss, b: b}
	}
	return ss
}

func budgetedChunks(ctx context.Context, ss storage.ChunkSeriesSet) storage.ChunkSeriesSet {
	if b, ok := ctx.Value(seriesBudgetKey{}).(*seriesBudget); ok {
		return &budgetChunkSeriesSet{ChunkSeriesSet: ss, b: b}
	}
	return ss
}
