package api

import (
	"bufio"
	"context"
	"encoding/csv"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/cygni/usage/query"
	"github.com/cygni/usage/store"
)

// exportColumns are the CSV header and the JSON field names of an export row, in order.
var exportColumns = []string{
	"hour", "projectId", "projectName", "deployment",
	"cpuSeconds", "memoryGbHours", "containerInstances", "egressGB", "requests", "storageGbHours",
	"computeCost", "memoryCost", "bandwidthCost", "requestsCost", "storageCost", "totalCost",
}

// exportChunk and exportBatch bound what is read at once: up to 31 days of up to 50 projects,
// so memory stays flat whatever the range and the number of projects.
const (
	exportChunk = 31 * 24 * time.Hour
	exportBatch = 50
)

// exportFlushRows is how many rows are written between flushes to the client.
const exportFlushRows = 2000

// exportEncoder writes rows as CSV (RFC 4180, header first) or as one JSON array, streaming.
type exportEncoder struct {
	w       http.ResponseWriter
	bw      *bufio.Writer
	csv     *csv.Writer
	json    bool
	rows    int
	started bool
	rec     []string
	buf     []byte
}

func newExportEncoder(w http.ResponseWriter, format string) *exportEncoder {
	e := &exportEncoder{w: w, json: format == "json", rec: make([]string, len(exportColumns))}
	if e.json {
		w.Header().Set("Content-Type", "application/json")
	} else {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	}
	e.bw = bufio.NewWriterSize(w, 64<<10)
	if !e.json {
		e.csv = csv.NewWriter(e.bw)
	}
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
	return e.csv.Write(exportColumns)
}

// row writes one record of len(exportColumns) values; values 0-3 are strings, the rest numbers
// (quoted in JSON when they are money, see moneyCols).
func (e *exportEncoder) row(rec []string) error {
	if err := e.begin(); err != nil {
		return err
	}
	if e.json {
		b := e.buf[:0]
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
			if i < 4 || i >= 10 {
				b = strconv.AppendQuote(b, rec[i])
			} else {
				b = append(b, rec[i]...)
			}
		}
		b = append(b, '}')
		e.buf = b
		if _, err := e.bw.Write(b); err != nil {
			return err
		}
	} else if err := e.csv.Write(rec); err != nil {
		return err
	}
	e.rows++
	if e.rows%exportFlushRows == 0 {
		return e.flush()
	}
	return nil
}

func (e *exportEncoder) flush() error {
	if e.csv != nil {
		e.csv.Flush()
		if err := e.csv.Error(); err != nil {
			return err
		}
	}
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
	rec := e.rec
	for lo := 0; lo < len(ps); lo += exportBatch {
		batch := ps[lo:min(lo+exportBatch, len(ps))]
		ids := make([]string, len(batch))
		for i, p := range batch {
			ids[i] = p.ID
		}
		for cs := start; cs.Before(to); cs = cs.Add(exportChunk) {
			ce := cs.Add(exportChunk)
			var bounds []time.Time
			for h := cs; h.Before(ce) && h.Before(to); h = h.Add(time.Hour) {
				bounds = append(bounds, h)
			}
			bounds = append(bounds, bounds[len(bounds)-1].Add(time.Hour))
			ru, err := q.Rollup(ctx, ids, bounds, query.ByDeployment)
			if err != nil {
				return err
			}
			keys := ru.Keys()
			for _, p := range batch {
				// keys are sorted by project: this project's deployments are one run.
				from := sort.Search(len(keys), func(i int) bool { return keys[i].Project >= p.ID })
				until := from
				for until < len(keys) && keys[until].Project == p.ID {
					until++
				}
				for i := range len(bounds) - 1 {
					hour := bounds[i].Format(time.RFC3339)
					for _, k := range keys[from:until] {
						b := &ru.Rows[k][i]
						if b.Usage.IsZero() {
							continue
						}
						u := &b.Usage
						rec[0], rec[1], rec[2], rec[3] = hour, p.ID, p.Name, k.Deployment
						rec[4] = u.Decimal(query.CPUSeconds).String()
						rec[5] = u.Decimal(query.MemoryGBHours).String()
						rec[6] = query.AverageTasks(u, b.Start, b.End, now).String()
						rec[7] = u.Decimal(query.EgressBytes).DivRound(gib, 9).String()
						rec[8] = strconv.FormatInt(u[query.Requests], 10)
						rec[9] = u.Decimal(query.StorageGBHours).String()
						rec[10] = exportMoney(b.Cost.Compute)
						rec[11] = exportMoney(b.Cost.Memory)
						rec[12] = exportMoney(b.Cost.Bandwidth)
						rec[13] = exportMoney(b.Cost.Requests)
						rec[14] = exportMoney(b.Cost.Storage)
						rec[15] = exportMoney(b.Cost.Total())
						if err := e.row(rec); err != nil {
							return err
						}
					}
				}
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}

// exportMoney renders an hour's amount with 6 decimals: an hour costs fractions of a cent.
func exportMoney(d decimal.Decimal) string { return d.StringFixed(6) }
