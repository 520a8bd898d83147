package simaws

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

// CloudWatch limits and retention, as documented for GetMetricData.
const (
	maxQueries         = 500
	maxDatapoints      = 100800
	listMetricsPage    = 500
	retention1Minute   = 15 * 24 * time.Hour
	retention5Minutes  = 63 * 24 * time.Hour
	retention1Hour     = 455 * 24 * time.Hour
	statusComplete     = "Complete"
	statusPartialData  = "PartialData"
	scanAscending      = "TimestampAscending"
	scanDescending     = "TimestampDescending"
	gmdTokenPrefix     = "gmd1:"
	listMetricsTokenPf = "lm1:"
)

// gmdQuery is one decoded MetricDataQuery.
type gmdQuery struct {
	id, label  string
	returnData bool
	ref        metricRef
	found      bool
	period     int64 // seconds
	stat       string
}

// getMetricData serves GetMetricData for the CBOR request body and returns the CBOR response.
func (s *Sim) getMetricData(body []byte) ([]byte, *apiError) {
	in, err := decodeCBORMap(body)
	if err != nil {
		return nil, errSerialization(fmt.Errorf("decode GetMetricData body: %w", err))
	}
	rawQueries, _ := in["MetricDataQueries"].(cbor.List)
	if len(rawQueries) == 0 {
		return nil, errValidation("1 validation error detected: Value null at 'metricDataQueries' failed to satisfy constraint: Member must not be null")
	}
	if len(rawQueries) > maxQueries {
		return nil, errValidation(fmt.Sprintf("The collection MetricDataQueries must not have a size greater than %d.", maxQueries))
	}
	start, err1 := cborTime(in, "StartTime")
	end, err2 := cborTime(in, "EndTime")
	if err1 != nil || err2 != nil {
		return nil, errValidation("StartTime and EndTime are required timestamps")
	}
	if !start.Before(end) {
		return nil, errInvalidParameter("The parameter StartTime must be less than the parameter EndTime.")
	}
	scan := scanDescending
	if v, ok := in["ScanBy"].(cbor.String); ok && v != "" {
		if v != scanAscending && v != scanDescending {
			return nil, errValidation(fmt.Sprintf("ScanBy %q must be TimestampDescending or TimestampAscending", string(v)))
		}
		scan = string(v)
	}
	limit := maxDatapoints
	if v, ok := in["MaxDatapoints"]; ok {
		n, err := cbor.AsInt64(v)
		if err != nil || n < 0 {
			return nil, errValidation("MaxDatapoints must be a non-negative integer")
		}
		if n > 0 && n < int64(limit) {
			limit = int(n)
		}
	}

	queries := make([]gmdQuery, len(rawQueries))
	seen := make(map[string]bool, len(rawQueries))
	for i, rq := range rawQueries {
		q, apiErr := s.decodeQuery(rq)
		if apiErr != nil {
			return nil, apiErr
		}
		if seen[q.id] {
			return nil, errValidation(fmt.Sprintf("The values for parameter id in MetricDataQueries are not unique: %q", q.id))
		}
		seen[q.id] = true
		queries[i] = q
	}

	startQ, startP, resume := 0, int64(0), false
	if v, ok := in["NextToken"].(cbor.String); ok && v != "" {
		q, p, err := parseGMDToken(string(v))
		if err != nil || q >= len(queries) || p%queries[q].period != 0 {
			return nil, errNextToken()
		}
		startQ, startP, resume = q, p, true
	}

	f := s.currentFaults()
	now := s.now()
	w := window{nowNs: now.UnixNano(), lateBy: int64(f.LateBy), partial: int64(f.Partial)}

	results := cbor.List{}
	emitted := 0
	var nextToken string
	var ts, vals []byte
	for qi := startQ; qi < len(queries) && nextToken == ""; qi++ {
		q := &queries[qi]
		if !q.returnData {
			continue
		}
		ts, vals = ts[:0], vals[:0]
		n := 0
		if q.found {
			lo, hi, ok := w.periodRange(start.Unix(), end.Unix(), q.period)
			if ok {
				step, p := q.period, lo
				if scan == scanDescending {
					step, p = -step, hi
				}
				if resume && qi == startQ {
					p = startP
				}
				for ; p >= lo && p <= hi; p += step {
					v, ok := s.aggregate(q.ref, p, q.period, q.stat, w)
					if !ok {
						continue
					}
					if emitted == limit {
						nextToken = gmdToken(qi, p)
						break
					}
					ts = appendTime(ts, p)
					vals = appendFloat64(vals, v)
					n++
					emitted++
				}
			}
		}
		if nextToken != "" && n == 0 {
			break // nothing of this query on this page: it starts the next one
		}
		status := statusComplete
		if nextToken != "" {
			status = statusPartialData
		}
		label := q.label
		if label == "" {
			label = kindNames[q.ref.kind]
			if !q.found {
				label = q.id
			}
		}
		results = append(results, cbor.Map{
			"Id":         cbor.String(q.id),
			"Label":      cbor.String(label),
			"StatusCode": cbor.String(status),
			"Timestamps": cbor.EncodeRaw(appendHead(nil, 4, uint64(n), ts)),
			"Values":     cbor.EncodeRaw(appendHead(nil, 4, uint64(n), vals)),
			"Messages":   cbor.List{},
		})
	}
	out := cbor.Map{"MetricDataResults": results, "Messages": cbor.List{}}
	if nextToken != "" {
		out["NextToken"] = cbor.String(nextToken)
	}
	return cbor.Encode(out), nil
}

