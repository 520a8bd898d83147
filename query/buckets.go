package query

import (
	"errors"
	"fmt"
	"time"
)

// GroupBy is a calendar bucket size.
type GroupBy string

// Bucket sizes.
const (
	Hour  GroupBy = "hour"
	Day   GroupBy = "day"
	Week  GroupBy = "week" // ISO week, starting on Monday
	Month GroupBy = "month"
)

// Limits on a request's range.
const (
	// MaxHourlyRange is the longest range answered with groupBy=hour.
	MaxHourlyRange = 31 * 24 * time.Hour
	// MaxRange is the longest range answered at all (the TSDB's default retention).
	MaxRange = 400 * 24 * time.Hour
)

// Errors of Buckets; the API maps them to 400s naming the parameter.
var (
	ErrRangeOrder    = errors.New("startDate is after endDate")
	ErrRangeTooLarge = errors.New("range too large")
	ErrGroupBy       = errors.New("unknown groupBy")
)

// ParseGroupBy parses hour, day, week or month.
func ParseGroupBy(s string) (GroupBy, error) {
	switch g := GroupBy(s); g {
	case Hour, Day, Week, Month:
		return g, nil
	}
	return "", fmt.Errorf("%q: %w; want hour, day, week or month", s, ErrGroupBy)
}

// Floor returns the start of the calendar bucket of size g, in loc, that contains t.
func (g GroupBy) Floor(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	switch g {
	case Hour:
		// Local hours: offsets are whole quarters of an hour, so a local hour starts at a
		// whole local hour even across DST changes.
		return l.Add(-time.Duration(l.Minute())*time.Minute - time.Duration(l.Second())*time.Second - time.Duration(l.Nanosecond()))
	case Day:
		y, m, d := l.Date()
		return time.Date(y, m, d, 0, 0, 0, 0, loc)
	case Week:
		y, m, d := l.Date()
		back := (int(l.Weekday()) + 6) % 7 // days since Monday
		return time.Date(y, m, d-back, 0, 0, 0, 0, loc)
	default:
		y, m, _ := l.Date()
		return time.Date(y, m, 1, 0, 0, 0, 0, loc)
	}
}

// Next returns the start of the bucket after the one starting at start.
func (g GroupBy) Next(start time.Time, loc *time.Location) time.Time {
	l := start.In(loc)
	y, m, d := l.Date()
	switch g {
	case Hour:
		return g.Floor(start.Add(time.Hour), loc)
	case Day:
		return time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	case Week:
		return time.Date(y, m, d+7, 0, 0, 0, 0, loc)
	default:
		return time.Date(y, m+1, 1, 0, 0, 0, 0, loc)
	}
}

// Buckets returns the boundaries of the calendar buckets of size g, in loc, that start inside
// [from, to): n+1 instants for n buckets, the last one the end of the last bucket. A bucket that
// starts before to is counted whole, so to=2024-01-31T23:59:59Z covers all of January 31st; one
// that starts before from is not counted.
func Buckets(from, to time.Time, g GroupBy, loc *time.Location) ([]time.Time, error) {
	if from.After(to) {
		return nil, ErrRangeOrder
	}
	if to.Sub(from) > MaxRange {
		return nil, fmt.Errorf("%w: at most %d days", ErrRangeTooLarge, int(MaxRange/(24*time.Hour)))
	}
	if g == Hour && to.Sub(from) > MaxHourlyRange {
		return nil, fmt.Errorf("%w: groupBy=hour covers at most %d days (%d hours); use groupBy=day", ErrRangeTooLarge,
			int(MaxHourlyRange/(24*time.Hour)), int(MaxHourlyRange/time.Hour))
	}
	if loc == nil {
		loc = time.UTC
	}
	start := g.Floor(from, loc)
	if start.Before(from) {
		start = g.Next(start, loc)
	}
	var b []time.Time
	for t := start; t.Before(to); t = g.Next(t, loc) {
		b = append(b, t)
	}
	if len(b) == 0 {
		return nil, nil
	}
	return append(b, g.Next(b[len(b)-1], loc)), nil
}

// BillingPeriod returns the billing period that contains t: it starts on anchorDay (1..28) of a
// month at 00:00 UTC and ends on the same day of the next month. anchorDay 1 is the calendar
// month.
func BillingPeriod(t time.Time, anchorDay int) (start, end time.Time) {
	if anchorDay < 1 || anchorDay > 28 {
		anchorDay = 1
	}
	u := t.UTC()
	y, m, d := u.Date()
	if d < anchorDay {
		m--
	}
	start = time.Date(y, m, anchorDay, 0, 0, 0, 0, time.UTC)
	return start, start.AddDate(0, 1, 0)
}
