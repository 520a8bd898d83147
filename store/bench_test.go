package store

// Run: go test -run '^$' -bench . -benchtime 2s ./store/

import (
	"context"
	"testing"
)

func benchStore(b *testing.B) *Store {
	b.Helper()
	s := openForTest(b, Options{Driver: DriverSQLite, DataDir: b.TempDir()})
	mustTeam(b, s, "team_a")
	return s
}

// BenchmarkVerifyToken is the cost the auth middleware adds to every request (SQLite).
func BenchmarkVerifyToken(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	plain, _, err := s.CreateToken(ctx, "team_a", "member", "")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.VerifyToken(ctx, plain); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateNotification measures one durable insert (SQLite, WAL, synchronous=NORMAL).
func BenchmarkCreateNotification(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.CreateNotification(ctx, Notification{TeamID: "team_a", Type: "budget_warning", Message: "m", Payload: map[string]any{"percent": 80}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkListNotifications reads a page of 20 (with the unread count) out of 10,000.
func BenchmarkListNotifications(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	for range 10000 {
		if _, err := s.CreateNotification(ctx, Notification{TeamID: "team_a", Type: "budget_warning", Message: "m"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.ListNotifications(ctx, "team_a", NotificationQuery{Limit: 20}); err != nil {
			b.Fatal(err)
		}
	}
}
