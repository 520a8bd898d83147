package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cygni/usage/store"
)

// The hand-written analytics answer is, byte for byte, what encoding/json writes for the same
// values in analyticsJSON (the documented shape the CLI decodes): every grouping, one project
// and all, by deployment, an empty range, and project names that need escaping.
func TestAnalyticsJSONIsEncodingJSON(t *testing.T) {
	f := newUsageFixture(t)
	names := bulkStore{[]store.Project{
		{ID: "proj_001", TeamID: "team_bulk", Name: `<b>"Web" & 'shop'</b> \ é ☃ ` + "\t\u2028"},
		{ID: "proj_002", TeamID: "team_bulk", Name: "Batch <nightly"},
		{ID: "proj_003", TeamID: "team_bulk", Name: "R&D"},
	}}
	srv := httptest.NewServer(New(Options{AuthDeps: AuthDeps{Tokens: fixedTokens{}}, UsageDeps: UsageDeps{Usage: f.engine, UsageProjects: names}}))
	defer srv.Close()
	for i, q := range []string{
		"startDate=2024-01-01&endDate=2024-01-08&groupBy=day",
		"startDate=2024-01-01&endDate=2024-01-08&groupBy=day&deployments=true",
		"startDate=2024-01-02T03:00:00Z&endDate=2024-01-02T09:30:00Z&groupBy=hour&tz=Asia/Kolkata",
		"startDate=2024-01-01&endDate=2024-03-01&groupBy=week&projectId=proj_001",
		"startDate=2024-01-01&endDate=2024-03-01&groupBy=month&projectId=proj_002&deployments=true",
		"startDate=2024-01-01&endDate=2024-01-01&groupBy=day",
		"startDate=2030-01-01&endDate=2030-01-02&groupBy=day",
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/usage/analytics?"+q, nil)
		req.Header.Set("Authorization", "Bearer x")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", q, resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", q, ct)
		}
		var v analyticsJSON
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%s: %v\n%s", q, err, body)
		}
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(v); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(body, want.Bytes()) {
			t.Errorf("%s: the answer differs from encoding/json's:\n got %.600s\nwant %.600s", q, body, want.Bytes())
		}
		if i == 1 {
			if len(v.Projects) != 3 || v.Projects[0].ProjectName != names.projects[0].Name || len(v.Projects[0].Deployments) != 2 {
				t.Errorf("%s: projects %+v, want 3, the first named %q with 2 deployments", q, v.Projects, names.projects[0].Name)
			}
		}
	}
}
