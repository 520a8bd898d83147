// Package stripetest is a recording Stripe server for tests: it speaks Stripe's form-encoded API
// for Billing Meter events and legacy usage records, keeps what it accepted (stripe-mock keeps
// nothing), replays a stored response for a repeated Idempotency-Key as Stripe does, counts an
// identifier once, and can inject failures (500, 429, …) or hold responses.
package stripetest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Event is one accepted meter event.
type Event struct {
	EventName  string
	Identifier string
	Timestamp  int64
	Customer   string
	Value      int64
}

// UsageRecord is the quantity set on a subscription item at a timestamp.
type UsageRecord struct {
	Item      string
	Timestamp int64
	Quantity  int64
}

type stored struct {
	status int
	body   []byte
}

// Server is the recording Stripe server.
type Server struct {
	URL string
	Key string // the API key it accepts

	srv *httptest.Server

	mu          sync.Mutex
	events      []Event
	identifiers map[string]bool
	records     map[string]map[int64]int64 // item → timestamp → quantity
	idem        map[string]stored
	faults      []int           // statuses to answer next, before recording
	rejectCus   map[string]bool // customers answered with a 400 invalid_request_error
	requests    int
	replays     int
	duplicates  int
	onRecord    func() // called after recording, before answering
}

// New starts a recording server on loopback, closed in t.Cleanup.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{Key: "sk_test_recording", identifiers: map[string]bool{}, records: map[string]map[int64]int64{},
		idem: map[string]stored{}, rejectCus: map[string]bool{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.handle))
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// Fail makes the next requests answer these statuses (e.g. 500, 429), one each, before anything
// is recorded.
func (s *Server) Fail(statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, statuses...)
}

// RejectCustomer answers events of this customer with a 400 (a permanent error).
func (s *Server) RejectCustomer(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejectCus[id] = true
}

// OnRecord calls fn after a request was recorded and before it is answered.
func (s *Server) OnRecord(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onRecord = fn
}

// Events returns the accepted meter events in arrival order.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// Total sums the values of the accepted events of one event name and customer.
func (s *Server) Total(eventName, customer string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, e := range s.events {
		if e.EventName == eventName && e.Customer == customer {
			n += e.Value
		}
	}
	return n
}

// UsageTotal sums the quantities set on a subscription item.
func (s *Server) UsageTotal(item string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, q := range s.records[item] {
		n += q
	}
	return n
}

// UsageAt returns the quantity set on a subscription item at a timestamp.
func (s *Server) UsageAt(item string, ts int64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records[item][ts]
}

// Stats returns the number of requests, of idempotent replays and of duplicate identifiers.
func (s *Server) Stats() (requests, replays, duplicates int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests, s.replays, s.duplicates
}

func writeErr(w http.ResponseWriter, status int, typ, code, msg string) []byte {
	body, _ := json.Marshal(map[string]any{"error": map[string]string{"type": typ, "code": code, "message": msg}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return body
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	if r.Header.Get("Authorization") != "Bearer "+s.Key {
		s.mu.Unlock()
		writeErr(w, http.StatusUnauthorized, "invalid_request_error", "", "Invalid API Key provided")
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if prev, ok := s.idem[key]; ok && key != "" {
		s.replays++
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Idempotent-Replayed", "true")
		w.WriteHeader(prev.status)
		_, _ = w.Write(prev.body)
		return
	}
	if len(s.faults) > 0 {
		// As Stripe: a rate-limited request is rejected before it runs and nothing is saved; a
		// 5xx is saved under the idempotency key and replayed for it.
		st := s.faults[0]
		s.faults = s.faults[1:]
		s.mu.Unlock()
		if st == http.StatusTooManyRequests {
			writeErr(w, st, "invalid_request_error", "rate_limit", "Too many requests")
			return
		}
		body := writeErr(w, st, "api_error", "", "injected failure")
		if key != "" {
			s.mu.Lock()
			s.idem[key] = stored{status: st, body: body}
			s.mu.Unlock()
		}
		return
	}
	if err := r.ParseForm(); err != nil {
		s.mu.Unlock()
		writeErr(w, http.StatusBadRequest, "invalid_request_error", "", err.Error())
		return
	}
	f := r.PostForm
	var status int
	var body []byte
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/billing/meter_events":
		status, body = s.meterEvent(f)
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/subscription_items/") && strings.HasSuffix(r.URL.Path, "/usage_records"):
		item := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/subscription_items/"), "/usage_records")
		status, body = s.usageRecord(item, f)
	default:
		s.mu.Unlock()
		writeErr(w, http.StatusNotFound, "invalid_request_error", "resource_missing", "Unrecognized request URL "+r.URL.Path)
		return
	}
	if key != "" {
		s.idem[key] = stored{status: status, body: body}
	}
	hook := s.onRecord
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func errBody(typ, msg string) []byte {
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"type": typ, "message": msg}})
	return b
}

// meterEvent records an event; s.mu is held.
func (s *Server) meterEvent(f map[string][]string) (int, []byte) {
	get := func(k string) string {
		if v := f[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	e := Event{EventName: get("event_name"), Identifier: get("identifier"), Customer: get("payload[stripe_customer_id]")}
	ts, err1 := strconv.ParseInt(get("timestamp"), 10, 64)
	val, err2 := strconv.ParseInt(get("payload[value]"), 10, 64)
	if e.EventName == "" || e.Customer == "" || err1 != nil || err2 != nil {
		return http.StatusBadRequest, errBody("invalid_request_error", fmt.Sprintf("malformed meter event %v", f))
	}
	if s.rejectCus[e.Customer] {
		return http.StatusBadRequest, errBody("invalid_request_error", "No such customer: '"+e.Customer+"'")
	}
	e.Timestamp, e.Value = ts, val
	if e.Identifier != "" && s.identifiers[e.Identifier] {
		s.duplicates++ // counted once, as Stripe dedups identifiers
	} else {
		s.identifiers[e.Identifier] = true
		s.events = append(s.events, e)
	}
	b, _ := json.Marshal(map[string]any{
		"object": "billing.meter_event", "event_name": e.EventName, "identifier": e.Identifier, "timestamp": e.Timestamp,
		"created": e.Timestamp, "livemode": false,
		"payload": map[string]string{"stripe_customer_id": e.Customer, "value": strconv.FormatInt(val, 10)},
	})
	return http.StatusOK, b
}

// usageRecord sets a quantity; s.mu is held.
func (s *Server) usageRecord(item string, f map[string][]string) (int, []byte) {
	get := func(k string) string {
		if v := f[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	ts, err1 := strconv.ParseInt(get("timestamp"), 10, 64)
	q, err2 := strconv.ParseInt(get("quantity"), 10, 64)
	if err1 != nil || err2 != nil || get("action") != "set" {
		return http.StatusBadRequest, errBody("invalid_request_error", fmt.Sprintf("malformed usage record %v", f))
	}
	if s.records[item] == nil {
		s.records[item] = map[int64]int64{}
	}
	s.records[item][ts] = q
	b, _ := json.Marshal(map[string]any{"object": "usage_record", "id": fmt.Sprintf("mbur_%s_%d", item, ts),
		"livemode": false, "quantity": q, "subscription_item": item, "timestamp": ts})
	return http.StatusOK, b
}
