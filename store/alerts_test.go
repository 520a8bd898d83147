package store

import (
	"context"
	"sync"
	"testing"
	"time"
)

func seedAlertTeam(t testing.TB, s *Store) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.CreateTeam(ctx, Team{ID: "team_a", Name: "A", BillingEmail: "billing@a.test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateProject(ctx, Project{ID: "proj_a", TeamID: "team_a", Name: "A app"}); err != nil {
		t.Fatal(err)
	}
}

// One notification per (project, alert, period), also when two replicas race for it; the
// resolution is recorded once; the outbox rows come with the notification.
func TestAlertDedupAndOutbox(t *testing.T) {
	backends(t, func(t *testing.T, open func(t testing.TB) *Store) {
		ctx := context.Background()
		s1 := open(t)
		s2 := open(t) // a second replica on the same database
		seedAlertTeam(t, s1)
		key := AlertKey{ProjectID: "proj_a", Alert: `{alertname="ProjectBudgetWarning"}`, Period: "2025-03-01"}
		note := func() Notification {
			return Notification{TeamID: "team_a", ProjectID: "proj_a", Type: "budget_warning", Severity: "warning", Message: "m", Payload: map[string]any{"used": "82.40"}}
		}
		out := []OutboxMessage{{Channel: ChannelEmail, Payload: []byte(`{"to":["billing@a.test"]}`)}, {Channel: ChannelWebhook, Payload: []byte(`{}`)}}

		var wg sync.WaitGroup
		var mu sync.Mutex
		created := 0
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := s1
				if i%2 == 1 {
					s = s2
				}
				_, ok, err := s.RecordAlertFiring(ctx, key, "ProjectBudgetWarning", note(), out)
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					created++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if created != 1 {
			t.Fatalf("%d notifications created, want 1", created)
		}
		if done, err := s2.AlertNotified(ctx, key); err != nil || !done {
			t.Fatalf("AlertNotified = %v, %v", done, err)
		}
		page, err := s1.ListNotifications(ctx, "team_a", NotificationQuery{Limit: 10})
		if err != nil || len(page.Items) != 1 || page.Items[0].Payload["used"] != "82.40" {
			t.Fatalf("notifications = %+v, %v", page.Items, err)
		}
		emails, _ := s1.OutboxMessages(ctx, ChannelEmail)
		hooks, _ := s1.OutboxMessages(ctx, ChannelWebhook)
		if len(emails) != 1 || len(hooks) != 1 || emails[0].NotificationID != page.Items[0].ID {
			t.Fatalf("outbox: %d e-mails, %d webhooks", len(emails), len(hooks))
		}

		// A new period is a new notification.
		next := key
		next.Period = "2025-04-01"
		if _, ok, err := s1.RecordAlertFiring(ctx, next, "ProjectBudgetWarning", note(), nil); err != nil || !ok {
			t.Fatalf("next period: %v, %v", ok, err)
		}

		// Resolution: once, closing both open periods.
		for i, want := range []bool{true, false} {
			_, ok, err := s2.RecordAlertResolved(ctx, "proj_a", key.Alert, Notification{TeamID: "team_a", ProjectID: "proj_a", Type: "alert_resolved", Severity: "info", Message: "r"}, nil)
			if err != nil || ok != want {
				t.Fatalf("resolve #%d = %v, %v; want %v", i, ok, err, want)
			}
		}
		if open, err := s1.AlertOpen(ctx, "proj_a", key.Alert); err != nil || open {
			t.Fatalf("AlertOpen after resolve = %v, %v", open, err)
		}
	})
}

func TestOutboxLeaseRetryAndSent(t *testing.T) {
	backends(t, func(t *testing.T, open func(t testing.TB) *Store) {
		ctx := context.Background()
		s := open(t)
		seedAlertTeam(t, s)
		if _, _, err := s.RecordAlertFiring(ctx, AlertKey{ProjectID: "proj_a", Alert: "x", Period: "2025-03-01"}, "X",
			Notification{TeamID: "team_a", ProjectID: "proj_a", Type: "alert", Severity: "warning", Message: "m"},
			[]OutboxMessage{{Channel: ChannelEmail, Payload: []byte(`{"subject":"s"}`)}}); err != nil {
			t.Fatal(err)
		}
		got, err := s.ClaimOutbox(ctx, ChannelEmail, 10, time.Minute)
		if err != nil || len(got) != 1 || string(got[0].Payload) != `{"subject":"s"}` {
			t.Fatalf("first claim = %+v, %v", got, err)
		}
		if again, err := s.ClaimOutbox(ctx, ChannelEmail, 10, time.Minute); err != nil || len(again) != 0 {
			t.Fatalf("leased message claimed again: %+v, %v", again, err)
		}
		if hooks, err := s.ClaimOutbox(ctx, ChannelWebhook, 10, time.Minute); err != nil || len(hooks) != 0 {
			t.Fatalf("webhook claim = %+v, %v", hooks, err)
		}
		if err := s.MarkOutboxFailed(ctx, got[0].ID, 0, "connection refused"); err != nil {
			t.Fatal(err)
		}
		retry, err := s.ClaimOutbox(ctx, ChannelEmail, 10, time.Minute)
		if err != nil || len(retry) != 1 || retry[0].Attempts != 1 || retry[0].LastError != "connection refused" {
			t.Fatalf("retry claim = %+v, %v", retry, err)
		}
		if err := s.MarkOutboxSent(ctx, retry[0].ID); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkOutboxFailed(ctx, retry[0].ID, 0, "late failure report"); err != nil {
			t.Fatal(err)
		}
		all, err := s.OutboxMessages(ctx, ChannelEmail)
		if err != nil || len(all) != 1 || all[0].SentAt == nil || all[0].Attempts != 2 || all[0].LastError != "" {
			t.Fatalf("outbox = %+v, %v", all, err)
		}
		if due, err := s.ClaimOutbox(ctx, ChannelEmail, 10, 0); err != nil || len(due) != 0 {
			t.Fatalf("sent message claimed: %+v, %v", due, err)
		}
	})
}
