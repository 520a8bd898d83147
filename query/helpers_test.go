package query

import (
	"testing"
	"time"

	"github.com/cygni/usage/tsdb"
)

// simNow is the tests' fixed clock.
var simNow = time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)

func newEngine(tb testing.TB, db *tsdb.DB, prices Prices, hourly func() (time.Time, time.Time)) *Engine {
	tb.Helper()
	e, err := New(nil, nil, Options{Storage: db, Prices: prices, Now: func() time.Time { return simNow }, HourlyRange: hourly})
	if err != nil {
		tb.Fatal(err)
	}
	return e
}
