package api

import (
	"bytes"
	"encoding/csv"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/cygni/usage/query"
)

// TestExportFormatsMatchDecimal holds the integer renderings of export rows to the decimal ones
// they replace.
func TestExportFormatsMatchDecimal(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	vals := []int64{0, 1, -1, 5, 10, 999999999, 1000000000, -1000000001, math.MaxInt64, math.MinInt64 + 1, 536870912, 1 << 29, 3 << 29}
	for range 100000 {
		v := rng.Int64() >> rng.IntN(63)
		if rng.IntN(2) == 0 {
			v = -v
		}
		vals = append(vals, v)
	}
	start := time.Date(2024, 4, 1, 5, 0, 0, 0, time.UTC)
	for _, v := range vals {
		if got, want := string(appendFixedFrom(nil, v, 9, 6)), decimal.New(v, -9).StringFixed(6); got != want {
			t.Fatalf("appendFixedFrom(%d, 9, 6) = %s, want %s", v, got, want)
		}
		if got, want := string(appendEgressGB(nil, v)), decimal.NewFromInt(v).DivRound(gib, 9).StringFixed(9); got != want {
			t.Fatalf("appendEgressGB(%d) = %s, want %s", v, got, want)
		}
		for _, now := range []time.Time{start.Add(2 * time.Hour), start.Add(17*time.Minute + 5*time.Second), start} {
			end := start.Add(time.Hour)
			a := query.Amounts{query.TaskMinutes: query.Int128Of(v)}
			if got, want := string(appendAverageTasks(nil, v, start, end, now)), query.AverageTasks(&a, start, end, now).StringFixed(4); got != want {
				t.Fatalf("appendAverageTasks(%d, now %s) = %s, want %s", v, now, got, want)
			}
		}
		if v >= 0 {
			if got, want := string(appendScaledFixed(nil, v, 6)), decimal.New(v, -6).StringFixed(6); got != want {
				t.Fatalf("appendScaledFixed(%d) = %s, want %s", v, got, want)
			}
		}
	}
	for _, f := range []string{"", "web", `\.`, " lead", "a,b", `say "hi"`, "line\nbreak", "cr\rx", "\u00a0nbsp", "Projekt Ä"} {
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		_ = w.Write([]string{f})
		w.Flush()
		if got, want := string(appendCSVField(nil, f))+"\n", buf.String(); got != want {
			t.Errorf("appendCSVField(%q) = %q, want %q", f, got, want)
		}
	}
}