// decodeQuery validates one MetricDataQuery and resolves its metric.
func (s *Sim) decodeQuery(v cbor.Value) (gmdQuery, *apiError) {
	m, ok := v.(cbor.Map)
	if !ok {
		return gmdQuery{}, errSerialization(fmt.Errorf("MetricDataQuery is a %T, not a map", v))
	}
	q := gmdQuery{returnData: true}
	q.id = cborString(m, "Id")
	if q.id == "" {
		return q, errValidation("MetricDataQueries: every query needs an Id")
	}
	q.label = cborString(m, "Label")
	if b, ok := m["ReturnData"].(cbor.Bool); ok {
		q.returnData = bool(b)
	}
	if cborString(m, "Expression") != "" {
		return q, errValidation(fmt.Sprintf("query %q: metric math and Metrics Insights expressions are not supported by the simulated endpoint", q.id))
	}
	ms, ok := m["MetricStat"].(cbor.Map)
	if !ok {
		return q, errValidation(fmt.Sprintf("query %q: exactly one of Expression and MetricStat must be given", q.id))
	}
	metric, _ := ms["Metric"].(cbor.Map)
	period, err := cbor.AsInt64(ms["Period"])
	if err != nil || period < 60 || period%60 != 0 {
		return q, errInvalidParameter(fmt.Sprintf("query %q: The parameter Period must be a multiple of 60 and at least 60, got %v", q.id, ms["Period"]))
	}
	q.period = period
	q.stat = cborString(ms, "Stat")
	switch q.stat {
	case "Sum", "Average", "Minimum", "Maximum", "SampleCount":
	default:
		return q, errInvalidParameter(fmt.Sprintf("query %q: Stat %q is not supported by the simulated endpoint (use Sum, Average, Minimum, Maximum or SampleCount)", q.id, q.stat))
	}
	var dims [][2]string
	rawDims, _ := metric["Dimensions"].(cbor.List)
	for _, d := range rawDims {
		dm, _ := d.(cbor.Map)
		dims = append(dims, [2]string{cborString(dm, "Name"), cborString(dm, "Value")})
	}
	q.ref, q.found = s.byKey[metricKey(cborString(metric, "Namespace"), cborString(metric, "MetricName"), dims)]
	return q, nil
}

// window is the visibility of data at one instant, with the late-data faults applied.
type window struct {
	nowNs, lateBy, partial int64
}

