// Package clocktest gives tests the suite's pinned instant: CYGNI_TEST_NOW when it is set (the
// test script runs the suite at several instants), otherwise a fixed default. No test reads the
// wall clock to decide what data it expects.
package clocktest

import (
	"os"
	"testing"
	"time"

	"github.com/cygni/usage/internal/clock"
)

// Default is the instant tests use when CYGNI_TEST_NOW is unset: a weekday morning (UTC) in the
// middle of a month.
var Default = time.Date(2026, 11, 18, 9, 30, 0, 0, time.UTC)

// Now returns the pinned instant: CYGNI_TEST_NOW, or Default. A malformed value fails the test.
func Now(tb testing.TB) time.Time {
	tb.Helper()
	v := os.Getenv(clock.EnvTestNow)
	if v == "" {
		return Default
	}
	t, err := clock.Parse(v)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// Clock returns a clock that starts at Now(tb) and advances in real time: for components whose
// tickers must still run (collector, rule evaluation) in a test.
func Clock(tb testing.TB) clock.Func {
	tb.Helper()
	return clock.Starting(Now(tb))
}

// Env returns the CYGNI_TEST_NOW=… entry that pins a child process (the binary under test, a
// stand-alone simulated AWS) at Now(tb).
func Env(tb testing.TB) string {
	tb.Helper()
	return clock.EnvTestNow + "=" + Now(tb).Format(time.RFC3339Nano)
}
