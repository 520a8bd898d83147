// Package budget holds the money rules every part applies the same way: the billing period,
// the effective budget limit, the alert thresholds, whether a threshold is reached, the percent
// of the budget used and the budget status. The usage API, the notifier that confirms budget
// alerts and the derived gauges the rule files read all call these functions, so the budget
// page, the limits list and the e-mail cannot disagree about a project.
//
// Invariants:
//   - A threshold is reached exactly when used × 100 ≥ threshold × limit, compared in exact
//     decimals (no division, no float); a limit of zero or less is reached by any use.
//   - The percent shown is floored to one decimal, so it shows 80.0 exactly when the 80 %
//     threshold is reached, and 100.0 exactly when the budget is exceeded.
//   - The billing period is a calendar month in UTC starting on the team's anchor day.
package budget

import (
	"time"

	"github.com/shopspring/decimal"
)

// Thresholds of the seed: a warning at 80 % and exceeded at 100 % of the limit.
var (
	Warning  = decimal.NewFromInt(80)
	Exceeded = decimal.NewFromInt(100)
)

// DefaultLimit is the monthly budget limit in USD of a project whose team sets no default.
var DefaultLimit = decimal.NewFromInt(100)

// Statuses of a budget.
const (
	StatusOK       = "ok"
	StatusWarning  = "warning"
	StatusExceeded = "exceeded"
)

var hundred = decimal.NewFromInt(100)

// Period returns the billing period [start, end) that contains t: a calendar month in UTC that
// starts on anchorDay (1-28; anything else means 1).
func Period(t time.Time, anchorDay int) (start, end time.Time) {
	if anchorDay < 1 || anchorDay > 28 {
		anchorDay = 1
	}
	u := t.UTC()
	start = time.Date(u.Year(), u.Month(), anchorDay, 0, 0, 0, 0, time.UTC)
	if u.Before(start) {
		start = start.AddDate(0, -1, 0)
	}
	return start, start.AddDate(0, 1, 0)
}

// EffectiveLimit is a project's own limit, else its team's default, else DefaultLimit.
func EffectiveLimit(projectLimit, teamDefault *decimal.Decimal) decimal.Decimal {
	switch {
	case projectLimit != nil:
		return *projectLimit
	case teamDefault != nil:
		return *teamDefault
	default:
		return DefaultLimit
	}
}

// Reached reports exactly whether used is at least threshold percent of limit; a limit of zero
// or less is reached by any use.
func Reached(used, limit, threshold decimal.Decimal) bool {
	if !limit.IsPositive() {
		return used.IsPositive()
	}
	return used.Mul(hundred).GreaterThanOrEqual(threshold.Mul(limit))
}

// IsExceeded reports whether used reached 100 % of limit.
func IsExceeded(used, limit decimal.Decimal) bool { return Reached(used, limit, Exceeded) }

// Status is StatusExceeded from 100 %, StatusWarning from 80 %, else StatusOK.
func Status(used, limit decimal.Decimal) string {
	switch {
	case Reached(used, limit, Exceeded):
		return StatusExceeded
	case Reached(used, limit, Warning):
		return StatusWarning
	}
	return StatusOK
}

// PercentUsed is used as a percentage of limit, floored to one decimal, so that it reaches a
// threshold exactly when Reached does; a limit of zero or less reads 100 once anything is used.
func PercentUsed(used, limit decimal.Decimal) decimal.Decimal {
	if !limit.IsPositive() {
		if used.IsPositive() {
			return hundred
		}
		return decimal.Zero
	}
	q, _ := used.Mul(hundred).QuoRem(limit, 1)
	if q.Mul(limit).GreaterThan(used.Mul(hundred)) { // QuoRem truncates; floor negatives
		q = q.Sub(decimal.New(1, -1))
	}
	return q
}
