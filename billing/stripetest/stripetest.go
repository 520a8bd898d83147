// Package stripetest is a recording Stripe server for tests: it speaks Stripe's form-encoded API
// for Billing Meter events and legacy usage records, keeps what it accepted (stripe-mock keeps
// nothing), replays a stored response for a repeated Idempotency-Key as Stripe does, refuses a
// meter event whose identifier it accepted in the last 24 hours with Stripe's 400 "An event
// already exists with identifier …", and can inject failures (500, 429, …) before or after it
// records a request (a response lost on the way back). It answers the read side from what it
// accepted: customers, subscription items, meters, hourly meter event summaries and usage
// record summaries.
package stripetest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// IdentifierTTL is how long the server deduplicates a meter event identifier (Stripe: at least
// 24 hours).
const IdentifierTTL = 24 * time.Hour

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
	now         func() time.Time
	events      []Event
	identifiers map[string]time.Time       // identifier → when it was accepted
	records     map[string]map[int64]int64 // item → timestamp → quantity
	idem        map[string]stored
	faults      []int           // statuses to answer next, before recording
	lost        []int           // statuses to answer next, after recording (the response is lost)
	rejectCus   map[string]bool // customers answered with a 400 invalid_request_error
	customers   map[string]bool
	items       map[string]string // subscription item → customer
	adjust      map[summaryKey]int64
	meters      map[string]bool       // event names listed as meters
	subPrices   map[string][]subPrice // customer → its subscription items' prices
	requests    int
	replays     int
	duplicates  int
	summaryReqs int
	onRecord    func() // called after recording, before answering
}

type summaryKey struct {
	eventName, customer string
	hour                int64
}

// New starts a recording server on loopback, closed in t.Cleanup.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{Key: "sk_test_recording", now: time.Now, identifiers: map[string]time.Time{}, records: map[string]map[int64]int64{},
		idem: map[string]stored{}, rejectCus: map[string]bool{}, customers: map[string]bool{}, items: map[string]string{},
		adjust: map[summaryKey]int64{}}
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

// FailAfterRecord makes the next requests be recorded as usual and then answered with these
// statuses (e.g. 500), one each: Stripe stored the request, the caller never learns it. The
// success is what is kept under the idempotency key.
func (s *Server) FailAfterRecord(statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lost = append(s.lost, statuses...)
}

// SetClock sets the server's clock, which ages identifiers (default time.Now).
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// AddCustomer makes GET /v1/customers/{id} find the customer.
func (s *Server) AddCustomer(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		s.customers[id] = true
	}
}

// AddSubscriptionItem makes GET /v1/subscription_items/{id} find the item, of that customer.
func (s *Server) AddSubscriptionItem(id, customer string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items[id] = customer
}

// AdjustSummary adds delta to what the hourly event summary of a meter (by event name) and
// customer reports for the hour starting at hour, without any event: a Stripe whose records
// differ from what was sent.
func (s *Server) AdjustSummary(eventName, customer string, hour time.Time, delta int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.adjust[summaryKey{eventName, customer, hour.Unix()}] += delta
}

// MeterID is the id under which the server lists the meter of an event name.
func MeterID(eventName string) string { return "mtr_test_" + eventName }

