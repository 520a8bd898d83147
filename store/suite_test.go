package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// fakeClock is an injectable clock that tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2024, 1, 15, 10, 30, 0, 123456000, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func mustTeam(t testing.TB, s *Store, id string) Team {
	t.Helper()
	tm, err := s.CreateTeam(context.Background(), Team{ID: id, Name: "Team " + id, BillingEmail: "billing@" + id + ".example"})
	if err != nil {
		t.Fatalf("create team %s: %v", id, err)
	}
	return tm
}

func mustProject(t testing.TB, s *Store, teamID, id string) Project {
	t.Helper()
	p, err := s.CreateProject(context.Background(), Project{ID: id, TeamID: teamID, Name: "Project " + id})
	if err != nil {
		t.Fatalf("create project %s: %v", id, err)
	}
	return p
}

func TestTeams(t *testing.T) {
	backendsWith(t, func(t *testing.T, open opener) {
		clock := newFakeClock()
		s := open(t, Options{Now: clock.Now})
		ctx := context.Background()
		limit := decimal.RequireFromString("1234.5678")
		created, err := s.CreateTeam(ctx, Team{ID: "team_a", Name: " Acme ", BillingEmail: "b@acme.example", BillingAnchorDay: 15, DefaultLimit: &limit})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.GetTeam(ctx, "team_a")
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "Acme" || got.BillingEmail != "b@acme.example" || got.BillingAnchorDay != 15 ||
			got.DefaultLimit == nil || got.DefaultLimit.String() != "1234.5678" || !got.CreatedAt.Equal(created.CreatedAt) ||
			!got.CreatedAt.Equal(clock.Now().Truncate(time.Microsecond)) {
			t.Fatalf("GetTeam = %+v, created %+v", got, created)
		}
		gen, err := s.CreateTeam(ctx, Team{Name: "Generated"})
		if err != nil || !ValidID(PrefixTeam, gen.ID) || gen.BillingAnchorDay != 1 || gen.DefaultLimit != nil {
			t.Fatalf("generated team %+v, %v", gen, err)
		}
		for _, tc := range []struct {
			name string
			team Team
			want string
		}{
			{"duplicate", Team{ID: "team_a", Name: "x"}, "already exists"},
			{"empty name", Team{Name: " "}, "the name is empty"},
			{"anchor day 29", Team{Name: "x", BillingAnchorDay: 29}, "outside 1..28"},
			{"bad e-mail", Team{Name: "x", BillingEmail: "nope"}, "billing e-mail"},
			{"bad id", Team{ID: "team_a b", Name: "x"}, "not a valid id"},
			{"negative limit", Team{Name: "x", DefaultLimit: decimalPtr("-1")}, "negative"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := s.CreateTeam(ctx, tc.team)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("CreateTeam(%+v) = %v, want an error containing %q", tc.team, err, tc.want)
				}
			})
		}
		if _, err := s.GetTeam(ctx, "team_nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetTeam(unknown) = %v, want ErrNotFound", err)
		}
		if err := s.SetTeamStripeCustomer(ctx, "team_a", "cus_123"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetTeamStripeCustomer(ctx, "team_nope", "cus_123"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("SetTeamStripeCustomer(unknown) = %v", err)
		}
		if err := s.SetTeamDefaultLimit(ctx, "team_a", nil); err != nil {
			t.Fatal(err)
		}
		ts, err := s.ListTeams(ctx)
		if err != nil || len(ts) != 2 || ts[0].ID >= ts[1].ID {
			t.Fatalf("ListTeams = %+v, %v; want 2 teams by id", ts, err)
		}
		for _, tm := range ts {
			if tm.ID == "team_a" && (tm.StripeCustomerID != "cus_123" || tm.DefaultLimit != nil) {
				t.Fatalf("team_a = %+v after setting the customer and clearing the limit", tm)
			}
		}
	})
}

