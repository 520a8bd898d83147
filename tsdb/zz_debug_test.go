package tsdb

import (
	"context"
	"os"
	"testing"
	"time"
)

func TestZZDebugFixture(t *testing.T) {
	dir := os.Getenv("ZZ_DIR")
	if dir == "" {
		t.Skip()
	}
	db, err := Open(nil, nil, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	p := func() {
		h := db.db.Head()
		t.Logf("head min %v max %v ooo min %v max %v series %d", time.UnixMilli(h.MinTime()).UTC(), time.UnixMilli(h.MaxTime()).UTC(), h.MinOOOTime(), h.MaxOOOTime(), h.NumSeries())
	}
	p()
	if err := db.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	p()
	d := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC).UnixMilli()
	t.Log(db.Generation(d+1, d+86400000))
	db.db.Close()
}