// SummaryRequests returns how many event summary pages were asked for.
func (s *Server) SummaryRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.summaryReqs
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
	if r.Method == http.MethodGet {
		status, body := s.get(r.URL.Path, r.URL.Query())
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
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
	if len(s.lost) > 0 {
		st := s.lost[0]
		s.lost = s.lost[1:]
		s.mu.Unlock()
		writeErr(w, st, "api_error", "", "injected failure after the request was stored")
		return
	}
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
	now := s.now()
	if at, ok := s.identifiers[e.Identifier]; ok && e.Identifier != "" && now.Sub(at) < IdentifierTTL {
		// As Stripe: a second event under an identifier it holds is refused, not counted.
		s.duplicates++
		return http.StatusBadRequest, errBody("invalid_request_error", "An event already exists with identifier "+e.Identifier+".")
	}
	if e.Identifier != "" {
		s.identifiers[e.Identifier] = now
	}
	s.events = append(s.events, e)
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

// subPrice is a subscription item on a metered price.
type subPrice struct{ item, eventName, unitAmountDecimal string }

// AddSubscriptionPrice makes GET /v1/subscriptions?customer= list, for the customer, an active
// subscription item on a price of the meter of eventName with unit_amount_decimal (US cents
// per unit, as Stripe writes it).
func (s *Server) AddSubscriptionPrice(customer, item, eventName, unitAmountDecimal string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.subPrices == nil {
		s.subPrices = map[string][]subPrice{}
	}
	s.subPrices[customer] = append(s.subPrices[customer], subPrice{item, eventName, unitAmountDecimal})
}

// AddMeter makes GET /v1/billing/meters list a meter for each event name (id MeterID(name));
// a meter is also listed once an event of its name was accepted.
func (s *Server) AddMeter(eventNames ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.meters == nil {
		s.meters = map[string]bool{}
	}
	for _, n := range eventNames {
		s.meters[n] = true
	}
}

func notFoundBody(what, id string) []byte {
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"type": "invalid_request_error", "code": "resource_missing",
		"param": "id", "message": fmt.Sprintf("No such %s: '%s'", what, id)}})
	return b
}

// page cuts a list of objects (each with an "id") as Stripe's list endpoints do: limit (default
// 10, at most 100) after the object starting_after.
func page(q url.Values, path string, objs []map[string]any) (int, []byte) {
	limit := 10
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return http.StatusBadRequest, errBody("invalid_request_error", "Invalid limit: "+v)
		}
		limit = n
	}
	if after := q.Get("starting_after"); after != "" {
		for i, o := range objs {
			if o["id"] == after {
				objs = objs[i+1:]
				break
			}
		}
	}
	more := len(objs) > limit
	if more {
		objs = objs[:limit]
	}
	if objs == nil {
		objs = []map[string]any{}
	}
	b, _ := json.Marshal(map[string]any{"object": "list", "url": path, "has_more": more, "data": objs})
	return http.StatusOK, b
}

// get answers the read side; s.mu is held.
func (s *Server) get(path string, q url.Values) (int, []byte) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) == 3 && parts[0] == "v1" && parts[1] == "customers":
		if !s.customers[parts[2]] {
			return http.StatusNotFound, notFoundBody("customer", parts[2])
		}
		b, _ := json.Marshal(map[string]any{"id": parts[2], "object": "customer", "livemode": false})
		return http.StatusOK, b
	case len(parts) == 3 && parts[0] == "v1" && parts[1] == "subscription_items":
		cus, ok := s.items[parts[2]]
		if !ok {
			return http.StatusNotFound, notFoundBody("subscription_item", parts[2])
		}
		b, _ := json.Marshal(map[string]any{"id": parts[2], "object": "subscription_item", "subscription": "sub_" + cus})
		return http.StatusOK, b
	case len(parts) == 4 && parts[0] == "v1" && parts[1] == "subscription_items" && parts[3] == "usage_record_summaries":
		item := parts[2]
		if _, ok := s.items[item]; !ok {
			return http.StatusNotFound, notFoundBody("subscription_item", item)
		}
		var total int64
		var first, last int64
		for ts, n := range s.records[item] {
			total += n
			if first == 0 || ts < first {
				first = ts
			}
			last = max(last, ts)
		}
		objs := []map[string]any{{"id": "sis_" + item, "object": "usage_record_summary", "livemode": false,
			"subscription_item": item, "total_usage": total, "period": map[string]any{"start": first, "end": last + 1}}}
		return page(q, path, objs)
	case len(parts) == 2 && parts[0] == "v1" && parts[1] == "subscriptions":
		cus := q.Get("customer")
		var objs []map[string]any
		if items := s.subPrices[cus]; len(items) > 0 {
			data := make([]map[string]any, 0, len(items))
			for _, it := range items {
				data = append(data, map[string]any{"id": it.item, "object": "subscription_item", "price": map[string]any{
					"id": "price_" + it.item, "object": "price", "unit_amount_decimal": it.unitAmountDecimal, "billing_scheme": "per_unit",
					"recurring": map[string]any{"interval": "month", "usage_type": "metered", "meter": MeterID(it.eventName)}}})
			}
			objs = append(objs, map[string]any{"id": "sub_" + cus, "object": "subscription", "customer": cus, "status": "active",
				"items": map[string]any{"object": "list", "data": data, "has_more": false}})
		}
		return page(q, path, objs)
	case len(parts) == 3 && parts[0] == "v1" && parts[1] == "billing" && parts[2] == "meters":
		names := map[string]bool{}
		for n := range s.meters {
			names[n] = true
		}
		for _, e := range s.events {
			names[e.EventName] = true
		}
		sorted := make([]string, 0, len(names))
		for n := range names {
			sorted = append(sorted, n)
		}
		sort.Strings(sorted)
		objs := make([]map[string]any, 0, len(sorted))
		for _, n := range sorted {
			objs = append(objs, map[string]any{"id": MeterID(n), "object": "billing.meter", "event_name": n, "status": "active",
				"default_aggregation": map[string]string{"formula": "sum"}})
		}
		return page(q, path, objs)
	case len(parts) == 5 && parts[0] == "v1" && parts[1] == "billing" && parts[2] == "meters" && parts[4] == "event_summaries":
		s.summaryReqs++
		return s.summaries(path, strings.TrimPrefix(parts[3], "mtr_test_"), q)
	}
	return http.StatusNotFound, errBody("invalid_request_error", "Unrecognized request URL (GET: "+path+")")
}