func TestMembers(t *testing.T) {
	backends(t, func(t *testing.T, open func(t testing.TB) *Store) {
		s := open(t)
		ctx := context.Background()
		mustTeam(t, s, "team_a")
		mustTeam(t, s, "team_b")
		for _, m := range []Member{
			{TeamID: "team_a", Email: "Zed@A.example", Name: "Zed", Role: "admin"},
			{TeamID: "team_a", Email: "amy@a.example", Name: "Amy", Role: "member"},
			{TeamID: "team_a", Email: "bob@a.example", Name: "Bob", Role: "billing"},
			{TeamID: "team_b", Email: "amy@a.example", Name: "Amy", Role: "admin"},
		} {
			if err := s.AddMember(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		// Adding again changes the role.
		if err := s.AddMember(ctx, Member{TeamID: "team_a", Email: "amy@a.example", Name: "Amy", Role: "admin"}); err != nil {
			t.Fatal(err)
		}
		admins, err := s.TeamAdmins(ctx, "team_a")
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(admins); got != "[{team_a amy@a.example Amy admin} {team_a zed@a.example Zed admin}]" {
			t.Fatalf("TeamAdmins = %s", got)
		}
		if err := s.RemoveMember(ctx, "team_a", "ZED@a.example"); err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveMember(ctx, "team_a", "zed@a.example"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("RemoveMember twice = %v, want ErrNotFound", err)
		}
		ms, err := s.ListMembers(ctx, "team_a")
		if err != nil || len(ms) != 2 || ms[0].Email != "amy@a.example" || ms[1].Email != "bob@a.example" {
			t.Fatalf("ListMembers = %+v, %v", ms, err)
		}
		for _, tc := range []struct {
			name string
			m    Member
			want error
			text string
		}{
			{"unknown team", Member{TeamID: "team_x", Email: "a@b.example", Role: "admin"}, ErrNotFound, ""},
			{"bad role", Member{TeamID: "team_a", Email: "a@b.example", Role: "owner"}, nil, "role"},
			{"bad e-mail", Member{TeamID: "team_a", Email: "a@", Role: "admin"}, nil, "e-mail"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := s.AddMember(ctx, tc.m)
				if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.text) {
					t.Fatalf("AddMember = %v", err)
				}
			})
		}
	})
}

