package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/bits"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sync/errgroup"

	"github.com/cygni/usage/query"
	"github.com/cygni/usage/series"
	"github.com/cygni/usage/store"
)

// exportColumns are the CSV header and the JSON field names of an export row, in order.
var exportColumns = []string{
	"hour", "projectId", "projectName", "deployment",
	"cpuSeconds", "memoryGbHours", "containerInstances", "egressGB", "requests", "storageGbHours",
	"computeCost", "memoryCost", "bandwidthCost", "requestsCost", "storageCost", "totalCost",
}

// exportChunk and exportBatch bound what is read at once: up to 31 days of up to 12 projects,
// so memory stays flat whatever the range and the number of projects (exportRows holds at most
// three such reads: one being written, one read ahead, one being read).
const (
	exportChunk = 31 * 24 * time.Hour
	exportBatch = 12
)

// exportFlushRows is how many rows are written between flushes to the client.
const exportFlushRows = 2000

// exportEncoder writes rows as CSV (RFC 4180, header first) or as one JSON array, streaming.
// A row is rendered field by field into one reused buffer: no strings, no decimals per row.
type exportEncoder struct {
	w       http.ResponseWriter
	bw      *bufio.Writer
	json    bool
	rows    int
	started bool
	// The row being built: field i is fields[ends[i-1]:ends[i]].
	fields []byte
	ends   [16]int
	nf     int
	buf    []byte
}

func newExportEncoder(w http.ResponseWriter, format string) *exportEncoder {
	e := &exportEncoder{w: w, json: format == "json"}
	if e.json {
		w.Header().Set("Content-Type", "application/json")
	} else {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	}
	e.bw = bufio.NewWriterSize(w, 64<<10)
	return e
}

func (e *exportEncoder) begin() error {
	if e.started {
		return nil
	}
	e.started = true
	if e.json {
		_, err := e.bw.WriteString("[")
		return err
	}
	b := e.buf[:0]
	for i, c := range exportColumns {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendCSVField(b, c)
	}
	e.buf = append(b, '\n')
	_, err := e.bw.Write(e.buf)
	return err
}

// reset starts a new row.
func (e *exportEncoder) reset() { e.fields, e.nf = e.fields[:0], 0 }

// end closes the field appended since the previous one.
func (e *exportEncoder) end() { e.ends[e.nf] = len(e.fields); e.nf++ }

func (e *exportEncoder) str(s string) { e.fields = append(e.fields, s...); e.end() }

func (e *exportEncoder) field(i int) []byte {
	start := 0
	if i > 0 {
		start = e.ends[i-1]
	}
	return e.fields[start:e.ends[i]]
}

