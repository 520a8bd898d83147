package api

// Limits: what one request and one team may cost the service (docs/limits.md). The checks that
// protect the process run before the expensive work: the body is capped while it is read, a
// PromQL expression is measured (length, nesting depth) before it is parsed, its subqueries and
// steps are checked before it is evaluated, and each team queues for a bounded number of slots.
// Every refusal is a 4xx naming the limit by its configuration key.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/model"
)

// Limits bound the requests of the API. A zero field takes DefaultLimits' value.
type Limits struct {
	// RequestBodyBytes caps every request body (413 above it).
	RequestBodyBytes int64

	// The Prometheus API (/api/v1/).
	QueryTimeout      time.Duration // from the request's arrival: checks, parsing, evaluation
	MaxSamples        int           // promql.EngineOpts.MaxSamples
	MaxSeries         int           // series one request may select, over all its selectors
	MaxQueryLength    int           // bytes of one expression or match[] selector
	MaxNestingDepth   int           // brackets ( [ { open at once in one expression
	MinStep           time.Duration // query_range step
	MaxPoints         int           // query_range points per series, (end-start)/step
	MinSubqueryStep   time.Duration // [range:step]; a subquery without a step uses 1m
	MaxSubqueryPoints int           // range/step of one subquery
	MaxResponseBytes  int64         // one answer's body
	// MaxConcurrentPerTeam queries of one team run at once; 0: half the cores (GOMAXPROCS), at
	// least one, so that one team never takes every core (docs/benchmarks.md).
	MaxConcurrentPerTeam int
	MaxQueuedPerTeam     int // negative: no queue
	QueueTimeout         time.Duration

	// The REST endpoints.
	RESTTimeout              time.Duration
	RESTMaxConcurrentPerTeam int // 0: the number of cores (GOMAXPROCS)
	RESTMaxQueuedPerTeam     int
	RESTQueueTimeout         time.Duration

	// CORSAllowedOrigins may call /api/v1/ from a browser. Empty: no cross-origin access.
	CORSAllowedOrigins []string
}

// DefaultLimits are the configuration's defaults (config/limits.go keeps the same values).
func DefaultLimits() Limits {
	return Limits{
		RequestBodyBytes:         1 << 20,
		QueryTimeout:             time.Minute,
		MaxSamples:               5_000_000,
		MaxSeries:                10_000,
		MaxQueryLength:           16 << 10,
		MaxNestingDepth:          64,
		MinStep:                  time.Second,
		MaxPoints:                11_000,
		MinSubqueryStep:          10 * time.Second,
		MaxSubqueryPoints:        50_000,
		MaxResponseBytes:         32 << 20,
		MaxConcurrentPerTeam:     max(1, runtime.GOMAXPROCS(0)/2),
		MaxQueuedPerTeam:         32,
		QueueTimeout:             10 * time.Second,
		RESTTimeout:              time.Minute,
		RESTMaxConcurrentPerTeam: runtime.GOMAXPROCS(0),
		RESTMaxQueuedPerTeam:     32,
		RESTQueueTimeout:         10 * time.Second,
	}
}

// withDefaults fills the zero fields of l from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	def := func(v *int, dv int) {
		if *v == 0 {
			*v = dv
		}
	}
	defDur := func(v *time.Duration, dv time.Duration) {
		if *v == 0 {
			*v = dv
		}
	}
	if l.RequestBodyBytes == 0 {
		l.RequestBodyBytes = d.RequestBodyBytes
	}
	if l.MaxResponseBytes == 0 {
		l.MaxResponseBytes = d.MaxResponseBytes
	}
	def(&l.MaxSamples, d.MaxSamples)
	def(&l.MaxSeries, d.MaxSeries)
	def(&l.MaxQueryLength, d.MaxQueryLength)
	def(&l.MaxNestingDepth, d.MaxNestingDepth)
	def(&l.MaxPoints, d.MaxPoints)
	def(&l.MaxSubqueryPoints, d.MaxSubqueryPoints)
	def(&l.MaxConcurrentPerTeam, d.MaxConcurrentPerTeam)
	def(&l.RESTMaxConcurrentPerTeam, d.RESTMaxConcurrentPerTeam)
	// Queue lengths: 0 takes the default, a negative one means no queue.
	for _, q := range []struct {
		v  *int
		dv int
	}{{&l.MaxQueuedPerTeam, d.MaxQueuedPerTeam}, {&l.RESTMaxQueuedPerTeam, d.RESTMaxQueuedPerTeam}} {
		switch {
		case *q.v == 0:
			*q.v = q.dv
		case *q.v < 0:
			*q.v = 0
		}
	}
	defDur(&l.QueryTimeout, d.QueryTimeout)
	defDur(&l.MinStep, d.MinStep)
	defDur(&l.MinSubqueryStep, d.MinSubqueryStep)
	defDur(&l.QueueTimeout, d.QueueTimeout)
	defDur(&l.RESTTimeout, d.RESTTimeout)
	defDur(&l.RESTQueueTimeout, d.RESTQueueTimeout)
	return l
}

// limitError is a refusal: the status, the limit's configuration key and what was asked.
type limitError struct {
	status int    // 413, 422 or 429
	key    string // e.g. "limits.query.min_step"
	msg    string
}

