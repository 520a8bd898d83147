package query

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/shopspring/decimal"
)

// Size is a Fargate task size.
type Size struct {
	VCPU, MemoryGB decimal.Decimal
}

// fargateSizes are the valid Fargate task sizes (vCPU, memory GB), smallest first.
var fargateSizes = func() []Size {
	var out []Size
	add := func(cpu string, mems ...float64) {
		for _, m := range mems {
			out = append(out, Size{decimal.RequireFromString(cpu), decimal.NewFromFloat(m)})
		}
	}
	span := func(lo, hi, step float64) []float64 {
		var s []float64
		for v := lo; v <= hi; v += step {
			s = append(s, v)
		}
		return s
	}
	add("0.25", 0.5, 1, 2)
	add("0.5", span(1, 4, 1)...)
	add("1", span(2, 8, 1)...)
	add("2", span(4, 16, 1)...)
	add("4", span(8, 30, 1)...)
	add("8", span(16, 60, 4)...)
	add("16", span(32, 120, 8)...)
	return out
}()

// Right-sizing thresholds: a deployment is over-provisioned when its peak hourly use of vCPU
// or memory stays at or below lowUse of what it reserves over RecommendationWindow; the
// recommended size keeps headroom above the peak.
const (
	RecommendationWindow = 14 * 24 * time.Hour
	lowUse               = 0.5
	headroom             = 1.3
	hoursPerMonth        = 730
)

// Recommendation proposes a smaller Fargate size for one deployment.
type Recommendation struct {
	Project, Deployment string
	// Current is the reserved size per task (the latest hour); Recommended the smallest valid
	// Fargate size that covers the peak use with headroom.
	Current, Recommended Size
	// PeakVCPU and PeakMemoryGB are the highest hourly mean use per task over the window.
	PeakVCPU, PeakMemoryGB decimal.Decimal
	// AverageTasks is the mean number of running tasks over the window.
	AverageTasks decimal.Decimal
	// MonthlySaving is (current − recommended) price per task-hour × average tasks × 730 h, at
	// the prices in force now.
	MonthlySaving decimal.Decimal
	Reason        string
}

// Recommendations returns the deployments of projects whose vCPU or memory use stays far below
// what they reserve over the last 14 days, largest saving first.
func (e *Engine) Recommendations(ctx context.Context, projects []string, now time.Time) ([]Recommendation, error) {
	end := now.UTC().Truncate(time.Hour)
	var bounds []time.Time
	for h := end.Add(-RecommendationWindow); !h.After(end); h = h.Add(time.Hour) {
		bounds = append(bounds, h)
	}
	ru, err := e.Rollup(ctx, projects, bounds, ByDeployment)
	if err != nil {
		return nil, fmt.Errorf("usage of the last 14 days: %w", err)
	}
	var out []Recommendation
	for _, k := range ru.Keys() {
		prices := ru.Prices.Of(k.Project)
		price := func(s Size) decimal.Decimal { return prices.TaskHourCost(now, s.VCPU, s.MemoryGB) }
		var (
			curCPU, curMem, peakCPU, peakMem float64
			taskMinutes                      float64
		)
		for _, b := range ru.Rows[k] {
			tm := b.Usage.Decimal(TaskMinutes).InexactFloat64()
			if tm <= 0 {
				continue
			}
			taskMinutes += tm
			taskSeconds, taskHours := tm*60, tm/60
			curCPU = b.Usage.Decimal(CPUSeconds).InexactFloat64() / taskSeconds
			curMem = b.Usage.Decimal(MemoryGBHours).InexactFloat64() / taskHours
			peakCPU = max(peakCPU, b.Usage.Decimal(CPUUsedSeconds).InexactFloat64()/taskSeconds)
			peakMem = max(peakMem, b.Usage.Decimal(MemoryUsedGBHours).InexactFloat64()/taskHours)
		}
		if taskMinutes == 0 || curCPU == 0 || curMem == 0 {
			continue
		}
		lowCPU, lowMem := peakCPU <= lowUse*curCPU, peakMem <= lowUse*curMem
		if !lowCPU && !lowMem {
			continue
		}
		cur := Size{decimal.NewFromFloat(curCPU).Round(2), decimal.NewFromFloat(curMem).Round(2)}
		var rec *Size
		for i := range fargateSizes {
			s := fargateSizes[i]
			if s.VCPU.InexactFloat64() >= peakCPU*headroom && s.MemoryGB.InexactFloat64() >= peakMem*headroom &&
				price(s).LessThan(price(cur)) {
				if rec == nil || price(s).LessThan(price(*rec)) {
					rec = &s
				}
			}
		}
		if rec == nil {
			continue
		}
		avg := decimal.NewFromFloat(taskMinutes / RecommendationWindow.Minutes()).Round(4)
		reason := "vCPU use peaks at %.0f%% of the reserved size"
		pct := peakCPU / curCPU * 100
		if !lowCPU || (lowMem && peakMem/curMem < peakCPU/curCPU) {
			reason, pct = "memory use peaks at %.0f%% of the reserved size", peakMem/curMem*100
		}
		out = append(out, Recommendation{
			Project: k.Project, Deployment: k.Deployment, Current: cur, Recommended: *rec,
			PeakVCPU: decimal.NewFromFloat(peakCPU).Round(3), PeakMemoryGB: decimal.NewFromFloat(peakMem).Round(3),
			AverageTasks:  avg,
			MonthlySaving: price(cur).Sub(price(*rec)).Mul(avg).Mul(decimal.NewFromInt(hoursPerMonth)),
			Reason:        fmt.Sprintf(reason+" over the last 14 days", pct),
		})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].MonthlySaving.GreaterThan(out[j].MonthlySaving) })
	return out, nil
}