// periodRange returns the first and last period start (inclusive, multiples of period) inside
// [start, end) for which any data can be served: ended and visible, and young enough for the
// retention of that period.
func (w window) periodRange(start, end, period int64) (lo, hi int64, ok bool) {
	lo = floorDiv(start, period) * period
	hi = floorDiv(end-1, period) * period
	// The newest minute that may be visible starts at now-LateBy-60s.
	newest := floorDiv(w.nowNs-w.lateBy, int64(time.Second)) - 60
	hi = min(hi, floorDiv(newest, period)*period)
	ret := retention1Minute
	switch {
	case period%3600 == 0:
		ret = retention1Hour
	case period%300 == 0:
		ret = retention5Minutes
	}
	oldest := floorDiv(w.nowNs-int64(ret), int64(time.Second))
	if first := -floorDiv(-oldest, period) * period; first > lo {
		lo = first
	}
	return lo, hi, lo <= hi
}

// aggregate computes one statistic of a metric over the period starting at p, from the visible
// 1-minute samples. It reports false when the period has no datapoint.
func (s *Sim) aggregate(ref metricRef, p, period int64, stat string, w window) (float64, bool) {
	var acc sample
	n := 0
	m0 := p / 60
	for m := m0; m < m0+period/60; m++ {
		endNs := (m*60 + 60) * int64(time.Second)
		if endNs+w.lateBy > w.nowNs {
			break // this and all later minutes are not visible yet
		}
		v, ok := s.value(ref.svc, ref.kind, s.minute(ref.svc, m))
		if !ok {
			continue
		}
		if w.nowNs-endNs < w.partial {
			v.sum, v.min, v.max = partialOf(ref.kind, v.sum), partialOf(ref.kind, v.min), partialOf(ref.kind, v.max)
		}
		if n == 0 {
			acc = v
		} else {
			acc.sum += v.sum
			acc.count += v.count
			acc.min = min(acc.min, v.min)
			acc.max = max(acc.max, v.max)
		}
		n++
	}
	if n == 0 {
		return 0, false
	}
	switch stat {
	case "Sum":
		return acc.sum, true
	case "Average":
		return acc.sum / acc.count, true
	case "Minimum":
		return acc.min, true
	case "Maximum":
		return acc.max, true
	default: // SampleCount
		return acc.count, true
	}
}

func gmdToken(q int, p int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(gmdTokenPrefix + strconv.Itoa(q) + ":" + strconv.FormatInt(p, 10)))
}

func parseGMDToken(tok string) (int, int64, error) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, 0, err
	}
	rest, ok := strings.CutPrefix(string(raw), gmdTokenPrefix)
	if !ok {
		return 0, 0, fmt.Errorf("token has no %q prefix", gmdTokenPrefix)
	}
	qs, ps, _ := strings.Cut(rest, ":")
	q, err := strconv.Atoi(qs)
	if err != nil || q < 0 {
		return 0, 0, fmt.Errorf("token query index %q: %w", qs, err)
	}
	p, err := strconv.ParseInt(ps, 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("token period %q: %w", ps, err)
	}
	return q, p, nil
}

