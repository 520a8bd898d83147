package api

import (
	"time"

	"github.com/shopspring/decimal"

	"github.com/cygni/usage/query"
	"github.com/cygni/usage/series"
)

// How displayed money adds up (the rule of every usage endpoint, as on an invoice):
//
//   - Each part — one resource's cost or one quantity of one project in one bucket — is
//     computed exactly and rounded once, half away from zero, to the precision it is shown with.
//   - Every total shown is the sum of the shown parts it covers: a project's totalCost is the
//     sum of its shown resource costs, a team's cost per resource the sum of its projects' shown
//     costs, a bucket of all projects the sum of the projects' shown buckets, and the totals of
//     a range the sum of its shown buckets. So a reader who adds the figures gets the total.
//   - Each field has one precision everywhere (the places* constants): money in USD with 2
//     decimals where it is a bill (summary, budget) and 6 where it is an hour's or a bucket's
//     fraction of a cent (analytics, export); quantities as below, trailing zeros kept.
//
// The average number of running tasks (containerInstances) is not a sum: a total of it is
// rounded once from the exact average over its own interval.
const (
	placesBill       = 2 // USD on a bill: summary, budget
	placesHourly     = 6 // USD per hour or bucket: analytics, export
	placesCPUSeconds = 6
	placesCPUHours   = 6
	placesGBHours    = 6 // memoryGbHours, storageGbHours
	placesEgressGB   = 9
	placesRequests   = 0
	placesTasks      = 4
	placesPercent    = 1
)

var secondsPerHour = decimal.NewFromInt(3600)

// shownCost is a cost breakdown as shown: each resource rounded once to places.
type shownCost struct {
	places                                        int32
	compute, memory, bandwidth, requests, storage decimal.Decimal
}

func showCost(c query.Cost, places int32) shownCost {
	return shownCost{places: places, compute: c.Compute.Round(places), memory: c.Memory.Round(places),
		bandwidth: c.Bandwidth.Round(places), requests: c.Requests.Round(places), storage: c.Storage.Round(places)}
}

// add sums shown parts (no rounding: they are rounded already).
func (s shownCost) add(o shownCost) shownCost {
	return shownCost{places: max(s.places, o.places), compute: s.compute.Add(o.compute), memory: s.memory.Add(o.memory),
		bandwidth: s.bandwidth.Add(o.bandwidth), requests: s.requests.Add(o.requests), storage: s.storage.Add(o.storage)}
}

// total is the sum of the shown parts.
func (s shownCost) total() decimal.Decimal {
	return s.compute.Add(s.memory).Add(s.bandwidth).Add(s.requests).Add(s.storage)
}

func (s shownCost) json() costJSON {
	p := s.places
	return costJSON{Compute: s.compute.StringFixed(p), Memory: s.memory.StringFixed(p), Bandwidth: s.bandwidth.StringFixed(p),
		Requests: s.requests.StringFixed(p), Storage: s.storage.StringFixed(p), Total: s.total().StringFixed(p)}
}

// shownMetrics are usage quantities as shown: each rounded once to its field's precision.
type shownMetrics struct {
	cpuSeconds, cpuHours, memory, tasks, egress, requests, storage decimal.Decimal
}

func showMetrics(a *query.Amounts, start, end, now time.Time) shownMetrics {
	// Each quantity rounded once from the exact quanta (Amounts.Quo: integer arithmetic where it
	// fits an int64, exact decimals otherwise).
	return shownMetrics{
		cpuSeconds: a.Round(query.CPUSeconds, placesCPUSeconds),
		cpuHours:   a.Quo(query.CPUSeconds, 3600, placesCPUHours),
		memory:     a.Round(query.MemoryGBHours, placesGBHours),
		tasks:      query.AverageTasks(a, start, end, now).Round(placesTasks),
		egress:     a.Quo(query.EgressBytes, series.GiB, placesEgressGB),
		requests:   a.Round(query.Requests, placesRequests),
		storage:    a.Round(query.StorageGBHours, placesGBHours),
	}
}

// add sums the shown quantities of parts over the same interval (projects of one bucket):
// the average task count of a sum of projects is the sum of their averages.
func (s shownMetrics) add(o shownMetrics) shownMetrics {
	return shownMetrics{cpuSeconds: s.cpuSeconds.Add(o.cpuSeconds), cpuHours: s.cpuHours.Add(o.cpuHours), memory: s.memory.Add(o.memory),
		tasks: s.tasks.Add(o.tasks), egress: s.egress.Add(o.egress), requests: s.requests.Add(o.requests), storage: s.storage.Add(o.storage)}
}

func (s shownMetrics) json() metricsJSON {
	return metricsJSON{
		CPUSeconds: numFixed(s.cpuSeconds, placesCPUSeconds), CPUHours: numFixed(s.cpuHours, placesCPUHours),
		MemoryGBHours: numFixed(s.memory, placesGBHours), ContainerInstances: numFixed(s.tasks, placesTasks),
		EgressGB: numFixed(s.egress, placesEgressGB), Requests: numFixed(s.requests, placesRequests),
		StorageGBHours: numFixed(s.storage, placesGBHours),
	}
}