func (e *limitError) Error() string { return e.msg + " (" + e.key + ")" }

func refuse(status int, key, format string, args ...any) *limitError {
	return &limitError{status: status, key: key, msg: fmt.Sprintf(format, args...)}
}

// promErrorType is the errorType of Prometheus' envelope for a refusal.
func (e *limitError) promErrorType() string {
	switch e.status {
	case http.StatusTooManyRequests:
		return "unavailable"
	case http.StatusUnprocessableEntity:
		return "cost_limit"
	}
	return "bad_data"
}

// restError is the refusal as DESIGN.md's error body.
func (e *limitError) restError() *Error {
	k := KindUnprocessable
	switch e.status {
	case http.StatusTooManyRequests:
		k = KindTooManyRequests
	case http.StatusRequestEntityTooLarge:
		k = KindTooLarge
	}
	return &Error{Kind: k, Code: "limit_exceeded", Message: e.Error()}
}

// teamLimiter gives each team at most `slots` requests at once; up to `queue` more wait at most
// `wait` for a slot. A team's requests never take another team's slots.
type teamLimiter struct {
	name  string // "limits.query" or "limits.rest", for messages
	slots int
	queue int
	wait  time.Duration

	mu    sync.Mutex
	teams map[string]*teamSlots
}

type teamSlots struct {
	sem     chan struct{}
	waiting atomic.Int64
}

func newTeamLimiter(name string, slots, queue int, wait time.Duration) *teamLimiter {
	return &teamLimiter{name: name, slots: slots, queue: queue, wait: wait, teams: map[string]*teamSlots{}}
}

func (l *teamLimiter) slotsOf(team string) *teamSlots {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.teams[team]
	if !ok {
		t = &teamSlots{sem: make(chan struct{}, l.slots)}
		l.teams[team] = t
	}
	return t
}

// acquire waits for one of the team's slots; release it with the returned func. It fails with a
// 429 when the queue is full or the wait is over, and with ctx's error when the client left.
func (l *teamLimiter) acquire(ctx context.Context, team string) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t := l.slotsOf(team)
	release := func() { <-t.sem }
	select {
	case t.sem <- struct{}{}:
		return release, nil
	default:
	}
	if t.waiting.Add(1) > int64(l.queue) {
		t.waiting.Add(-1)
		return nil, refuse(http.StatusTooManyRequests, l.name+".max_queued_per_team",
			"too many requests of this team at once: %d running and %d waiting; retry later", l.slots, l.queue)
	}
	defer t.waiting.Add(-1)
	timer := time.NewTimer(l.wait)
	defer timer.Stop()
	select {
	case t.sem <- struct{}{}:
		return release, nil
	case <-timer.C:
		return nil, refuse(http.StatusTooManyRequests, l.name+".queue_timeout",
			"no query slot of this team became free within %s (%d run at once); retry later", model.Duration(l.wait), l.slots)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// holdWriter holds the status until the first byte of the body, so that a handler's answer can
// still be replaced: by a refusal when the body would exceed max bytes, or by replace when it
// returns true for the held status (a timeout that should name the limit). A body that grows
// past max after its first bytes went out aborts the connection.
type holdWriter struct {
	http.ResponseWriter
	max     int64 // 0: no limit
	replace func(status int) bool
	onLimit func() // writes the refusal
	status  int
	n       int64
	sent    bool // the status went out
	dropped bool // the handler's answer was replaced; discard what it writes
}

func (w *holdWriter) WriteHeader(code int) {
	if w.sent || w.dropped || w.status != 0 {
		return
	}
	if code >= 100 && code < 200 {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.status = code
}

func (w *holdWriter) flushHeader() bool {
	if w.dropped {
		return false
	}
	if w.sent {
		return true
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.replace != nil && w.replace(w.status) {
		w.dropped = true
		return false
	}
	w.sent = true
	w.ResponseWriter.WriteHeader(w.status)
	return true
}

func (w *holdWriter) Write(p []byte) (int, error) {
	if w.dropped {
		return len(p), nil
	}
	if w.max > 0 && w.n+int64(len(p)) > w.max {
		if !w.sent {
			w.dropped = true
			w.Header().Del("Content-Encoding")
			w.onLimit()
			return len(p), nil
		}
		panic(http.ErrAbortHandler) // the status is out: cut the connection, never a truncated 200
	}
	if !w.flushHeader() {
		return len(p), nil
	}
	w.n += int64(len(p))
	return w.ResponseWriter.Write(p)
}

// Flush sends the held status and what was written (streamed exports flush every few rows).
func (w *holdWriter) Flush() {
	if !w.flushHeader() {
		return
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

var _ http.Flusher = (*holdWriter)(nil)

// finish sends a held status without a body.
func (w *holdWriter) finish() { w.flushHeader() }

func (w *holdWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// isMaxBytes reports whether err comes from a body over http.MaxBytesReader's limit.
func isMaxBytes(err error) bool {
	var mb *http.MaxBytesError
	return errors.As(err, &mb)
}

func bodyTooLarge(max int64) *limitError {
	return refuse(http.StatusRequestEntityTooLarge, "limits.request_body_bytes", "the request body is larger than %s bytes", strconv.FormatInt(max, 10))
}