// listMetrics serves ListMetrics for the CBOR request body.
func (s *Sim) listMetrics(body []byte) ([]byte, *apiError) {
	in, err := decodeCBORMap(body)
	if err != nil {
		return nil, errSerialization(fmt.Errorf("decode ListMetrics body: %w", err))
	}
	namespace := cborString(in, "Namespace")
	name := cborString(in, "MetricName")
	type filter struct {
		name, value string
		hasValue    bool
	}
	var filters []filter
	rawDims, _ := in["Dimensions"].(cbor.List)
	if len(rawDims) > 10 {
		return nil, errValidation("The collection Dimensions must not have a size greater than 10.")
	}
	for _, d := range rawDims {
		dm, _ := d.(cbor.Map)
		v, has := dm["Value"].(cbor.String)
		filters = append(filters, filter{cborString(dm, "Name"), string(v), has})
	}
	offset := 0
	if tok := cborString(in, "NextToken"); tok != "" {
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		rest, ok := strings.CutPrefix(string(raw), listMetricsTokenPf)
		n, err2 := strconv.Atoi(rest)
		if err != nil || !ok || err2 != nil || n < 0 {
			return nil, errNextToken()
		}
		offset = n
	}
	metrics := cbor.List{}
	matched := 0
	next := ""
	for _, lm := range s.listed {
		if (namespace != "" && lm.namespace != namespace) || (name != "" && lm.name != name) {
			continue
		}
		ok := true
		for _, f := range filters {
			found := false
			for _, kv := range lm.dims {
				if kv[0] == f.name && (!f.hasValue || kv[1] == f.value) {
					found = true
					break
				}
			}
			if !found {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		matched++
		if matched <= offset {
			continue
		}
		if len(metrics) == listMetricsPage {
			next = base64.RawURLEncoding.EncodeToString([]byte(listMetricsTokenPf + strconv.Itoa(offset+listMetricsPage)))
			break
		}
		dims := make(cbor.List, len(lm.dims))
		for j, kv := range lm.dims {
			dims[j] = cbor.Map{"Name": cbor.String(kv[0]), "Value": cbor.String(kv[1])}
		}
		metrics = append(metrics, cbor.Map{
			"Namespace":  cbor.String(lm.namespace),
			"MetricName": cbor.String(lm.name),
			"Dimensions": dims,
		})
	}
	out := cbor.Map{"Metrics": metrics}
	if next != "" {
		out["NextToken"] = cbor.String(next)
	}
	return cbor.Encode(out), nil
}

// CBOR helpers.

func decodeCBORMap(body []byte) (cbor.Map, error) {
	if len(body) == 0 {
		return cbor.Map{}, nil
	}
	v, err := cbor.Decode(body)
	if err != nil {
		return nil, err
	}
	m, ok := v.(cbor.Map)
	if !ok {
		return nil, fmt.Errorf("body is a %T, not a CBOR map", v)
	}
	return m, nil
}

func cborString(m cbor.Map, key string) string {
	s, _ := m[key].(cbor.String)
	return string(s)
}

func cborTime(m cbor.Map, key string) (time.Time, error) {
	v, ok := m[key]
	if !ok {
		return time.Time{}, fmt.Errorf("%s is missing", key)
	}
	return cbor.AsTime(v)
}

// appendHead appends a CBOR head of the given major type and argument, then tail.
func appendHead(b []byte, major byte, n uint64, tail []byte) []byte {
	m := major << 5
	switch {
	case n < 24:
		b = append(b, m|byte(n))
	case n <= math.MaxUint8:
		b = append(b, m|24, byte(n))
	case n <= math.MaxUint16:
		b = append(b, m|25)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	case n <= math.MaxUint32:
		b = append(b, m|26)
		b = binary.BigEndian.AppendUint32(b, uint32(n))
	default:
		b = append(b, m|27)
		b = binary.BigEndian.AppendUint64(b, n)
	}
	return append(b, tail...)
}

// appendTime appends a timestamp as CBOR tag 1 (epoch seconds) around an integer.
func appendTime(b []byte, unix int64) []byte {
	b = appendHead(b, 6, 1, nil)
	if unix < 0 {
		return appendHead(b, 1, uint64(-unix-1), nil)
	}
	return appendHead(b, 0, uint64(unix), nil)
}

func appendFloat64(b []byte, v float64) []byte {
	b = append(b, 7<<5|27)
	return binary.BigEndian.AppendUint64(b, math.Float64bits(v))
}

// partialOf is about half of a minute's value, as CloudWatch shows it while only some of the
// minute's datapoints have arrived: still a whole number of the metric's unit (CPU units, MiB,
// requests; bytes for NetworkTxBytes, whose value is bytes per second over 60 s), so partial
// values stay on the grid the collector stores. RunningTaskCount (an average) is halved.
func partialOf(k metricKind, v float64) float64 {
	switch k {
	case mRunningTaskCount:
		return v / 2
	case mNetworkTxBytes:
		return math.Floor(v*60/2) / 60
	default:
		return math.Floor(v / 2)
	}
}