// summaries answers GET /v1/billing/meters/{id}/event_summaries from the accepted events (and
// the adjustments): one summary per hour with events in [start_time, end_time), or one for
// the whole range without value_grouping_window.
func (s *Server) summaries(path, eventName string, q url.Values) (int, []byte) {
	cus := q.Get("customer")
	from, err1 := strconv.ParseInt(q.Get("start_time"), 10, 64)
	to, err2 := strconv.ParseInt(q.Get("end_time"), 10, 64)
	if cus == "" || err1 != nil || err2 != nil || from >= to {
		return http.StatusBadRequest, errBody("invalid_request_error", fmt.Sprintf("event summaries need customer, start_time < end_time: %v", q))
	}
	win := q.Get("value_grouping_window")
	if win != "" && win != "hour" {
		return http.StatusBadRequest, errBody("invalid_request_error", "value_grouping_window "+win+" is not served here")
	}
	if win == "hour" && (from%3600 != 0 || to%3600 != 0) {
		return http.StatusBadRequest, errBody("invalid_request_error", "start_time and end_time must be on hour boundaries for value_grouping_window=hour")
	}
	sums := map[int64]int64{}
	bucket := func(ts int64) int64 {
		if win == "hour" {
			return ts - ts%3600
		}
		return from
	}
	for _, e := range s.events {
		if e.EventName == eventName && e.Customer == cus && e.Timestamp >= from && e.Timestamp < to {
			sums[bucket(e.Timestamp)] += e.Value
		}
	}
	for k, d := range s.adjust {
		if k.eventName == eventName && k.customer == cus && k.hour >= from && k.hour < to {
			sums[bucket(k.hour)] += d
		}
	}
	starts := make([]int64, 0, len(sums))
	for h := range sums {
		starts = append(starts, h)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	objs := make([]map[string]any, 0, len(starts))
	for _, h := range starts {
		end := to
		if win == "hour" {
			end = h + 3600
		}
		objs = append(objs, map[string]any{"id": fmt.Sprintf("mtrusum_%s_%s_%d", eventName, cus, h), "object": "billing.meter_event_summary",
			"aggregated_value": sums[h], "start_time": h, "end_time": end, "meter": MeterID(eventName), "livemode": false})
	}
	return page(q, path, objs)
}

// SetUsageRecord overwrites the quantity a subscription item holds at a timestamp, as if it
// was set outside the product.
func (s *Server) SetUsageRecord(item string, ts time.Time, q int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.records[item] == nil {
		s.records[item] = map[int64]int64{}
	}
	s.records[item][ts.Unix()] = q
}