func TestProjects(t *testing.T) {
	backends(t, func(t *testing.T, open func(t testing.TB) *Store) {
		s := open(t)
		ctx := context.Background()
		a := mustTeam(t, s, "team_a")
		mustTeam(t, s, "team_b")
		mustProject(t, s, "team_a", "proj_002")
		p1, err := s.CreateProject(ctx, Project{ID: "proj_001", TeamID: "team_a", BudgetLimit: decimalPtr("99.995")})
		if err != nil {
			t.Fatal(err)
		}
		if p1.Name != "proj_001" {
			t.Fatalf("default name = %q", p1.Name)
		}
		mustProject(t, s, "team_b", "proj_003")
		if _, err := s.CreateProject(ctx, Project{ID: "proj_001", TeamID: "team_b"}); !errors.Is(err, ErrConflict) {
			t.Fatalf("duplicate project = %v", err)
		}
		if _, err := s.CreateProject(ctx, Project{ID: "proj_x", TeamID: "team_x"}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("project of an unknown team = %v", err)
		}
		if _, err := s.CreateProject(ctx, Project{ID: "project1", TeamID: "team_a"}); err == nil {
			t.Fatal("an id without proj_ was accepted")
		}
		// Another team's project is not found.
		if _, err := s.GetProject(ctx, "team_b", "proj_001"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetProject(other team) = %v", err)
		}
		got, err := s.GetProject(ctx, "team_a", "proj_001")
		if err != nil || got.BudgetLimit == nil || got.BudgetLimit.String() != "99.995" {
			t.Fatalf("GetProject = %+v, %v", got, err)
		}
		// Deployments: counted per project; a re-tagged service moves.
		for _, d := range [][3]string{{"proj_001", "web", "prod"}, {"proj_001", "worker", "prod"}, {"proj_002", "web", "staging"}, {"proj_001", "web", "prod"}} {
			if err := s.UpsertDeployment(ctx, d[0], d[1], d[2]); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.UpsertDeployment(ctx, "proj_002", "worker", "prod"); err != nil {
			t.Fatal(err)
		}
		if err := s.UpsertDeployment(ctx, "proj_404", "x", "prod"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deployment of an unknown project = %v", err)
		}
		ps, err := s.ListProjects(ctx, "team_a")
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != 2 || ps[0].ID != "proj_001" || ps[0].Deployments != 1 || ps[1].Deployments != 2 {
			t.Fatalf("ListProjects = %+v", ps)
		}
		// Limits: project → team default → global default.
		if err := s.SetBudgetLimit(ctx, "team_b", "proj_001", decimal.NewFromInt(5)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("SetBudgetLimit(other team) = %v", err)
		}
		if err := s.SetBudgetLimit(ctx, "team_a", "proj_001", decimal.RequireFromString("250.10")); err != nil {
			t.Fatal(err)
		}
		if err := s.SetBudgetLimit(ctx, "team_a", "proj_001", decimal.NewFromInt(-1)); err == nil {
			t.Fatal("a negative limit was accepted")
		}
		p1, _ = s.GetProject(ctx, "team_a", "proj_001")
		p2, _ := s.GetProject(ctx, "team_a", "proj_002")
		for _, tc := range []struct {
			name string
			p    Project
			t    Team
			want string
		}{
			{"project", p1, a, "250.1"},
			{"global", p2, a, "100"},
			{"team", p2, Team{DefaultLimit: decimalPtr("42.5")}, "42.5"},
		} {
			if got := EffectiveLimit(tc.p, tc.t); got.String() != tc.want {
				t.Errorf("%s: EffectiveLimit = %s, want %s", tc.name, got, tc.want)
			}
		}
		if err := s.MoveProject(ctx, "proj_002", "team_b"); err != nil {
			t.Fatal(err)
		}
		if err := s.MoveProject(ctx, "proj_002", "team_x"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("move to unknown team = %v", err)
		}
		if err := s.MoveProject(ctx, "proj_404", "team_b"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("move an unknown project = %v", err)
		}
		if err := s.SetProjectSuspended(ctx, "proj_003", true); err != nil {
			t.Fatal(err)
		}
		all, err := s.AllProjects(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, p := range all {
			lines = append(lines, fmt.Sprintf("%s %s %d %v", p.ID, p.TeamID, p.Deployments, p.Suspended))
		}
		if got, want := strings.Join(lines, "; "), "proj_001 team_a 1 false; proj_002 team_b 2 false; proj_003 team_b 0 true"; got != want {
			t.Fatalf("AllProjects = %s, want %s", got, want)
		}
	})
}

func TestTokens(t *testing.T) {
	backendsWith(t, func(t *testing.T, open opener) {
		clock := newFakeClock()
		s := open(t, Options{Now: clock.Now})
		ctx := context.Background()
		mustTeam(t, s, "team_a")
		mustTeam(t, s, "team_b")
		plain, tok, err := s.CreateToken(ctx, "team_a", "billing", "ci")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(plain, TokenPrefix) || !ValidID(PrefixToken, tok.ID) || tok.LastUsedAt != nil {
			t.Fatalf("CreateToken = %q, %+v", plain, tok)
		}
		var hash []byte
		if err := s.db.QueryRowContext(ctx, s.rebind("SELECT hash FROM tokens WHERE id = ?"), tok.ID).Scan(&hash); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(hash), plain[len(plain)-20:]) || len(hash) != 32 {
			t.Fatalf("the stored hash %x is not a SHA-256", hash)
		}
		got, err := s.VerifyToken(ctx, plain)
		if err != nil || got.ID != tok.ID || got.TeamID != "team_a" || got.Role != "billing" || got.LastUsedAt == nil {
			t.Fatalf("VerifyToken = %+v, %v", got, err)
		}
		first := *got.LastUsedAt
		clock.Add(30 * time.Second) // within a minute: no write
		got, _ = s.VerifyToken(ctx, plain)
		if !got.LastUsedAt.Equal(first) {
			t.Fatalf("last used moved within a minute: %v → %v", first, got.LastUsedAt)
		}
		clock.Add(time.Minute)
		got, _ = s.VerifyToken(ctx, plain)
		if !got.LastUsedAt.Equal(clock.Now().Truncate(time.Microsecond)) {
			t.Fatalf("last used = %v, want %v", got.LastUsedAt, clock.Now())
		}
		// Tampered, malformed and unknown tokens.
		last := byte('A')
		if plain[len(plain)-1] == 'A' {
			last = 'B'
		}
		tampered := plain[:len(plain)-1] + string(last)
		for _, bad := range []string{"", "cyg_", plain + "x", tampered, "Bearer " + plain, strings.Replace(plain, "cyg_", "cyx_", 1),
			"cyg_0000000000000000_" + plain[len(plain)-43:]} {
			if _, err := s.VerifyToken(ctx, bad); !errors.Is(err, ErrInvalidToken) {
				t.Errorf("VerifyToken(%q) = %v, want ErrInvalidToken", bad, err)
			}
		}
		if _, _, err := s.CreateToken(ctx, "team_a", "root", ""); err == nil {
			t.Fatal("role root accepted")
		}
		if _, _, err := s.CreateToken(ctx, "team_x", "admin", ""); !errors.Is(err, ErrNotFound) {
			t.Fatalf("token of an unknown team = %v", err)
		}
		plainB, tokB, err := s.CreateToken(ctx, "team_b", "admin", "")
		if err != nil {
			t.Fatal(err)
		}
		// Revoking another team's token is not found, and does nothing.
		if err := s.RevokeToken(ctx, "team_a", tokB.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("RevokeToken(other team) = %v", err)
		}
		if _, err := s.VerifyToken(ctx, plainB); err != nil {
			t.Fatalf("the other team's token stopped working: %v", err)
		}
		if err := s.RevokeToken(ctx, "team_a", tok.ID); err != nil {
			t.Fatal(err)
		}
		revokedAt := clock.Now().Truncate(time.Microsecond)
		clock.Add(time.Hour)
		if err := s.RevokeToken(ctx, "team_a", tok.ID); err != nil {
			t.Fatalf("revoke twice = %v", err)
		}
		if _, err := s.VerifyToken(ctx, plain); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("VerifyToken(revoked) = %v", err)
		}
		ts, err := s.ListTokens(ctx, "team_a")
		if err != nil || len(ts) != 1 || ts[0].RevokedAt == nil || !ts[0].RevokedAt.Equal(revokedAt) {
			t.Fatalf("ListTokens = %+v, %v", ts, err)
		}
	})
}

