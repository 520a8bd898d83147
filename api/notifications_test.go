package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/cygni/usage/api"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/store"
	"github.com/cygni/usage/tsdb"
)

// storeFixture is a running API over a real SQLite store and a real TSDB, with two teams.
type storeFixture struct {
	url    string
	st     *store.Store
	now    time.Time
	tokens map[string]string // adminA, memberA, billingA, revokedA, adminB
	notesA []store.Notification
	noteB  store.Notification
}

func newStoreFixture(t testing.TB) *storeFixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	now := time.Date(2024, 1, 20, 12, 0, 0, 0, time.UTC)
	st, err := store.Open(ctx, nil, store.Options{Driver: store.DriverSQLite, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	db, err := tsdb.Open(nil, prometheus.NewRegistry(), tsdb.Options{Dir: dir + "/tsdb"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })

	f := &storeFixture{st: st, now: now, tokens: map[string]string{}}
	for _, team := range []string{"team_a", "team_b"} {
		if _, err := st.CreateTeam(ctx, store.Team{ID: team, Name: team}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.CreateProject(ctx, store.Project{ID: "proj_001", TeamID: "team_a"}); err != nil {
		t.Fatal(err)
	}
	for _, tk := range []struct{ name, team, role string }{
		{"adminA", "team_a", "admin"}, {"memberA", "team_a", "member"}, {"billingA", "team_a", "billing"},
		{"revokedA", "team_a", "admin"}, {"adminB", "team_b", "admin"},
	} {
		plain, tok, err := st.CreateToken(ctx, tk.team, tk.role, tk.name)
		if err != nil {
			t.Fatal(err)
		}
		f.tokens[tk.name] = plain
		if tk.name == "revokedA" {
			if err := st.RevokeToken(ctx, tk.team, tok.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 3 {
		n, err := st.CreateNotification(ctx, store.Notification{TeamID: "team_a", ProjectID: "proj_001", Type: "budget_warning", Severity: "warning",
			Message: fmt.Sprintf("Project proj_001 reached %d%% of its budget", 80+i), Payload: map[string]any{"threshold": 80, "limit": "100.00"},
			CreatedAt: now.Add(time.Duration(i) * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		f.notesA = append(f.notesA, n)
	}
	if f.noteB, err = st.CreateNotification(ctx, store.Notification{TeamID: "team_b", Type: "usage_anomaly", Severity: "info", Message: "b", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}

	// Usage of a known project, an unknown one and an untagged service; and one unknown project
	// seen only long ago.
	app := db.Appender(ctx) // the old sample first: it is older than the out-of-order window
	old := labels.FromStrings("__name__", series.RunningTasks, "project", "proj_old", "deployment", "x", "cluster", "cygni-prod", "region", "us-east-1")
	if _, err := app.Append(0, old, now.Add(-30*24*time.Hour).UnixMilli(), 1); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	app = db.Appender(ctx)
	for _, ls := range []labels.Labels{
		labels.FromStrings("__name__", series.RunningTasks, "project", "proj_001", "deployment", "web", "cluster", "cygni-prod", "region", "us-east-1"),
		labels.FromStrings("__name__", series.RunningTasks, "project", "proj_999", "deployment", "api", "cluster", "cygni-prod", "region", "us-east-1"),
		labels.FromStrings("__name__", series.RunningTasks, "deployment", "legacy-untagged-1", "cluster", "cygni-staging", "region", "us-east-1"),
	} {
		for m := 1; m <= 10; m++ {
			if _, err := app.Append(0, ls, now.Add(-time.Hour+time.Duration(m)*time.Minute).UnixMilli(), 2); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(api.New(api.Options{
		OperatorTeams: []string{"team_a"},
		AuthDeps:      api.AuthDeps{Tokens: api.StoreTokens(st)},
		NotificationDeps: api.NotificationDeps{
			Notifications: st,
			Unmapped:      api.UnmappedDeps{Series: db, Projects: st, Now: func() time.Time { return now }},
		},
	}))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

// do sends a request with the named token ("" none, "bad" a malformed one) and returns the
// status and the body.
func (f *storeFixture) do(t testing.TB, method, path, token string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, f.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	switch token {
	case "":
	case "bad":
		req.Header.Set("Authorization", "Bearer cyg_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	default:
		plain, ok := f.tokens[token]
		if !ok {
			t.Fatalf("no token %q", token)
		}
		req.Header.Set("Authorization", "Bearer "+plain)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestStoreEndpointsAuth runs every endpoint of this issue against every kind of caller.
func TestStoreEndpointsAuth(t *testing.T) {
	f := newStoreFixture(t)
	a0, b0 := f.notesA[0].ID, f.noteB.ID
	type call struct{ method, path string }
	list := call{"GET", "/api/usage/notifications"}
	readA := call{"POST", "/api/usage/notifications/" + a0 + "/read"}
	readB := call{"POST", "/api/usage/notifications/" + b0 + "/read"}
	unmapped := call{"GET", "/api/usage/unmapped"}
	const unauth = `{"error":{"code":"unauthorized","message":"invalid, revoked or expired token"}}`
	for _, tc := range []struct {
		name   string
		call   call
		token  string
		status int
		body   string // exact body, or a substring when it starts with "~"
	}{
		{"list/no token", list, "", 401, `{"error":{"code":"unauthorized","message":"missing bearer token: send the header \"Authorization: Bearer\" followed by the token"}}`},
		{"list/bad token", list, "bad", 401, unauth},
		{"list/revoked", list, "revokedA", 401, unauth},
		{"list/member", list, "memberA", 200, `~"unreadCount":3`},
		{"list/billing", list, "billingA", 200, `~"unreadCount":3`},
		{"list/admin", list, "adminA", 200, `~"unreadCount":3`},
		{"list/other team sees only its own", list, "adminB", 200, `~"unreadCount":1`},
		{"read/no token", readA, "", 401, `~"unauthorized"`},
		{"read/bad token", readA, "bad", 401, unauth},
		{"read/revoked", readA, "revokedA", 401, unauth},
		{"read/other team", readA, "adminB", 404, `{"error":{"code":"not_found","message":"notification ` + a0 + ` not found"}}`},
		{"read/other team's id", readB, "memberA", 404, `~"not_found"`},
		{"read/member", readA, "memberA", 200, `~"read":true`},
		{"read/admin again", readA, "adminA", 200, `~"read":true`},
		{"unmapped/no token", unmapped, "", 401, `~"unauthorized"`},
		{"unmapped/bad token", unmapped, "bad", 401, unauth},
		{"unmapped/revoked", unmapped, "revokedA", 401, unauth},
		{"unmapped/member", unmapped, "memberA", 403, `{"error":{"code":"forbidden","message":"this endpoint needs the admin role; the token has member"}}`},
		{"unmapped/billing", unmapped, "billingA", 403, `~"forbidden"`},
		{"unmapped/admin", unmapped, "adminA", 200, `~"unmapped":[`},
		{"unmapped/admin of a team that is not an operator", unmapped, "adminB", 403, `{"error":{"code":"forbidden","message":"this endpoint acts across all teams and is for operators; team team_b is not in the configuration's operator_teams"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := f.do(t, tc.call.method, tc.call.path, tc.token, nil)
			body = strings.TrimSpace(body)
			if status != tc.status {
				t.Fatalf("%s %s = %d %s, want %d", tc.call.method, tc.call.path, status, body, tc.status)
			}
			if sub, ok := strings.CutPrefix(tc.body, "~"); ok {
				if !strings.Contains(body, sub) {
					t.Fatalf("body %s does not contain %s", body, sub)
				}
			} else if body != tc.body {
				t.Fatalf("body\n got %s\nwant %s", body, tc.body)
			}
		})
	}
	// A 401 carries the WWW-Authenticate challenge.
	resp, err := http.Get(f.url + "/api/usage/notifications")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="cygni-usage"` {
		t.Fatalf("WWW-Authenticate = %q", got)
	}
}

func TestNotificationsJSON(t *testing.T) {
	f := newStoreFixture(t)
	n2, n1, n0 := f.notesA[2], f.notesA[1], f.notesA[0]
	item := func(n store.Notification, readAt string) string {
		read := "false"
		if readAt != "null" {
			read = "true"
		}
		return fmt.Sprintf(`{"id":%q,"type":"budget_warning","severity":"warning","projectId":"proj_001","message":%q,"payload":{"limit":"100.00","threshold":80},"createdAt":%q,"read":%s,"readAt":%s}`,
			n.ID, n.Message, n.CreatedAt.Format(time.RFC3339), read, readAt)
	}
	status, body := f.do(t, "GET", "/api/usage/notifications?limit=2", "memberA", nil)
	if status != 200 {
		t.Fatalf("status %d %s", status, body)
	}
	var page struct {
		Notifications []json.RawMessage `json:"notifications"`
		UnreadCount   int               `json:"unreadCount"`
		NextCursor    *string           `json:"nextCursor"`
	}
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatal(err)
	}
	if page.NextCursor == nil || len(page.Notifications) != 2 || page.UnreadCount != 3 {
		t.Fatalf("first page %s", body)
	}
	want := `{"notifications":[` + item(n2, "null") + `,` + item(n1, "null") + `],"unreadCount":3,"nextCursor":"` + *page.NextCursor + `"}`
	if strings.TrimSpace(body) != want {
		t.Fatalf("first page\n got %s\nwant %s", body, want)
	}
	// Mark the oldest read; the second page holds it, and the unread filter drops it.
	status, body = f.do(t, "POST", "/api/usage/notifications/"+n0.ID+"/read", "memberA", strings.NewReader("{}"))
	if status != 200 || !strings.Contains(body, `"read":true`) {
		t.Fatalf("read: %d %s", status, body)
	}
	var marked struct {
		ReadAt string `json:"readAt"`
	}
	_ = json.Unmarshal([]byte(body), &marked)
	status, body = f.do(t, "GET", "/api/usage/notifications?limit=2&cursor="+*page.NextCursor, "memberA", nil)
	want = `{"notifications":[` + item(n0, `"`+marked.ReadAt+`"`) + `],"unreadCount":2,"nextCursor":null}`
	if status != 200 || strings.TrimSpace(body) != want {
		t.Fatalf("second page %d\n got %s\nwant %s", status, body, want)
	}
	// Idempotent: marking again returns the same read time.
	_, again := f.do(t, "POST", "/api/usage/notifications/"+n0.ID+"/read", "adminA", nil)
	if !strings.Contains(again, `"readAt":"`+marked.ReadAt+`"`) {
		t.Fatalf("second read changed readAt: %s (first %s)", again, marked.ReadAt)
	}
	status, body = f.do(t, "GET", "/api/usage/notifications?unread=true", "memberA", nil)
	if status != 200 || strings.Contains(body, n0.ID) || !strings.Contains(body, `"unreadCount":2`) {
		t.Fatalf("unread=true: %d %s", status, body)
	}
	// unread=false: the read ones only.
	status, body = f.do(t, "GET", "/api/usage/notifications?unread=false", "memberA", nil)
	want = `{"notifications":[` + item(n0, `"`+marked.ReadAt+`"`) + `],"unreadCount":2,"nextCursor":null}`
	if status != 200 || strings.TrimSpace(body) != want {
		t.Fatalf("unread=false: %d\n%s\nwant\n%s", status, body, want)
	}
}

func TestStoreEndpointsBadInput(t *testing.T) {
	f := newStoreFixture(t)
	read := "/api/usage/notifications/" + f.notesA[0].ID + "/read"
	for _, tc := range []struct {
		name, method, path, token string
		body                      io.Reader
		status                    int
		want                      string
	}{
		{"limit 0", "GET", "/api/usage/notifications?limit=0", "memberA", nil, 400, `"limit: \"0\" is not an integer in 1..100"`},
		{"limit 101", "GET", "/api/usage/notifications?limit=101", "memberA", nil, 400, `"limit: \"101\" is not an integer in 1..100"`},
		{"limit abc", "GET", "/api/usage/notifications?limit=abc", "memberA", nil, 400, `"limit: \"abc\" is not an integer in 1..100"`},
		{"limit twice", "GET", "/api/usage/notifications?limit=1&limit=2", "memberA", nil, 400, `"limit: given 2 times; give it once"`},
		{"unread yes", "GET", "/api/usage/notifications?unread=yes", "memberA", nil, 400, `"unread: \"yes\" is neither true nor false"`},
		{"bad cursor", "GET", "/api/usage/notifications?cursor=xyz!", "memberA", nil, 400, `"cursor: \"xyz!\" is not a cursor returned by this endpoint"`},
		{"unknown parameter", "GET", "/api/usage/notifications?page=2", "memberA", nil, 400, `"page: unknown parameter; this endpoint takes limit, cursor and unread"`},
		{"GET on read", "GET", read, "memberA", nil, 405, `"code":"method_not_allowed","message":"method GET is not allowed on ` + read + `"`},
		{"malformed id", "POST", "/api/usage/notifications/ntf_a.b/read", "memberA", nil, 400, `"id: \"ntf_a.b\" is not a valid id`},
		{"id without prefix", "POST", "/api/usage/notifications/123/read", "memberA", nil, 400, `"code":"invalid_parameter","message":"id: \"123\" is not a valid id`},
		{"unknown field", "POST", read, "memberA", strings.NewReader(`{"read":true}`), 400, `"body: json: unknown field \"read\""`},
		{"malformed JSON", "POST", read, "memberA", strings.NewReader(`{`), 400, `"body: unexpected EOF"`},
		{"trailing data", "POST", read, "memberA", strings.NewReader(`{} {}`), 400, `"body: trailing data after the JSON value"`},
		{"oversized body", "POST", read, "memberA", bytes.NewReader(bytes.Repeat([]byte(" "), 2<<20)), 413, `"body_too_large","message":"body: larger than 1048576 bytes"`},
		{"days 0", "GET", "/api/usage/unmapped?days=0", "adminA", nil, 400, `"days: \"0\" is not an integer in 1..400"`},
		{"unmapped unknown parameter", "GET", "/api/usage/unmapped?team=x", "adminA", nil, 400, `"team: unknown parameter; this endpoint takes days"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := f.do(t, tc.method, tc.path, tc.token, tc.body)
			if status != tc.status || !strings.Contains(body, tc.want) {
				t.Fatalf("%s %s = %d %s, want %d containing %s", tc.method, tc.path, status, body, tc.status, tc.want)
			}
		})
	}
}

func TestUnmappedJSON(t *testing.T) {
	f := newStoreFixture(t)
	status, body := f.do(t, "GET", "/api/usage/unmapped", "adminA", nil)
	// The fixture holds running tasks only (one sample each): no usage to price.
	none := `"usage":{"cpuSeconds":0.000000,"cpuHours":0.000000,"memoryGbHours":0.000000,"containerInstances":0.0020,"egressGB":0.000000000,"requests":0,"storageGbHours":0.000000},` +
		`"estimatedCost":{"compute":"0.00","memory":"0.00","bandwidth":"0.00","requests":"0.00","storage":"0.00","total":"0.00"}`
	want := `{"estimatedCostUnmapped":"0.00","from":"2024-01-13T12:00:00Z","to":"2024-01-20T12:00:00Z","unmapped":[` +
		`{"reason":"unknown_project","project":"proj_999","deployment":"api","cluster":"cygni-prod","region":"us-east-1","lastSeen":"2024-01-20T11:10:00Z",` + none + `},` +
		`{"reason":"untagged","deployment":"legacy-untagged-1","cluster":"cygni-staging","region":"us-east-1","lastSeen":"2024-01-20T11:10:00Z",` + none + `}]}`
	if status != 200 || strings.TrimSpace(body) != want {
		t.Fatalf("unmapped %d\n got %s\nwant %s", status, body, want)
	}
	// Creating the project maps its usage; a longer look-back finds the old one.
	if _, err := f.st.CreateProject(context.Background(), store.Project{ID: "proj_999", TeamID: "team_b"}); err != nil {
		t.Fatal(err)
	}
	_, body = f.do(t, "GET", "/api/usage/unmapped?days=31", "adminA", nil)
	if strings.Contains(body, "proj_999") || !strings.Contains(body, `"project":"proj_old"`) || !strings.Contains(body, "legacy-untagged-1") {
		t.Fatalf("after mapping proj_999, days=31: %s", body)
	}
}

// TestNotificationsConcurrentWriters: 8 goroutines write notifications to SQLite while the API
// reads them; no request fails and no write sees "database is locked".
func TestNotificationsConcurrentWriters(t *testing.T) {
	f := newStoreFixture(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errc := make(chan error, 1000)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				if _, err := f.st.CreateNotification(ctx, store.Notification{TeamID: "team_a", Type: "t", Message: fmt.Sprintf("%d/%d", w, i)}); err != nil {
					errc <- err
				}
			}
		}()
	}
	stop := make(chan struct{})
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
				req, _ := http.NewRequest("GET", f.url+"/api/usage/notifications?limit=100&unread=true", nil)
				req.Header.Set("Authorization", "Bearer "+f.tokens["memberA"])
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errc <- err
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errc <- fmt.Errorf("GET notifications = %d %s", resp.StatusCode, b)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	_, body := f.do(t, "GET", "/api/usage/notifications?limit=1", "memberA", nil)
	if !strings.Contains(body, `"unreadCount":203`) {
		t.Fatalf("after 200 writes: %s", body)
	}
}
