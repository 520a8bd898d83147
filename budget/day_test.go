package budget

import (
	"testing"
	"time"
)

// A daily budget's day runs from local midnight to local midnight: 24 h on an ordinary day,
// 23 h on the day the clocks go forward, 25 h on the day they go back.
func TestDayInTimeZone(t *testing.T) {
	berlin, err := LoadTimeZone("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		at         string
		start, end string
		hours      float64
	}{
		{"2025-03-29T22:59:59Z", "2025-03-28T23:00:00Z", "2025-03-29T23:00:00Z", 24}, // 23:59:59 CET
		{"2025-03-29T23:00:00Z", "2025-03-29T23:00:00Z", "2025-03-30T22:00:00Z", 23}, // the spring-forward day
		{"2025-03-30T21:59:59Z", "2025-03-29T23:00:00Z", "2025-03-30T22:00:00Z", 23},
		{"2025-03-30T22:00:00Z", "2025-03-30T22:00:00Z", "2025-03-31T22:00:00Z", 24},
		{"2025-10-26T12:00:00Z", "2025-10-25T22:00:00Z", "2025-10-26T23:00:00Z", 25}, // fall back
	} {
		at, _ := time.Parse(time.RFC3339, c.at)
		s, e := Day(at, berlin)
		if s.UTC().Format(time.RFC3339) != c.start || e.UTC().Format(time.RFC3339) != c.end || e.Sub(s).Hours() != c.hours {
			t.Errorf("Day(%s) = [%s, %s) %v h, want [%s, %s) %v h", c.at, s.UTC().Format(time.RFC3339), e.UTC().Format(time.RFC3339), e.Sub(s).Hours(), c.start, c.end, c.hours)
		}
	}
	if _, err := LoadTimeZone("Mars/Olympus"); err == nil {
		t.Error("an unknown zone was accepted")
	}
	if s, _ := Day(time.Date(2025, 1, 2, 3, 0, 0, 0, time.UTC), nil); !s.Equal(time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("UTC day starts %s", s)
	}
}
