package simaws

import (
	"sort"
	"strings"
	"time"
)

// mix is splitmix64's finaliser: a cheap, well-distributed hash of x.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// minuteData is the state of one service during one minute. Every field is an integer, so sums
// over minutes are exact in float64.
type minuteData struct {
	tasks    int64 // running tasks
	cpuUsed  int64 // CPU units used, summed over tasks
	memUsed  int64 // MiB used, summed over tasks
	txRate   int64 // bytes/second sent, summed over tasks
	requests int64 // ALB requests in the minute
}

// minute computes the data of service i for the minute starting at unix minute m.
func (s *Sim) minute(i int, m int64) minuteData {
	sv := &s.svc[i]
	h := mix(sv.seed ^ uint64(m))
	var d minuteData
	switch {
	case sv.stretchy && mix(sv.seed^0xabcdef^uint64(floorDiv(m, 180)))%3 == 0:
		// a three-hour stretch scaled to zero
	case (h>>10)%37 == 0:
		// an isolated minute with no task
	default:
		t := sv.baseTasks + int64((h>>20)%3) - 1
		if hod := floorMod(floorDiv(m, 60), 24); hod >= 8 && hod < 20 {
			t++ // busier during the working day (UTC)
		}
		d.tasks = min(max(t, 0), 6) * s.spikeFactor(i, m)
	}
	if d.tasks == 0 {
		return d
	}
	cpuPct := 5 + int64((h>>32)%91)
	memPct := 20 + int64((h>>40)%70)
	if sv.oversized {
		cpuPct, memPct = 3+int64((h>>32)%10), 8+int64((h>>40)%13)
	}
	d.cpuUsed = d.tasks * sv.cpu * cpuPct / 100
	d.memUsed = d.tasks * sv.mem * memPct / 100
	h2 := mix(h)
	d.txRate = d.tasks * (1000 + int64(h2%500000))
	if sv.hasTG {
		d.requests = d.tasks * int64((h2>>32)%600)
	}
	return d
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func floorMod(a, b int64) int64 { return a - floorDiv(a, b)*b }

// metricKind identifies one CloudWatch metric of a service.
type metricKind int

const (
	mCPUReserved metricKind = iota
	mCPUUtilized
	mMemoryReserved
	mMemoryUtilized
	mNetworkTxBytes
	mRunningTaskCount
	mRequestCount
	numKinds
)

var kindNames = [numKinds]string{
	"CpuReserved", "CpuUtilized", "MemoryReserved", "MemoryUtilized",
	"NetworkTxBytes", "RunningTaskCount", "RequestCount",
}

// sample is the CloudWatch statistic set of one metric for one minute.
type sample struct {
	sum, count, min, max float64
}

// value returns the statistic set of metric k of service i for minute d, and whether
// CloudWatch has a datapoint at all. Container Insights publishes nothing for a minute without
// tasks except RunningTaskCount 0; each task reports once per minute.
func (s *Sim) value(i int, k metricKind, d minuteData) (sample, bool) {
	sv := &s.svc[i]
	n := float64(d.tasks)
	var total int64
	switch k {
	case mRunningTaskCount:
		return sample{sum: n, count: 1, min: n, max: n}, true
	case mRequestCount:
		if !sv.hasTG || d.tasks == 0 {
			return sample{}, false
		}
		v := float64(d.requests)
		return sample{sum: v, count: 1, min: v, max: v}, true
	case mCPUReserved:
		total = d.tasks * sv.cpu
	case mCPUUtilized:
		total = d.cpuUsed
	case mMemoryReserved:
		total = d.tasks * sv.mem
	case mMemoryUtilized:
		total = d.memUsed
	case mNetworkTxBytes:
		total = d.txRate
	}
	if d.tasks == 0 {
		return sample{}, false
	}
	v := float64(total)
	return sample{sum: v, count: n, min: v / n, max: v / n}, true
}

// metricRef points a CloudWatch metric identity at a service and metric.
type metricRef struct {
	svc  int
	kind metricKind
}

type listedMetric struct {
	namespace, name string
	dims            [][2]string
	ref             metricRef
}

// metricKey is the identity of a metric: namespace, name and the sorted set of dimensions.
func metricKey(namespace, name string, dims [][2]string) string {
	d := append([][2]string(nil), dims...)
	sort.Slice(d, func(a, b int) bool { return d[a][0] < d[b][0] })
	var b strings.Builder
	b.WriteString(namespace)
	b.WriteByte(0)
	b.WriteString(name)
	for _, kv := range d {
		b.WriteByte(0)
		b.WriteString(kv[0])
		b.WriteByte('=')
		b.WriteString(kv[1])
	}
	return b.String()
}

func (s *Sim) indexMetrics() {
	for i, svc := range s.services {
		dims := [][2]string{{"ClusterName", svc.Cluster}, {"ServiceName", svc.Name}}
		for k := mCPUReserved; k <= mRunningTaskCount; k++ {
			lm := listedMetric{nsContainerInsights, kindNames[k], dims, metricRef{i, k}}
			s.listed = append(s.listed, lm)
			s.byKey[metricKey(lm.namespace, lm.name, lm.dims)] = lm.ref
		}
	}
	for i, svc := range s.services {
		if !s.svc[i].hasTG {
			continue
		}
		dims := [][2]string{{"TargetGroup", s.svc[i].tgSuffix}, {"LoadBalancer", svc.LoadBalancer}}
		lm := listedMetric{nsALB, kindNames[mRequestCount], dims, metricRef{i, mRequestCount}}
		s.listed = append(s.listed, lm)
		s.byKey[metricKey(lm.namespace, lm.name, lm.dims)] = lm.ref
	}
}

// seriesKind maps a product series name to its metric.
func seriesKind(series string) (metricKind, bool) {
	switch series {
	case SeriesCPUSeconds:
		return mCPUReserved, true
	case SeriesCPUUsedSeconds:
		return mCPUUtilized, true
	case SeriesMemoryGBHours:
		return mMemoryReserved, true
	case SeriesMemoryUsedGBHours:
		return mMemoryUtilized, true
	case SeriesRunningTasks:
		return mRunningTaskCount, true
	case SeriesEgressBytes:
		return mNetworkTxBytes, true
	case SeriesRequests:
		return mRequestCount, true
	}
	return 0, false
}

// Truth returns the exact usage of one service for one series, in the product's stored units,
// summed over the 1-minute periods whose start lies in [from, to) (both truncated to the minute)
// and that have ended by Now(). Units: cpu series in vCPU-seconds (CpuReserved/CpuUtilized Sum ×
// 60 / 1024 per minute), memory series in GB-hours (MiB Sum / 1024 / 60 per minute),
// running tasks in task-minutes (the per-minute counts summed), egress in bytes (NetworkTxBytes
// Sum × 60), requests as the ALB RequestCount Sum. Fault settings never change Truth. An unknown
// service or series yields 0.
func (s *Sim) Truth(svc Service, series string, from, to time.Time) float64 {
	total := float64(s.RawTruth(svc, series, from, to))
	switch k, _ := seriesKind(series); k {
	case mCPUReserved, mCPUUtilized:
		return total * 60 / 1024
	case mMemoryReserved, mMemoryUtilized:
		return total / 1024 / 60
	case mNetworkTxBytes:
		return total * 60
	}
	return total
}

// RawTruth is Truth before the unit conversion, as an exact integer: the sum of CloudWatch's
// per-minute Sums (CPU units, MiB, bytes per second, requests) or of the per-minute running
// task counts, over the same minutes as Truth. Every per-minute Sum is an integer, so this is
// the ground truth in whole CloudWatch units (CPU-unit-minutes, MiB-minutes, ...).
func (s *Sim) RawTruth(svc Service, series string, from, to time.Time) int64 {
	k, ok := seriesKind(series)
	if !ok {
		return 0
	}
	i := s.serviceIndex(svc)
	if i < 0 {
		return 0
	}
	lo := floorDiv(from.Unix(), 60)
	hi := floorDiv(to.Unix(), 60)
	// Minutes that have ended by Now(): start + 60s <= now.
	if last := floorDiv(s.now().Unix(), 60); hi > last {
		hi = last
	}
	var total int64
	for m := lo; m < hi; m++ {
		if v, ok := s.value(i, k, s.minute(i, m)); ok {
			total += int64(v.sum)
		}
	}
	return total
}

// ProjectTruth is Truth summed over the services tagged with project ("" matches nothing).
func (s *Sim) ProjectTruth(project, series string, from, to time.Time) float64 {
	var total float64
	for _, svc := range s.services {
		if project != "" && svc.Project == project {
			total += s.Truth(svc, series, from, to)
		}
	}
	return total
}

func (s *Sim) serviceIndex(svc Service) int {
	for i, x := range s.services {
		if x.ARN == svc.ARN || (svc.ARN == "" && x.Cluster == svc.Cluster && x.Name == svc.Name) {
			return i
		}
	}
	return -1
}
