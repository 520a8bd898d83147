package api

import (
	"encoding/json"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"unicode/utf8"
)

// The analytics answer is written by hand: the fields, order and escaping of analyticsJSON
// (which documents the shape; the CLI decodes with it) as encoding/json writes them, without
// reflection or a MarshalJSON per figure, whose output encoding/json validates and copies once
// more. A month of 1,000 projects is 31,000 buckets of 13 figures each.
// TestAnalyticsJSONIsEncodingJSON holds the two byte-equal.

// jsonBuf appends JSON.
type jsonBuf struct{ b []byte }

// str appends s as a JSON string, escaped as encoding/json escapes it (HTML characters too).
func (j *jsonBuf) str(s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= utf8.RuneSelf {
			q, _ := json.Marshal(s) // a string always marshals
			j.b = append(j.b, q...)
			return
		}
	}
	j.b = append(j.b, '"')
	j.b = append(j.b, s...)
	j.b = append(j.b, '"')
}

// key appends "k": after a comma unless first.
func (j *jsonBuf) key(k string, first bool) {
	if !first {
		j.b = append(j.b, ',')
	}
	j.b = append(j.b, '"')
	j.b = append(j.b, k...)
	j.b = append(j.b, '"', ':')
}

// field appends "k":"v" (a JSON string) after a comma unless first.
func (j *jsonBuf) field(k, v string, first bool) {
	j.key(k, first)
	j.str(v)
}

// figure appends figure i of f, quoted (money) or as a JSON number.
func (j *jsonBuf) figure(f *figures, i int, places *[7]int32, quoted bool) {
	if quoted {
		j.b = append(j.b, '"')
	}
	if f.d != nil {
		j.b = append(j.b, f.d[i].StringFixed(places[i])...)
	} else {
		j.b = appendFixed(j.b, f.v[i], int(places[i]))
	}
	if quoted {
		j.b = append(j.b, '"')
	}
}

// metricsJSON's fields, in order.
var metricKeys = [...]struct {
	key string
	i   int
}{
	{"cpuSeconds", mCPUSeconds}, {"cpuHours", mCPUHours}, {"memoryGbHours", mMemory}, {"containerInstances", mTasks},
	{"egressGB", mEgress}, {"requests", mRequests}, {"storageGbHours", mStorage},
}

// costJSON's fields, in order (the total last).
var costKeys = [...]string{"compute", "memory", "bandwidth", "requests", "storage"}

// metrics appends the fields of metricsJSON, the first after a comma unless first.
func (j *jsonBuf) metrics(m *shownMetrics, first bool) {
	for n, k := range metricKeys {
		j.key(k.key, first && n == 0)
		j.figure(&m.f, k.i, &metricPlaces, false)
	}
}

// cost appends a costJSON object.
func (j *jsonBuf) cost(c *shownCost) {
	j.b = append(j.b, '{')
	for i, k := range costKeys {
		j.key(k, i == 0)
		j.figure(&c.f, i, c.pl(), true)
	}
	j.key("total", false)
	t := c.totalFigure()
	j.figure(&t, 0, c.pl(), true)
	j.b = append(j.b, '}')
}

// shownBucket is one bucket of the analytics answer as shown.
type shownBucket struct {
	m shownMetrics
	c shownCost
}

// bucketHeads returns, per bucket, the JSON that opens it: {"period":…,"start":…,"end":…
// (the same for every project's bucket i, so written once per answer).
func bucketHeads(times [][3]string) [][]byte {
	out := make([][]byte, len(times))
	for i, t := range times {
		j := jsonBuf{b: make([]byte, 0, 96)}
		j.b = append(j.b, '{')
		j.field("period", t[0], true)
		j.field("start", t[1], false)
		j.field("end", t[2], false)
		out[i] = j.b
	}
	return out
}

// buckets appends an array of analyticsBucketJSON; heads[i] opens bucket i (bucketHeads).
func (j *jsonBuf) buckets(heads [][]byte, d []shownBucket) {
	j.b = append(j.b, '[')
	for i := range d {
		if i > 0 {
			j.b = append(j.b, ',')
		}
		j.b = append(j.b, heads[i]...)
		j.metrics(&d[i].m, false)
		j.key("cost", false)
		j.cost(&d[i].c)
		j.b = append(j.b, '}')
	}
	j.b = append(j.b, ']')
}

// analyticsProject is one project of the answer: its buckets, and its deployments' when asked.
type analyticsProject struct {
	id, name    string
	data        []shownBucket
	deployments []analyticsDeployment
}

type analyticsDeployment struct {
	name string
	data []shownBucket
}

