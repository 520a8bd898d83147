package query

import (
	"errors"
	"fmt"
	"time"

	"github.com/cygni/usage/budget"
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

// Buckets returns the boundaries of the calendar buckets of size g, in loc, that overlap the
// 1-minute collection periods starting inside [from, to): n+1 instants for n buckets. The first
// and last buckets are clipped to the range, so a range counts exactly the periods that start
// inside it (DESIGN.md, "Time semantics"): to=2024-01-31T23:59:59Z covers all of January 31st
// (the period starting at 23:59 starts inside the range), and a week or month that starts before
// from counts only from from on. Use GroupBy.Floor on a bucket's start for its calendar label.
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
	// The periods that start inside [from, to) are those starting in [ceil(from), ceil(to)).
	start, end := ceilMinute(from), ceilMinute(to)
	if !start.Before(end) {
		return nil, nil
	}
	b := []time.Time{start}
	for t := g.Next(g.Floor(start, loc), loc); t.Before(end); t = g.Next(t, loc) {
		b = append(b, t)
	}
	return append(b, end), nil
}

// ceilMinute rounds t up to the next whole minute (t itself when it is one).
func ceilMinute(t time.Time) time.Time {
	f := t.Truncate(time.Minute)
	if f.Before(t) {
		return f.Add(time.Minute)
	}
	return f
}

// BillingPeriod returns the billing period that contains t: it starts on anchorDay (1..28) of a
// month at 00:00 UTC and ends on the same day of the next month. anchorDay 1 is the calendar
// month.
func BillingPeriod(t time.Time, anchorDay int) (start, end time.Time) {
	return budget.Period(t, anchorDay)
}
