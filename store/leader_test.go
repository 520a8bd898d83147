package store

import (
	"context"
	"testing"
	"time"
)

// One leader per name among the processes sharing a store; a released (or crashed, its
// connection gone) leader's lease goes to the next one that tries.
func TestLeader(t *testing.T) {
	backendsWith(t, func(t *testing.T, open opener) {
		ctx := context.Background()
		a, b := open(t, Options{}), open(t, Options{})
		la, ok, err := a.TryLeader(ctx, "deriver")
		if err != nil || !ok || la.Check(ctx) != nil {
			t.Fatalf("first TryLeader = %v, %v", ok, err)
		}
		if a.postgres() {
			if _, ok, err := b.TryLeader(ctx, "deriver"); err != nil || ok {
				t.Fatalf("second process took a held leadership: %v, %v", ok, err)
			}
		}
		lr, ok, err := b.TryLeader(ctx, "rules") // another name is independent
		if err != nil || !ok {
			t.Fatalf("TryLeader(rules) = %v, %v", ok, err)
		}
		lr.Release()
		la.Release()
		lb, ok, err := b.TryLeader(ctx, "deriver")
		if err != nil || !ok {
			t.Fatalf("TryLeader after release = %v, %v", ok, err)
		}
		lb.Release()
	})
}

// Collector watermarks in the shared store: per shard, never moving back; CollectedUntil is
// the least watermark once every shard of the current sharding has one.
func TestCollectorWatermarks(t *testing.T) {
	backendsWith(t, func(t *testing.T, open opener) {
		clock := newFakeClock()
		s := open(t, Options{Now: clock.Now})
		ctx := context.Background()
		t0 := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
		if _, ok, err := s.CollectedUntil(ctx); err != nil || ok {
			t.Fatalf("CollectedUntil with no watermark = %v, %v", ok, err)
		}
		if err := s.SetCollectorWatermark(ctx, "us-east-1/0of2", 2, t0); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := s.CollectedUntil(ctx); err != nil || ok {
			t.Fatalf("CollectedUntil with one of two shards = %v, %v", ok, err)
		}
		clock.Add(time.Second)
		if err := s.SetCollectorWatermark(ctx, "us-east-1/1of2", 2, t0.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		if u, ok, err := s.CollectedUntil(ctx); err != nil || !ok || !u.Equal(t0.Add(-time.Hour)) {
			t.Fatalf("CollectedUntil = %v, %v, %v; want the lagging shard's %v", u, ok, err, t0.Add(-time.Hour))
		}
		clock.Add(time.Second)
		if err := s.SetCollectorWatermark(ctx, "us-east-1/0of2", 2, t0.Add(-2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if w, ok, err := s.CollectorWatermark(ctx, "us-east-1/0of2"); err != nil || !ok || !w.Equal(t0) {
			t.Errorf("watermark moved back: %v, %v, %v", w, ok, err)
		}
		// A new sharding (one shard): the rows of the old one no longer count.
		clock.Add(time.Second)
		if err := s.SetCollectorWatermark(ctx, "us-east-1/0of1", 1, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if u, ok, err := s.CollectedUntil(ctx); err != nil || !ok || !u.Equal(t0.Add(time.Hour)) {
			t.Errorf("CollectedUntil after resharding = %v, %v, %v", u, ok, err)
		}
	})
}

// Advisory locks are database-wide: deployments (or test runs) in two schemas of one PostgreSQL
// database each elect their own billing, Deriver and rule leaders.
func TestLeadersPerSchema(t *testing.T) {
	ctx := context.Background()
	dsnA := PostgresTestDSN(t)
	a := openForTest(t, Options{Driver: DriverPostgres, DSN: dsnA})
	b := openForTest(t, Options{Driver: DriverPostgres, DSN: PostgresTestDSN(t)})
	la, ok, err := a.TryBillingLeader(ctx)
	if err != nil || !ok {
		t.Fatalf("billing leader in schema a: %v, %v", ok, err)
	}
	defer la.Release()
	lb, ok, err := b.TryBillingLeader(ctx)
	if err != nil || !ok {
		t.Fatalf("billing leader in schema b while a leads its own: %v, %v", ok, err)
	}
	defer lb.Release()
	a2 := openForTest(t, Options{Driver: DriverPostgres, DSN: dsnA})
	if _, ok, err := a2.TryBillingLeader(ctx); err != nil || ok {
		t.Fatalf("a second process of schema a took its held billing leadership: %v, %v", ok, err)
	}
	for _, name := range []string{"deriver", "rules"} {
		l1, ok1, err1 := a.TryLeader(ctx, name)
		l2, ok2, err2 := b.TryLeader(ctx, name)
		if err1 != nil || err2 != nil || !ok1 || !ok2 {
			t.Fatalf("%s leaders per schema: %v %v, %v %v", name, ok1, err1, ok2, err2)
		}
		l1.Release()
		l2.Release()
	}
}