// analyticsAnswer is the analytics answer as shown, written as analyticsJSON.
type analyticsAnswer struct {
	projectID                       *string
	startDate, endDate, groupBy, tz string
	times                           [][3]string
	data                            []shownBucket
	totals                          shownBucket
	projects                        []analyticsProject
}

// renderParts is how many parts, one per core, an answer of the given number of buckets is
// shown and written in: one below 20,000 buckets (a few milliseconds of work).
func renderParts(buckets int) int {
	if buckets < 20_000 {
		return 1
	}
	return max(1, runtime.GOMAXPROCS(0))
}

// appendJSON appends the whole answer (the parts of appendParts, in order).
func (a *analyticsAnswer) appendJSON(b []byte) []byte {
	for _, p := range a.appendParts() {
		b = append(b, p...)
	}
	return b
}

// appendParts returns the answer as consecutive byte slices: the head (everything up to the
// projects' array) and the projects in renderParts parts written in parallel.
func (a *analyticsAnswer) appendParts() [][]byte {
	// About 560 bytes a bucket.
	perBucket := 560 * max(len(a.data), 1)
	j := jsonBuf{b: getBuf(4096 + perBucket)}
	j.b = append(j.b, '{')
	j.key("projectId", true)
	if a.projectID == nil {
		j.b = append(j.b, "null"...)
	} else {
		j.str(*a.projectID)
	}
	j.field("startDate", a.startDate, false)
	j.field("endDate", a.endDate, false)
	j.field("groupBy", a.groupBy, false)
	j.field("tz", a.tz, false)
	j.key("data", false)
	heads := bucketHeads(a.times)
	j.buckets(heads, a.data)
	j.key("totals", false)
	j.b = append(j.b, '{')
	j.metrics(&a.totals.m, true)
	j.key("cost", false)
	j.cost(&a.totals.c)
	j.b = append(j.b, '}')
	j.key("projects", false)
	j.b = append(j.b, '[')

	parts := make([][]byte, 1+renderParts(len(a.projects)*len(a.data)))
	parts[0] = j.b
	var wg sync.WaitGroup
	np := len(parts) - 1
	for pi := range np {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lo, hi := pi*len(a.projects)/np, (pi+1)*len(a.projects)/np
			n := 0
			for i := lo; i < hi; i++ {
				n += 1 + len(a.projects[i].deployments)
			}
			pj := jsonBuf{b: getBuf(64 + n*perBucket)}
			for i := lo; i < hi; i++ {
				if i > 0 {
					pj.b = append(pj.b, ',')
				}
				pj.project(heads, &a.projects[i])
			}
			if pi == np-1 {
				pj.b = append(pj.b, ']', '}', '\n') // as json.Encoder ends a value
			}
			parts[1+pi] = pj.b
		}()
	}
	wg.Wait()
	return parts
}

// project appends one analyticsProjectJSON.
func (j *jsonBuf) project(heads [][]byte, p *analyticsProject) {
	j.b = append(j.b, '{')
	j.field("projectId", p.id, true)
	j.field("projectName", p.name, false)
	j.key("data", false)
	j.buckets(heads, p.data)
	if len(p.deployments) > 0 { // omitempty
		j.key("deployments", false)
		j.b = append(j.b, '[')
		for k := range p.deployments {
			if k > 0 {
				j.b = append(j.b, ',')
			}
			j.b = append(j.b, '{')
			j.field("deployment", p.deployments[k].name, true)
			j.key("data", false)
			j.buckets(heads, p.deployments[k].data)
			j.b = append(j.b, '}')
		}
		j.b = append(j.b, ']')
	}
	j.b = append(j.b, '}')
}

// write writes the answer with status 200 and returns the write's error (the client gone).
func (a *analyticsAnswer) write(w http.ResponseWriter) error {
	parts := a.appendParts()
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(n))
	w.WriteHeader(http.StatusOK)
	defer putBufs(parts)
	for _, p := range parts {
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// bufPool keeps the buffers of written answers: a month of 1,000 projects by hour is 13 MB of
// JSON, which would otherwise be allocated (and collected) on every call.
var bufPool sync.Pool

// getBuf returns an empty buffer of at least capacity n.
func getBuf(n int) []byte {
	if b, ok := bufPool.Get().(*[]byte); ok && cap(*b) >= n {
		return (*b)[:0]
	} else if ok {
		bufPool.Put(b)
	}
	return make([]byte, 0, n)
}

// putBufs returns bufs to the pool; they must not be used after.
func putBufs(bufs [][]byte) {
	for i := range bufs {
		b := bufs[i][:0]
		bufPool.Put(&b)
	}
}
