package budget

// Customer-set alert thresholds (issue #20): a project, or a team as its default, lists the
// percentages of the budget it wants to hear about, each on the actual cost of the billing period
// so far or on the period's forecast, each with its recipients. The seed's 80 % warning and 100 %
// exceeded on the actual cost always stay in the list; the 100 % one always goes to every admin.
//
// The rule files stay the mechanism: the Deriver exports every threshold other than those two as
// a series cygni_project_alert_threshold_ratio{project,threshold,basis} and one shipped generic
// rule compares the used (or forecast) ratio against it; the notifier confirms a firing alert
// with Crossed, on the exact amounts.

import (
	"fmt"
	"net/mail"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Bases of a threshold.
const (
	BasisActual   = "actual"   // the cost of the billing period so far
	BasisForecast = "forecast" // the forecast cost at the end of the billing period
)

// Bounds of a threshold list.
const (
	// MaxThresholds is the most thresholds one list holds, the two fixed ones included.
	MaxThresholds = 12
	// MaxExtraEmails is the most extra addresses one threshold names.
	MaxExtraEmails = 10
)

// MaxThresholdPercent is the largest percentage a threshold may name.
var MaxThresholdPercent = decimal.NewFromInt(1000)

// Recipients are who hears of a threshold's crossing.
type Recipients struct {
	BillingContact bool     `json:"billingContact"` // the team's billing e-mail
	Admins         bool     `json:"admins"`         // every admin of the team
	Emails         []string `json:"emails"`         // further addresses
	Webhook        bool     `json:"webhook"`        // the configured webhook
}

// Threshold is one percentage of the budget on one basis, with its recipients.
type Threshold struct {
	Percent    decimal.Decimal
	Basis      string
	Recipients Recipients
}

// Key names a threshold within a list: "actual:50".
func (t Threshold) Key() string { return t.Basis + ":" + t.Percent.String() }

// Fixed reports whether t is one of the seed's thresholds that always stay (80 % and 100 % of
// the actual cost); the shipped ProjectBudgetWarning and ProjectBudgetExceeded alerts cover them.
func (t Threshold) Fixed() bool {
	return t.Basis == BasisActual && (t.Percent.Equal(Warning) || t.Percent.Equal(Exceeded))
}

// Ratio is the threshold as a fraction of the budget (0.5 for 50 %), the value of its series.
func (t Threshold) Ratio() decimal.Decimal { return t.Percent.Div(hundred) }

// Crossed reports exactly whether the costs reach the threshold of limit: the cost so far for
// BasisActual, the forecast for BasisForecast (Reached's rule).
func (t Threshold) Crossed(used, forecast, limit decimal.Decimal) bool {
	if t.Basis == BasisForecast {
		return Reached(forecast, limit, t.Percent)
	}
	return Reached(used, limit, t.Percent)
}

// DefaultThresholds is the list of a project whose team sets none: the seed's warning at 80 %
// to the billing contact and exceeded at 100 % to every admin, both also to the webhook.
func DefaultThresholds() []Threshold {
	return []Threshold{
		{Percent: Warning, Basis: BasisActual, Recipients: Recipients{BillingContact: true, Webhook: true}},
		{Percent: Exceeded, Basis: BasisActual, Recipients: Recipients{Admins: true, Webhook: true}},
	}
}

// Find returns the threshold of list with that percent and basis.
func Find(list []Threshold, percent decimal.Decimal, basis string) (Threshold, bool) {
	if basis == "" {
		basis = BasisActual
	}
	for _, t := range list {
		if t.Basis == basis && t.Percent.Equal(percent) {
			return t, true
		}
	}
	return Threshold{}, false
}

// ThresholdError names the entry of a list that is wrong.
type ThresholdError struct {
	Index int    // the entry, from 0; -1 for the list as a whole
	Field string // "percent", "basis", "recipients.emails", …
	Msg   string
}

func (e *ThresholdError) Error() string {
	if e.Index < 0 {
		return e.Msg
	}
	return fmt.Sprintf("thresholds[%d].%s: %s", e.Index, e.Field, e.Msg)
}

// NormalizeThresholds checks a customer's list and returns it complete and in order: every
// percentage positive, at most MaxThresholdPercent with at most two decimals, a known basis, no
// entry twice, valid extra addresses (deduplicated, lower-cased domain kept as given); the fixed
// 80 % and 100 % thresholds are added with their default recipients when missing, and the 100 %
// one always includes every admin (exceeded alerts to admins cannot be muted). The result is
// sorted by basis (actual first), then percentage.
func NormalizeThresholds(in []Threshold) ([]Threshold, error) {
	if len(in) > MaxThresholds {
		return nil, &ThresholdError{Index: -1, Msg: fmt.Sprintf("at most %d thresholds, got %d", MaxThresholds, len(in))}
	}
	seen := map[string]bool{}
	out := make([]Threshold, 0, len(in)+2)
	for i, t := range in {
		switch {
		case !t.Percent.IsPositive():
			return nil, &ThresholdError{i, "percent", fmt.Sprintf("%s must be positive", t.Percent)}
		case t.Percent.GreaterThan(MaxThresholdPercent):
			return nil, &ThresholdError{i, "percent", fmt.Sprintf("%s is above the maximum of %s", t.Percent, MaxThresholdPercent)}
		case !t.Percent.Equal(t.Percent.Round(2)):
			return nil, &ThresholdError{i, "percent", fmt.Sprintf("%s has more than 2 decimals", t.Percent)}
		}
		t.Percent = t.Percent.Round(2)
		if t.Basis == "" {
			t.Basis = BasisActual
		}
		if t.Basis != BasisActual && t.Basis != BasisForecast {
			return nil, &ThresholdError{i, "basis", fmt.Sprintf("%q is not actual or forecast", t.Basis)}
		}
		if seen[t.Key()] {
			return nil, &ThresholdError{i, "percent", fmt.Sprintf("%s %% on the %s cost is listed twice", t.Percent, t.Basis)}
		}
		seen[t.Key()] = true
		if len(t.Recipients.Emails) > MaxExtraEmails {
			return nil, &ThresholdError{i, "recipients.emails", fmt.Sprintf("at most %d addresses, got %d", MaxExtraEmails, len(t.Recipients.Emails))}
		}
		var emails []string
		dup := map[string]bool{}
		for j, e := range t.Recipients.Emails {
			a, err := mail.ParseAddress(e)
			if err != nil || a.Name != "" || a.Address != strings.TrimSpace(e) {
				return nil, &ThresholdError{i, fmt.Sprintf("recipients.emails[%d]", j), fmt.Sprintf("%q is not a plain e-mail address", e)}
			}
			if k := strings.ToLower(a.Address); !dup[k] {
				dup[k] = true
				emails = append(emails, a.Address)
			}
		}
		t.Recipients.Emails = emails
		out = append(out, t)
	}
	for _, d := range DefaultThresholds() {
		if !seen[d.Key()] {
			out = append(out, d)
		}
	}
	for i := range out {
		if out[i].Basis == BasisActual && out[i].Percent.Equal(Exceeded) {
			out[i].Recipients.Admins = true
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Basis != out[j].Basis {
			return out[i].Basis == BasisActual
		}
		return out[i].Percent.LessThan(out[j].Percent)
	})
	return out, nil
}

// EffectiveThresholds is a project's own list, else its team's default, else
// DefaultThresholds (nil means "not set").
func EffectiveThresholds(project, teamDefault []Threshold) []Threshold {
	switch {
	case project != nil:
		return project
	case teamDefault != nil:
		return teamDefault
	}
	return DefaultThresholds()
}

// Day returns the calendar day [start, end) in loc that contains t: from local midnight to the
// next local midnight, so a day on which the clocks change lasts 23 or 25 hours. A daily budget
// resets at start.
func Day(t time.Time, loc *time.Location) (start, end time.Time) {
	if loc == nil {
		loc = time.UTC
	}
	l := t.In(loc)
	start = time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
	return start, time.Date(l.Year(), l.Month(), l.Day()+1, 0, 0, 0, 0, loc)
}

// LoadTimeZone resolves a team's time zone name ("" is UTC).
func LoadTimeZone(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("time zone %q is not an IANA name (e.g. Europe/Berlin): %w", name, err)
	}
	return loc, nil
}
