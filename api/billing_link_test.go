package api_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cygni/usage/api"
	"github.com/cygni/usage/billing"
	"github.com/cygni/usage/billing/stripetest"
	"github.com/cygni/usage/store"
)

func TestLinkEndpoints(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, nil, store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	for _, team := range []string{"team_ops", "team_a"} {
		if _, err := st.CreateTeam(ctx, store.Team{ID: team, Name: team}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.CreateProject(ctx, store.Project{ID: "proj_a", TeamID: "team_a"}); err != nil {
		t.Fatal(err)
	}
	stripe := stripetest.New(t)
	stripe.AddCustomer("cus_a")
	stripe.AddSubscriptionItem("si_a", "cus_a")
	srv := httptest.NewServer(api.New(api.Options{
		OperatorTeams: []string{"team_ops"},
		AuthDeps: api.AuthDeps{Tokens: staticTokens{
			"ops":     {TeamID: "team_ops", Role: api.RoleAdmin},
			"admin-a": {TeamID: "team_a", Role: api.RoleAdmin},
		}},
		BillingDeps: api.BillingDeps{Linker: billing.NewLinker(st, stripe.URL, stripe.Key, nil, nil)},
	}))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		name, path, token, body string
		status                  int
		contains                string
	}{
		{"a team admin may not link its own team", "/api/teams/team_a/stripe-customer", "admin-a", `{"stripeCustomerId":"cus_a"}`, 403, `operator`},
		{"unknown customer", "/api/teams/team_a/stripe-customer", "ops", `{"stripeCustomerId":"cus_nobody"}`, 400, `"code":"not_in_stripe","message":"stripeCustomerId: Stripe customer cus_nobody: not found in Stripe"`},
		{"malformed customer", "/api/teams/team_a/stripe-customer", "ops", `{"stripeCustomerId":"bob"}`, 400, `stripeCustomerId: \"bob\" is not a Stripe customer id`},
		{"missing field", "/api/teams/team_a/stripe-customer", "ops", `{}`, 400, `stripeCustomerId: is required`},
		{"unknown field", "/api/teams/team_a/stripe-customer", "ops", `{"customer":"cus_a"}`, 400, `unknown field`},
		{"unknown team", "/api/teams/team_zz/stripe-customer", "ops", `{"stripeCustomerId":"cus_a"}`, 404, `team team_zz`},
		{"link", "/api/teams/team_a/stripe-customer", "ops", `{"stripeCustomerId":"cus_a"}`, 200, `{"stripeCustomerId":"cus_a","teamId":"team_a"}`},
		{"bad metric", "/api/projects/proj_a/subscription-items/disk", "ops", `{"subscriptionItemId":"si_a"}`, 400, `metric: \"disk\"`},
		{"unknown item", "/api/projects/proj_a/subscription-items/cpu", "ops", `{"subscriptionItemId":"si_nope"}`, 400, `not_in_stripe`},
		{"unknown project", "/api/projects/proj_zz/subscription-items/cpu", "ops", `{"subscriptionItemId":"si_a"}`, 404, `project proj_zz`},
		{"item", "/api/projects/proj_a/subscription-items/cpu", "ops", `{"subscriptionItemId":"si_a"}`, 200, `"subscriptionItemId":"si_a"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPut, srv.URL+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+tc.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var sb strings.Builder
			_, _ = io.Copy(&sb, resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(sb.String(), tc.contains) {
				t.Errorf("status %d, body %s; want %d with %s", resp.StatusCode, sb.String(), tc.status, tc.contains)
			}
		})
	}
	if cus, _ := st.ProjectStripeCustomer(ctx, "proj_a"); cus != "cus_a" {
		t.Errorf("team_a's customer is %q, want cus_a", cus)
	}
	if item, _ := st.BillingSubscriptionItem(ctx, "proj_a", "cpu"); item != "si_a" {
		t.Errorf("proj_a cpu item %q, want si_a", item)
	}
}
