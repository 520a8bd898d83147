package collector

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/cygni/usage/simaws"
	"github.com/cygni/usage/tsdb"
)

// Two AWS accounts in two regions, each reached by assuming its role through STS from the base
// credentials (the real SDK's stscreds against the simulated STS, Query protocol): every
// project's usage in every series, per region, equals that account's simulated truth, and the
// region label comes from the target. A role the organisation does not have fails with STS'
// AccessDenied, naming it.
func TestTargetsAcrossAccountsAndRegions(t *testing.T) {
	clk := &clock{t: testNow}
	accounts := []simaws.Account{
		{ID: "111111111111", RoleName: "cygni-collector", Sim: simaws.New(simaws.Options{Seed: 3, Projects: 3, Region: "us-east-1",
			AccountID: "111111111111", AccessKeyID: "ASIASIM111", SecretAccessKey: "secret-111", Now: clk.Now})},
		{ID: "222222222222", RoleName: "cygni-collector", Sim: simaws.New(simaws.Options{Seed: 8, Projects: 2, Region: "eu-west-1",
			AccountID: "222222222222", AccessKeyID: "ASIASIM222", SecretAccessKey: "secret-222", Now: clk.Now})},
	}
	c, db, org, base := orgCollector(t, clk, accounts, []TargetConfig{
		{RoleARN: accounts[0].RoleARN(), Region: "us-east-1"},
		{RoleARN: accounts[1].RoleARN(), Region: "eu-west-1", ExternalID: "cygni"},
	}, 3*time.Hour)
	ctx := context.Background()
	if err := c.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		clk.Add(5 * time.Minute)
		if err := c.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	from, to := testNow.Add(-3*time.Hour), clk.Now()
	for _, acc := range accounts {
		if n := org.AssumeRoleCalls(acc.RoleARN()); n != 1 {
			t.Errorf("%s assumed %d times, want once (the credentials are cached)", acc.RoleARN(), n)
		}
		region := map[string]string{"111111111111": "us-east-1", "222222222222": "eu-west-1"}[acc.ID]
		projects := map[string]bool{}
		for _, s := range acc.Sim.Services() {
			if s.Project != "" {
				projects[s.Project] = true
			}
		}
		for _, name := range allSeries {
			if name == simaws.SeriesCPUUsedSeconds || name == simaws.SeriesMemoryUsedGBHours || name == simaws.SeriesRunningTasks {
				continue // read at the hourly cadence: checked up to their watermark below
			}
			for p := range projects {
				assertClose(t, acc.ID+" "+region+" "+p+" "+name, stored(t, db, name, from, to, eq("project", p), eq("region", region)),
					acc.Sim.ProjectTruth(p, name, from, to))
			}
		}
		rs, _ := c.RightSizingWatermark()
		for _, name := range []string{simaws.SeriesCPUUsedSeconds, simaws.SeriesMemoryUsedGBHours, simaws.SeriesRunningTasks} {
			for p := range projects {
				assertClose(t, acc.ID+" "+region+" "+p+" "+name, stored(t, db, name, from, rs, eq("project", p), eq("region", region)),
					acc.Sim.ProjectTruth(p, name, from, rs))
			}
		}
	}
	// proj_003 exists only in the first account: nothing of it is labelled eu-west-1.
	if got := stored(t, db, simaws.SeriesCPUSeconds, from, to, eq("project", "proj_003"), eq("region", "eu-west-1")); got != 0 {
		t.Errorf("proj_003 in eu-west-1: %v, want 0", got)
	}

	bad, err := NewTargets(base, []TargetConfig{{RoleARN: "arn:aws:iam::333333333333:role/cygni-collector", Region: "us-east-1"}})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := New(nil, nil, Options{Targets: bad, Storage: db, Region: "us-east-1", DataDir: t.TempDir(), Now: clk.Now,
		RetryInitial: time.Millisecond, RetryMaxElapsed: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = c2.RunOnce(ctx)
	if err == nil || !strings.Contains(err.Error(), "AccessDenied") || !strings.Contains(err.Error(), "333333333333") {
		t.Errorf("unknown role: %v, want STS AccessDenied naming the role", err)
	}
}

// Two accounts in one region whose clusters and services have the same names (each account a
// copy of the same layout, as platforms that stamp one account per environment do): without the
// account label their series would be one and one account's samples refused as duplicates.
// Every project's usage equals the sum of both accounts' truths, and each account's series its
// own truth.
func TestTargetsSameNamesInTwoAccounts(t *testing.T) {
	clk := &clock{t: testNow}
	accounts := []simaws.Account{
		{ID: "111111111111", RoleName: "cygni-collector", Sim: simaws.New(simaws.Options{Seed: 3, Projects: 2, Region: "us-east-1",
			AccountID: "111111111111", AccessKeyID: "ASIASIM111", SecretAccessKey: "secret-111", Now: clk.Now})},
		{ID: "222222222222", RoleName: "cygni-collector", Sim: simaws.New(simaws.Options{Seed: 8, Projects: 2, Region: "us-east-1",
			AccountID: "222222222222", AccessKeyID: "ASIASIM222", SecretAccessKey: "secret-222", Now: clk.Now})},
	}
	names := func(s *simaws.Sim) (out []string) {
		for _, svc := range s.Services() {
			out = append(out, svc.Cluster+"/"+svc.Name)
		}
		return out
	}
	if a, b := names(accounts[0].Sim), names(accounts[1].Sim); strings.Join(a, ",") != strings.Join(b, ",") {
		t.Fatalf("the two accounts' services differ (%v, %v): the test needs the same names", a, b)
	}
	c, db, _, _ := orgCollector(t, clk, accounts, []TargetConfig{
		{RoleARN: accounts[0].RoleARN(), Region: "us-east-1"},
		{RoleARN: accounts[1].RoleARN(), Region: "us-east-1"},
	}, 2*time.Hour)
	ctx := context.Background()
	for i := range 3 {
		if i > 0 {
			clk.Add(5 * time.Minute)
		}
		if err := c.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	from, to := testNow.Add(-2*time.Hour), clk.Now()
	for _, name := range []string{simaws.SeriesCPUSeconds, simaws.SeriesMemoryGBHours, simaws.SeriesEgressBytes, simaws.SeriesRequests} {
		for _, p := range []string{"proj_001", "proj_002"} {
			var both float64
			for _, acc := range accounts {
				want := acc.Sim.ProjectTruth(p, name, from, to)
				both += want
				assertClose(t, acc.ID+" "+p+" "+name, stored(t, db, name, from, to, eq("project", p), eq("account", acc.ID)), want)
			}
			if both == 0 {
				t.Fatalf("%s %s: no truth to compare", p, name)
			}
			assertClose(t, p+" "+name+" (both accounts)", stored(t, db, name, from, to, eq("project", p)), both)
		}
	}
}

// orgCollector serves the accounts' fleets behind a simulated STS (simaws.NewOrg) and returns a
// collector of targets over a fresh TSDB, reached from the base credentials by assuming the roles.
func orgCollector(t *testing.T, clk *clock, accounts []simaws.Account, tcs []TargetConfig, backfill time.Duration) (*Collector, *tsdb.DB, *simaws.Org, aws.Config) {
	t.Helper()
	// STS credentials expire by the wall clock, as the SDK checks them: no simulated clock here.
	org := simaws.NewOrg(simaws.OrgOptions{Accounts: accounts})
	srv := httptest.NewServer(org.Handler())
	t.Cleanup(srv.Close)
	base := aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDSIMULATED", "simulated-secret", ""),
		BaseEndpoint: aws.String(srv.URL),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.Backoff = noBackoff{} })
		},
	}
	targets, err := NewTargets(base, tcs)
	if err != nil {
		t.Fatal(err)
	}
	db, err := tsdb.Open(nil, nil, tsdb.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	c, err := New(testLogger(t), nil, Options{Targets: targets, Storage: db, Region: "us-east-1", DataDir: t.TempDir(),
		Metrics: metrics.NewSet(), Backfill: backfill, Now: clk.Now, RetryInitial: time.Millisecond, RetryMaxElapsed: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c, db, org, base
}