func TestNotifications(t *testing.T) {
	backendsWith(t, func(t *testing.T, open opener) {
		clock := newFakeClock()
		s := open(t, Options{Now: clock.Now})
		ctx := context.Background()
		mustTeam(t, s, "team_a")
		mustTeam(t, s, "team_b")
		var ids []string
		for i := range 45 {
			clock.Add(time.Second)
			n, err := s.CreateNotification(ctx, Notification{TeamID: "team_a", ProjectID: "proj_001", Type: "budget_warning", Severity: "warning",
				Message: fmt.Sprintf("n%d", i), Payload: map[string]any{"percent": 80, "limit": "100.00"}})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, n.ID)
		}
		other, err := s.CreateNotification(ctx, Notification{TeamID: "team_b", Type: "usage_anomaly", Severity: "info", Message: "b"})
		if err != nil {
			t.Fatal(err)
		}
		// Pages of 20: newest first; a notification created between pages does not shift them.
		var seen []string
		cursor := ""
		for page := 0; ; page++ {
			p, err := s.ListNotifications(ctx, "team_a", NotificationQuery{Limit: 20, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range p.Items {
				seen = append(seen, n.ID)
			}
			if page == 0 {
				if _, err := s.CreateNotification(ctx, Notification{TeamID: "team_a", Type: "budget_exceeded", Severity: "critical", Message: "late"}); err != nil {
					t.Fatal(err)
				}
			}
			if p.NextCursor == "" {
				break
			}
			cursor = p.NextCursor
		}
		if len(seen) != 45 {
			t.Fatalf("paged through %d notifications, want 45", len(seen))
		}
		for i, id := range seen {
			if id != ids[44-i] {
				t.Fatalf("item %d = %s, want %s (newest first)", i, id, ids[44-i])
			}
		}
		first, err := s.ListNotifications(ctx, "team_a", NotificationQuery{Limit: 1})
		if err != nil || len(first.Items) != 1 || first.Items[0].Message != "late" || first.UnreadCount != 46 {
			t.Fatalf("first page = %+v, %v", first, err)
		}
		n := first.Items[0]
		if n.Payload == nil || len(n.Payload) != 0 || n.Severity != "critical" || n.ReadAt != nil {
			t.Fatalf("notification = %+v", n)
		}
		// Mark read: idempotent, keeps the first time; another team's is not found.
		readAt := clock.Now().Truncate(time.Microsecond)
		r1, err := s.MarkNotificationRead(ctx, "team_a", ids[3])
		if err != nil || r1.ReadAt == nil || !r1.ReadAt.Equal(readAt) {
			t.Fatalf("MarkNotificationRead = %+v, %v", r1, err)
		}
		clock.Add(time.Hour)
		r2, err := s.MarkNotificationRead(ctx, "team_a", ids[3])
		if err != nil || !r2.ReadAt.Equal(readAt) {
			t.Fatalf("MarkNotificationRead again = %+v, %v", r2, err)
		}
		if r2.Payload["percent"] != float64(80) || r2.Payload["limit"] != "100.00" || r2.ProjectID != "proj_001" {
			t.Fatalf("payload = %#v", r2.Payload)
		}
		if _, err := s.MarkNotificationRead(ctx, "team_a", other.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("MarkNotificationRead(other team) = %v", err)
		}
		if _, err := s.MarkNotificationRead(ctx, "team_a", "ntf_nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("MarkNotificationRead(unknown) = %v", err)
		}
		unread, err := s.ListNotifications(ctx, "team_a", NotificationQuery{Limit: 100, UnreadOnly: true})
		if err != nil || len(unread.Items) != 45 || unread.UnreadCount != 45 || unread.NextCursor != "" {
			t.Fatalf("unread = %d items, count %d, cursor %q, %v", len(unread.Items), unread.UnreadCount, unread.NextCursor, err)
		}
		for _, n := range unread.Items {
			if n.ID == ids[3] {
				t.Fatal("a read notification is listed as unread")
			}
		}
		for _, tc := range []struct {
			name string
			q    NotificationQuery
			want error
		}{
			{"bad cursor", NotificationQuery{Cursor: "!!"}, ErrBadCursor},
			{"forged cursor", NotificationQuery{Cursor: "eDE"}, ErrBadCursor},
			{"limit 101", NotificationQuery{Limit: 101}, nil},
			{"limit -1", NotificationQuery{Limit: -1}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := s.ListNotifications(ctx, "team_a", tc.q)
				if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
					t.Fatalf("ListNotifications(%+v) = %v", tc.q, err)
				}
			})
		}
		// A deterministic id makes creation idempotent for the caller.
		if _, err := s.CreateNotification(ctx, Notification{ID: ids[0], TeamID: "team_a", Type: "x"}); !errors.Is(err, ErrConflict) {
			t.Fatalf("duplicate id = %v", err)
		}
		if _, err := s.CreateNotification(ctx, Notification{TeamID: "team_a", Type: "x", Severity: "fatal"}); err == nil {
			t.Fatal("severity fatal accepted")
		}
		if _, err := s.CreateNotification(ctx, Notification{TeamID: "team_x", Type: "x"}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("notification of an unknown team = %v", err)
		}
	})
}

