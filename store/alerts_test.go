package store

import (
	"context"
	"fmt"
	"strings"
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

// One open episode per (project, alert), also when two replicas race to open it; the episode
// row, its notification and its outbox rows commit together; superseding and resolving are
// single transitions.
func TestAlertEpisodes(t *testing.T) {
	backends(t, func(t *testing.T, open func(t testing.TB) *Store) {
		ctx := context.Background()
		s1 := open(t)
		s2 := open(t) // a second replica on the same database
		seedAlertTeam(t, s1)
		at := time.Date(2025, 3, 15, 12, 0, 0, 0, time.UTC)
		ep := AlertEpisode{ProjectID: "proj_a", Alert: `{alertname="ProjectBudgetWarning", threshold="80"}`, AlertName: "ProjectBudgetWarning",
			Type: "budget_warning", Severity: "warning", Period: "2025-03-01", Limit: "100", StartedAt: at}
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
				_, ok, err := s.StartAlertEpisode(ctx, ep, 0, "", note(), out)
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
			t.Fatalf("%d episodes created, want 1", created)
		}
		open1, err := s2.OpenAlertEpisodes(ctx)
		if err != nil || len(open1) != 1 || open1[0].Limit != "100" || open1[0].TeamID != "team_a" || !open1[0].StartedAt.Equal(at) || open1[0].ClearSince != nil {
			t.Fatalf("open episodes = %+v, %v", open1, err)
		}
		page, err := s1.ListNotifications(ctx, "team_a", NotificationQuery{Limit: 10})
		if err != nil || len(page.Items) != 1 || page.Items[0].Payload["used"] != "82.40" || page.Items[0].ID != open1[0].NotificationID {
			t.Fatalf("notifications = %+v, %v", page.Items, err)
		}
		emails, _ := s1.OutboxMessages(ctx, ChannelEmail)
		hooks, _ := s1.OutboxMessages(ctx, ChannelWebhook)
		if len(emails) != 1 || len(hooks) != 1 || emails[0].NotificationID != page.Items[0].ID {
			t.Fatalf("outbox: %d e-mails, %d webhooks", len(emails), len(hooks))
		}

		// The hold: clear since a time, then firing again.
		since := at.Add(time.Minute)
		if err := s1.SetAlertEpisodeClear(ctx, open1[0].ID, &since, ""); err != nil {
			t.Fatal(err)
		}
		if eps, _ := s2.OpenAlertEpisodes(ctx); len(eps) != 1 || eps[0].ClearSince == nil || !eps[0].ClearSince.Equal(since) {
			t.Fatalf("after clear: %+v", eps)
		}
		if err := s1.SetAlertEpisodeClear(ctx, open1[0].ID, nil, ""); err != nil {
			t.Fatal(err)
		}

		// A changed limit: the old episode ends, a new one starts; only one replica wins.
		next := ep
		next.Limit, next.StartedAt = "150", at.Add(time.Hour)
		wins := 0
		for _, s := range []*Store{s1, s2} {
			_, ok, err := s.StartAlertEpisode(ctx, next, open1[0].ID, EndLimitChanged, note(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				wins++
			}
		}
		if wins != 1 {
			t.Fatalf("%d replicas superseded the episode, want 1", wins)
		}
		open2, _ := s1.OpenAlertEpisodes(ctx)
		if len(open2) != 1 || open2[0].Limit != "150" {
			t.Fatalf("open after the limit change = %+v", open2)
		}

		// Resolution: once.
		for i, want := range []bool{true, false} {
			ok, err := s2.ResolveAlertEpisode(ctx, open2[0].ID, at.Add(2*time.Hour),
				Notification{TeamID: "team_a", ProjectID: "proj_a", Type: "alert_resolved", Severity: "info", Message: "r"}, nil)
			if err != nil || ok != want {
				t.Fatalf("resolve #%d = %v, %v; want %v", i, ok, err, want)
			}
		}
		all, err := s1.AlertEpisodes(ctx, "proj_a")
		if err != nil || len(all) != 2 {
			t.Fatalf("episodes = %+v, %v", all, err)
		}
		if all[0].EndReason != EndLimitChanged || !all[0].EndedAt.Equal(at.Add(time.Hour)) ||
			all[1].EndReason != EndResolved || all[1].ResolvedNotificationID == "" || !all[1].EndedAt.Equal(at.Add(2*time.Hour)) {
			t.Fatalf("episodes = %+v", all)
		}
		if eps, _ := s1.OpenAlertEpisodes(ctx); len(eps) != 0 {
			t.Fatalf("open after the resolution = %+v", eps)
		}
	})
}

// Migration 0210 turns the per-period rows of 0200 into episodes: the shipped budget alerts get
// their threshold label, the newest open row of an alert stays open with an unknown limit, older
// ones end.
func TestAlertEpisodesMigration(t *testing.T) {
	backends(t, func(t *testing.T, open func(t testing.TB) *Store) {
		ctx := context.Background()
		s := open(t)
		seedAlertTeam(t, s)
		ts := "TIMESTAMP"
		dialect := "sqlite"
		if s.postgres() {
			ts, dialect = "TIMESTAMPTZ", "postgres"
		}
		for _, q := range []string{
			"DROP TABLE alert_episodes",
			`CREATE TABLE alert_notifications (project_id TEXT NOT NULL, alert TEXT NOT NULL, period TEXT NOT NULL, alert_name TEXT NOT NULL,
				team_id TEXT NOT NULL, notification_id TEXT NOT NULL, fired_at ` + ts + ` NOT NULL, resolved_at ` + ts + `,
				resolved_notification_id TEXT NOT NULL DEFAULT '', PRIMARY KEY (project_id, alert, period))`,
		} {
			if _, err := s.db.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		day := func(d int) time.Time { return time.Date(2025, 3, d, 12, 0, 0, 0, time.UTC) }
		for _, r := range []struct {
			alert, period string
			fired         time.Time
			resolved      any
		}{
			{`{alertname="ProjectBudgetWarning"}`, "2025-02-01", day(1).AddDate(0, -1, 0), day(1)},
			{`{alertname="ProjectBudgetExceeded"}`, "2025-02-01", day(2).AddDate(0, -1, 0), nil},
			{`{alertname="ProjectBudgetExceeded"}`, "2025-03-01", day(3), nil},
			{`{alertname="Custom"}`, "2025-03-01", day(4), nil},
		} {
			n, err := s.CreateNotification(ctx, Notification{TeamID: "team_a", ProjectID: "proj_a", Type: "budget_exceeded", Severity: "critical", Message: "m"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.db.ExecContext(ctx, s.rebind(`INSERT INTO alert_notifications (project_id, alert, period, alert_name, team_id, notification_id, fired_at, resolved_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)`), "proj_a", r.alert, r.period, "X", "team_a", n.ID, r.fired, r.resolved); err != nil {
				t.Fatal(err)
			}
		}
		script, err := migrationFS.ReadFile("migrations/" + dialect + "/0210_alert_episodes.sql")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.db.ExecContext(ctx, string(script)); err != nil {
			t.Fatal(err)
		}
		eps, err := s.AlertEpisodes(ctx, "proj_a")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range eps {
			got = append(got, fmt.Sprintf("%s %s %q open=%v %s %s", e.Alert, e.Period, e.Limit, e.EndedAt == nil, e.EndReason, e.Type))
		}
		want := []string{
			`{alertname="ProjectBudgetWarning", threshold="80"} 2025-02-01 "" open=false resolved budget_exceeded`,
			`{alertname="ProjectBudgetExceeded", threshold="100"} 2025-02-01 "" open=false new_period budget_exceeded`,
			`{alertname="ProjectBudgetExceeded", threshold="100"} 2025-03-01 "" open=true  budget_exceeded`,
			`{alertname="Custom"} 2025-03-01 "" open=true  budget_exceeded`,
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("migrated episodes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

func TestOutboxLeaseRetryAndSent(t *testing.T) {
	backends(t, func(t *testing.T, open func(t testing.TB) *Store) {
		ctx := context.Background()
		s := open(t)
		seedAlertTeam(t, s)
		if _, _, err := s.StartAlertEpisode(ctx, AlertEpisode{ProjectID: "proj_a", Alert: "x", AlertName: "X", Type: "alert", Severity: "warning",
			Period: "2025-03-01", StartedAt: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)}, 0, "",
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