// row writes the row built since reset: len(exportColumns) fields; fields 0-3 are strings, the
// rest numbers (quoted in JSON when they are money, 10-15).
func (e *exportEncoder) row() error {
	if e.nf != len(exportColumns) {
		return fmt.Errorf("export row has %d fields, want %d", e.nf, len(exportColumns))
	}
	if err := e.begin(); err != nil {
		return err
	}
	b := e.buf[:0]
	if e.json {
		if e.rows > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n{"...)
		for i, c := range exportColumns {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendQuote(b, c)
			b = append(b, ':')
			if f := e.field(i); i < 4 {
				b = appendJSONString(b, f)
			} else if i >= 10 {
				b = append(append(append(b, '"'), f...), '"')
			} else {
				b = append(b, f...)
			}
		}
		b = append(b, '}')
	} else {
		for i := range exportColumns {
			if i > 0 {
				b = append(b, ',')
			}
			if f := e.field(i); i < 4 {
				b = appendCSVField(b, csvNeutral(string(f)))
			} else {
				b = append(b, f...)
			}
		}
		b = append(b, '\n')
	}
	e.buf = b
	if _, err := e.bw.Write(b); err != nil {
		return err
	}
	e.rows++
	if e.rows%exportFlushRows == 0 {
		return e.flush()
	}
	return nil
}

// appendCSVField appends f as encoding/csv.Writer writes it (comma separator, LF line ends).
func appendCSVField(b []byte, f string) []byte {
	if !csvNeedsQuotes(f) {
		return append(b, f...)
	}
	b = append(b, '"')
	for i := 0; i < len(f); i++ {
		if f[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, f[i])
	}
	return append(b, '"')
}

// csvNeutral defuses a text cell that a spreadsheet would run as a formula (OWASP's CSV
// injection advice): a cell starting with =, +, -, @, tab or carriage return gets a leading '.
// Only the text columns pass here; the figures are written by us and start with a digit or a
// minus sign of a number.
func csvNeutral(f string) string {
	if f != "" && strings.IndexByte("=+-@\t\r", f[0]) >= 0 {
		return "'" + f
	}
	return f
}

// appendJSONString appends s as a JSON string (RFC 8259) as encoding/json writes it: the plain
// printable ASCII of ids and most names directly, anything else (quotes, backslashes, control
// characters, HTML-significant or non-ASCII characters, invalid UTF-8) through json.Marshal.
func appendJSONString(b []byte, s []byte) []byte {
	plain := true
	for _, c := range s {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			plain = false
			break
		}
	}
	if plain {
		return append(append(append(b, '"'), s...), '"')
	}
	q, err := json.Marshal(string(s))
	if err != nil { // a string always marshals
		return append(b, `""`...)
	}
	return append(b, q...)
}

// csvNeedsQuotes is encoding/csv's rule for a comma-separated field.
func csvNeedsQuotes(f string) bool {
	if f == "" {
		return false
	}
	if f == `\.` {
		return true
	}
	for i := 0; i < len(f); i++ {
		if c := f[i]; c == '\n' || c == '\r' || c == '"' || c == ',' {
			return true
		}
	}
	r1, _ := utf8.DecodeRuneInString(f)
	return unicode.IsSpace(r1)
}

