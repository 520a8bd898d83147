package store

import (
	"context"
	"testing"
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