// TestSQLiteConcurrentWriters: 8 goroutines writing while others read, plus a second Store on the
// same file (another process, e.g. the admin CLI), never see "database is locked".
func TestSQLiteConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	s1 := openForTest(t, Options{Driver: DriverSQLite, DataDir: dir})
	s2 := openForTest(t, Options{Driver: DriverSQLite, DataDir: dir})
	ctx := context.Background()
	mustTeam(t, s1, "team_a")
	const writers, each = 8, 40
	var wg sync.WaitGroup
	errc := make(chan error, writers*each*2)
	stop := make(chan struct{})
	for w := range writers {
		s := s1
		if w%2 == 1 {
			s = s2
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				n, err := s.CreateNotification(ctx, Notification{TeamID: "team_a", Type: "t", Message: fmt.Sprintf("%d-%d", w, i)})
				if err != nil {
					errc <- err
					continue
				}
				if i%5 == 0 {
					if _, err := s.MarkNotificationRead(ctx, "team_a", n.ID); err != nil {
						errc <- err
					}
				}
			}
		}()
	}
	var readers sync.WaitGroup
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s2.ListNotifications(ctx, "team_a", NotificationQuery{Limit: 50, UnreadOnly: true}); err != nil {
					errc <- err
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errc)
	for err := range errc {
		t.Errorf("concurrent access: %v", err)
	}
	p, err := s1.ListNotifications(ctx, "team_a", NotificationQuery{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := writers * (each - each/5); p.UnreadCount != want {
		t.Fatalf("unread = %d, want %d", p.UnreadCount, want)
	}
}

func TestRebind(t *testing.T) {
	for _, tc := range []struct {
		driver, in, want string
	}{
		{DriverSQLite, "a = ? AND b = ?", "a = ? AND b = ?"},
		{DriverPostgres, "a = ? AND b = ?", "a = $1 AND b = $2"},
		{DriverPostgres, "no args", "no args"},
	} {
		t.Run(tc.driver+" "+tc.in, func(t *testing.T) {
			if got := (&Store{driver: tc.driver}).rebind(tc.in); got != tc.want {
				t.Fatalf("rebind(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func decimalPtr(s string) *decimal.Decimal {
	d := decimal.RequireFromString(s)
	return &d
}