func (e *exportEncoder) flush() error {
	if err := e.bw.Flush(); err != nil {
		return err
	}
	if f, ok := e.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

func (e *exportEncoder) close() error {
	if err := e.begin(); err != nil {
		return err
	}
	if e.json {
		if _, err := e.bw.WriteString("\n]\n"); err != nil {
			return err
		}
	}
	return e.flush()
}

// exportRows writes one row per project, deployment and UTC hour that starts inside
// [from, to) and has usage; projects in order, each chunk hour by hour.
func exportRows(ctx context.Context, q UsageQuerier, ps []store.Project, from, to time.Time, e *exportEncoder) error {
	start := from.UTC().Truncate(time.Hour)
	if start.Before(from) {
		start = start.Add(time.Hour)
	}
	now := q.Now()
	// The reads, in the order the rows are written: each batch of projects, chunk by chunk.
	type read struct {
		batch  []store.Project
		bounds []time.Time
		ru     *query.Rollup
	}
	var reads []read
	for lo := 0; lo < len(ps); lo += exportBatch {
		batch := ps[lo:min(lo+exportBatch, len(ps))]
		for cs := start; cs.Before(to); cs = cs.Add(exportChunk) {
			ce := cs.Add(exportChunk)
			var bounds []time.Time
			for h := cs; h.Before(ce) && h.Before(to); h = h.Add(time.Hour) {
				bounds = append(bounds, h)
			}
			bounds = append(bounds, bounds[len(bounds)-1].Add(time.Hour))
			reads = append(reads, read{batch: batch, bounds: bounds})
		}
	}
	// One read ahead of the rows being written (both cores; at most two reads in memory).
	g, gctx := errgroup.WithContext(query.Scan(ctx))
	ready := make(chan read, 1)
	g.Go(func() error {
		defer close(ready)
		for _, rd := range reads {
			ids := make([]string, len(rd.batch))
			for i, p := range rd.batch {
				ids[i] = p.ID
			}
			ru, err := q.RollupUsage(gctx, ids, rd.bounds, query.ByDeployment)
			if err != nil {
				return err
			}
			rd.ru = ru
			select {
			case ready <- rd:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	g.Go(func() error {
		var hours []string
		for rd := range ready {
			ru, bounds := rd.ru, rd.bounds
			hours = hours[:0]
			for _, h := range bounds[:len(bounds)-1] {
				hours = append(hours, h.Format(time.RFC3339))
			}
			keys := ru.Keys()
			for _, p := range rd.batch {
				prices := ru.Prices.Of(p.ID) // the project's overrides, on the rollup's sheets
				// keys are sorted by project: this project's deployments are one run.
				from := sort.Search(len(keys), func(i int) bool { return keys[i].Project >= p.ID })
				until := from
				for until < len(keys) && keys[until].Project == p.ID {
					until++
				}
				for i := range len(bounds) - 1 {
					for _, k := range keys[from:until] {
						b := &ru.Rows[k][i]
						if b.Usage.IsZero() {
							continue
						}
						if err := exportRow(e, prices, hours[i], p, k.Deployment, b, now); err != nil {
							return err
						}
					}
				}
			}
			if err := gctx.Err(); err != nil {
				return err
			}
		}
		return nil
	})
	return g.Wait()
}

// exportRow renders one row. Every figure has the digits of the decimal rendering it replaces
// (StringFixed with the field's precision of money.go; api tests and the query package's
// Micros tests hold them equal), computed in integers.
func exportRow(e *exportEncoder, prices query.Prices, hour string, p store.Project, deployment string, b *query.Bucket, now time.Time) error {
	u := &b.Usage
	e.reset()
	e.str(hour)
	e.str(p.ID)
	e.str(p.Name)
	e.str(deployment)
	e.fields = appendQuantityFixed(e.fields, u, query.CPUSeconds, placesCPUSeconds)
	e.end()
	e.fields = appendQuantityFixed(e.fields, u, query.MemoryGBHours, placesGBHours)
	e.end()
	if t, ok := u.Quanta(query.TaskMinutes).Int64(); ok {
		e.fields = appendAverageTasks(e.fields, t, b.Start, b.End, now)
	} else {
		e.fields = append(e.fields, query.AverageTasks(u, b.Start, b.End, now).String()...)
	}
	e.end()
	if v, ok := u.Quanta(query.EgressBytes).Int64(); ok {
		e.fields = appendEgressGB(e.fields, v)
	} else {
		e.fields = append(e.fields, u.Quo(query.EgressBytes, series.GiB, 9).String()...)
	}
	e.end()
	e.fields = appendQuantityFixed(e.fields, u, query.Requests, placesRequests)
	e.end()
	e.fields = appendQuantityFixed(e.fields, u, query.StorageGBHours, placesGBHours)
	e.end()
	if b.Sheet < 0 {
		return fmt.Errorf("export hour %s of %s: no single price sheet", hour, p.ID)
	}
	// As an invoice line (money.go): each part rounded once, totalCost the sum of the parts.
	c := showBucketCost(prices, b, placesHourly)
	for i := range numCosts {
		if c.f.d == nil {
			e.fields = appendFixed(e.fields, c.f.v[i], placesHourly)
		} else {
			e.fields = append(e.fields, c.part(i)...)
		}
		e.end()
	}
	e.fields = c.appendTotal(e.fields)
	e.end()
	return e.row()
}

// appendQuantity appends u.Round(m, dec).String(), in integers when the amount fits.
// appendQuantityFixed renders metric m of u with exactly places decimals, rounded once from the
// exact quanta (Amounts.Round(m, places).StringFixed(places), in integers when they fit).
func appendQuantityFixed(b []byte, u *query.Amounts, m query.Metric, places int) []byte {
	if v, ok := u.Fixed(m, int32(places)); ok && v >= 0 {
		if places == 0 {
			return strconv.AppendInt(b, v, 10)
		}
		return appendScaledFixed(b, v, places)
	}
	return append(b, u.Round(m, int32(places)).StringFixed(int32(places))...)
}

var pow10 = [...]uint64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}

// appendScaledFixed appends v × 10^-dec (v ≥ 0) with exactly dec decimals (StringFixed).
func appendScaledFixed(b []byte, v int64, dec int) []byte {
	return appendUnsignedScaled(b, uint64(v), dec, false)
}

func appendUnsignedScaled(b []byte, u uint64, dec int, trim bool) []byte {
	ip, fp := u/pow10[dec], u%pow10[dec]
	b = strconv.AppendUint(b, ip, 10)
	if dec == 0 || trim && fp == 0 {
		return b
	}
	b = append(b, '.')
	n := len(b)
	for range dec {
		b = append(b, '0')
	}
	for i := n + dec - 1; fp > 0; i-- {
		b[i] = byte('0' + fp%10)
		fp /= 10
	}
	if trim {
		for b[len(b)-1] == '0' {
			b = b[:len(b)-1]
		}
	}
	return b
}

// appendRounded appends the sign of neg and mag × 10^-dec with exactly dec decimals; zero has
// no sign.
// appendFixed appends v × 10^-dec with exactly dec decimals.
func appendFixed(b []byte, v int64, dec int) []byte {
	mag := uint64(v)
	if v < 0 {
		mag = -mag
	}
	return appendRounded(b, v < 0, mag, dec)
}

func appendRounded(b []byte, neg bool, mag uint64, dec int) []byte {
	if neg && mag != 0 {
		b = append(b, '-')
	}
	return appendUnsignedScaled(b, mag, dec, false)
}

// appendFixedFrom renders v × 10^-from rounded half away from zero to exactly to decimals
// (to ≤ from): decimal.New(v, -from).StringFixed(to).
func appendFixedFrom(b []byte, v int64, from, to int) []byte {
	neg, mag := v < 0, uint64(v)
	if neg {
		mag = -mag
	}
	d := pow10[from-to]
	q, r := mag/d, mag%d
	if r >= d-r { // r ≥ d/2 without overflow
		q++
	}
	return appendRounded(b, neg, q, to)
}

// appendAverageTasks renders query.AverageTasks(...).StringFixed(4) from task-minutes t (10^-6).
func appendAverageTasks(b []byte, t int64, start, end, now time.Time) []byte {
	if now.Before(end) {
		end = now.Truncate(time.Minute)
	}
	mins := int64(end.Sub(start) / time.Minute)
	if mins <= 0 || t == 0 || mins > 1<<40 {
		if mins > 1<<40 && t != 0 {
			return append(b, query.AverageTasks(&query.Amounts{query.TaskMinutes: query.Int128Of(t)}, start, end, now).StringFixed(placesTasks)...)
		}
		return appendRounded(b, false, 0, placesTasks)
	}
	// t × 10^-6 / mins rounded half away from zero to 10^-4: t / (100 × mins).
	neg, mag := t < 0, uint64(t)
	if neg {
		mag = -mag
	}
	d := uint64(mins) * 100
	q, r := mag/d, mag%d
	if 2*r >= d {
		q++
	}
	return appendRounded(b, neg, q, 4)
}

// appendEgressGB renders Decimal(bytes).DivRound(2^30, 9).StringFixed(9).
func appendEgressGB(b []byte, bytes int64) []byte {
	neg, mag := bytes < 0, uint64(bytes)
	if neg {
		mag = -mag
	}
	hi, lo := bits.Mul64(mag, 1e9)
	q := hi<<34 | lo>>30
	if lo&(1<<29) != 0 { // remainder ≥ half of 2^30
		q++
	}
	return appendRounded(b, neg, q, 9)
}
