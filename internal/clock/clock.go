// Package clock is the process's time source. Production reads the wall clock; a test run pins
// it with CYGNI_TEST_NOW (RFC 3339), so that every component of the process — the simulated AWS,
// the collector, the Deriver, billing, alerting, the API — sees the same instant, and the whole
// suite behaves the same at any hour of the day.
//
// A pinned clock starts at the pinned instant and then advances with the monotonic clock, so the
// process still collects, evaluates and bills on its tickers as it would in real time.
package clock

import (
	"fmt"
	"os"
	"time"
)

// EnvTestNow names the environment variable that pins the clock (RFC 3339).
const EnvTestNow = "CYGNI_TEST_NOW"

// Func is a clock: it returns the current time.
type Func = func() time.Time

// FromEnv returns time.Now, or, when CYGNI_TEST_NOW is set, a clock that starts at that instant
// and advances from the moment FromEnv is called. A malformed value is an error naming it.
func FromEnv() (Func, error) {
	v := os.Getenv(EnvTestNow)
	if v == "" {
		return time.Now, nil
	}
	t, err := Parse(v)
	if err != nil {
		return nil, err
	}
	return Starting(t), nil
}

// Parse parses a CYGNI_TEST_NOW value.
func Parse(v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s=%q is not an RFC 3339 time (e.g. 2026-11-18T03:30:00Z)", EnvTestNow, v)
	}
	return t.UTC(), nil
}

// Starting returns a clock that reads t now and advances with the monotonic clock.
func Starting(t time.Time) Func {
	t0 := time.Now()
	return func() time.Time { return t.Add(time.Since(t0)) }
}

// Offset returns how far clock c is ahead of the wall clock (zero for time.Now). Libraries that
// read the wall clock themselves (Prometheus' rule manager) shift their timestamps by it.
func Offset(c Func) time.Duration {
	return c().Sub(time.Now()).Round(time.Millisecond)
}
