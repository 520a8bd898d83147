package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestTeamLimiterQueuesThenRefuses(t *testing.T) {
	l := newTeamLimiter("limits.query", 2, 1, 20*time.Millisecond)
	ctx := context.Background()
	r1, err := l.acquire(ctx, "team_a")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := l.acquire(ctx, "team_a")
	if err != nil {
		t.Fatal(err)
	}
	// Another team's slots are its own.
	rb, err := l.acquire(ctx, "team_b")
	if err != nil {
		t.Fatalf("team_b waits on team_a's slots: %v", err)
	}
	rb()
	// One may wait: it gets the slot released while it waits.
	got := make(chan error, 1)
	go func() {
		r, err := l.acquire(ctx, "team_a")
		if err == nil {
			r()
		}
		got <- err
	}()
	for l.slotsOf("team_a").waiting.Load() != 1 {
		time.Sleep(time.Millisecond)
	}
	// The queue is full: refused at once.
	_, err = l.acquire(ctx, "team_a")
	var le *limitError
	if !errors.As(err, &le) || le.status != http.StatusTooManyRequests || le.key != "limits.query.max_queued_per_team" {
		t.Fatalf("full queue: %v", err)
	}
	r1()
	if err := <-got; err != nil {
		t.Fatalf("queued request: %v", err)
	}
	// Nobody releases: the wait ends in a 429 naming the queue timeout.
	r3, _ := l.acquire(ctx, "team_a")
	_, err = l.acquire(ctx, "team_a")
	if !errors.As(err, &le) || le.status != http.StatusTooManyRequests || le.key != "limits.query.queue_timeout" {
		t.Fatalf("queue timeout: %v", err)
	}
	// A client that leaves stops waiting.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := l.acquire(cctx, "team_a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}
	r2()
	r3()
}

func TestPromNestingDepth(t *testing.T) {
	for q, want := range map[string]int{
		`1`:                        0,
		`sum(rate(x{a="(("}[5m]))`: 3,
		`x{a='[[['}`:               1,
		"x # (((\n":                0,
		"`(((` + ((1))":            2,
		`x{a="\"(("}`:              1,
	} {
		if got := promNestingDepth(q); got != want {
			t.Errorf("promNestingDepth(%q) = %d, want %d", q, got, want)
		}
	}
}

// REST refusals are in DESIGN.md's envelope and name the limit.
func TestRESTLimitsRefusals(t *testing.T) {
	tokens := fuzzTokens{"tok-a": {TeamID: "team_a", Role: RoleMember}}
	get := func(s *Server) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/api/whoami", nil)
		req.Header.Set("Authorization", "Bearer tok-a")
		rr := httptest.NewRecorder()
		s.ServeHTTP(rr, req)
		return rr
	}
	want := func(rr *httptest.ResponseRecorder, status int, limit string) {
		t.Helper()
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal(rr.Body.Bytes(), &body); err != nil || rr.Code != status || body.Error.Code != "limit_exceeded" || !strings.Contains(body.Error.Message, limit) {
			t.Fatalf("%d %s, want %d limit_exceeded naming %s", rr.Code, rr.Body.String(), status, limit)
		}
	}
	s := New(Options{AuthDeps: AuthDeps{Tokens: tokens}, Limits: Limits{RESTTimeout: time.Nanosecond}})
	want(get(s), http.StatusUnprocessableEntity, "limits.rest.timeout")

	s = New(Options{AuthDeps: AuthDeps{Tokens: tokens}, Limits: Limits{RESTMaxConcurrentPerTeam: 1, RESTMaxQueuedPerTeam: -1}})
	release, err := s.restSlots.acquire(context.Background(), "team_a")
	if err != nil {
		t.Fatal(err)
	}
	rr := get(s)
	want(rr, http.StatusTooManyRequests, "limits.rest.max_queued_per_team")
	if rr.Header().Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	release()
	if rr := get(s); rr.Code != http.StatusOK {
		t.Fatalf("after release: %d %s", rr.Code, rr.Body.String())
	}
}
