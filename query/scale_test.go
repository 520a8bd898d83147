package query

import (
	"context"
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/cygni/usage/series"
	"github.com/cygni/usage/tsdb"
)

// The collector's conversions (collector/discover.go), applied to CloudWatch's integer Sums.
func cpuSample(units int64) float64    { return float64(units) * 60 / 1024 }
func memSample(mib int64) float64      { return float64(mib) / 1024 / 60 }
func bytesSample(perSec int64) float64 { return float64(perSec) * 60 }

func TestQuantizeRecoversCloudWatchIntegers(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for n := range 200000 {
		bound := int64(1) << (10 + n%40) // up to 2^49 MiB-minutes
		a, b := rng.Int64N(bound), rng.Int64N(bound)
		if n%5 == 0 {
			b = a + rng.Int64N(100) - 50 // a small correction
		}
		xa, xb := memSample(a), memSample(b)
		for _, c := range []struct {
			v    float64
			want int64
		}{{xa, a}, {xb, b}, {xb - xa, b - a}} { // a correction sample is the float difference
			if got, err := Quantize(MemoryGBHours, c.v); err != nil || got != c.want {
				t.Fatalf("Quantize(memory, %v) = %d, %v; want %d MiB-minutes", c.v, got, err, c.want)
			}
		}
		if got, _ := Quantize(MemoryGBHours, Dequantize(MemoryGBHours, a)); got != a {
			t.Fatalf("memory round trip of %d: %d", a, got)
		}
		u := rng.Int64N(1 << 45) // CPU-unit-minutes
		if got, err := Quantize(CPUSeconds, cpuSample(u)); err != nil || got != 15*u {
			t.Fatalf("Quantize(cpu, %d units) = %d, %v; want %d", u, got, err, 15*u)
		}
		if got, _ := Quantize(EgressBytes, bytesSample(u)); got != 60*u {
			t.Fatalf("Quantize(bytes, %d/s) = %d", u, got)
		}
	}
	for _, v := range []float64{memSample(1 << 51), 1e300} {
		if _, err := Quantize(MemoryGBHours, v); err == nil {
			t.Errorf("Quantize(memory, %g) accepted a value beyond the exact range", v)
		}
	}
}

func randomAmounts(rng *rand.Rand) Amounts {
	var a Amounts
	for m := range a {
		switch rng.IntN(3) {
		case 0:
			a[m] = Int128Of(rng.Int64N(1000))
		case 1:
			a[m] = Int128Of(rng.Int64N(1<<50) - 1<<49) // corrections can be negative
		default:
			a[m] = Int128Of(rng.Int64N(1 << 62))
		}
	}
	return a
}

func TestAmountsSumInAnyOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	parts := make([]Amounts, 5000)
	want := make([]*big.Int, NumMetrics)
	for m := range want {
		want[m] = new(big.Int)
	}
	for i := range parts {
		parts[i] = randomAmounts(rng)
		for m := range parts[i] {
			want[m].Add(want[m], parts[i][m].Big())
		}
	}
	for round := range 20 {
		rng.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
		var sum Amounts
		for i := range parts {
			if err := sum.Add(&parts[i]); err != nil {
				t.Fatal(err)
			}
		}
		for m := range sum {
			if sum[m].Big().Cmp(want[m]) != 0 {
				t.Fatalf("order %d, %s: %s, want %s", round, seriesOf[m], sum[m], want[m])
			}
		}
	}
	// Overflow is reported and leaves the sum unchanged (no field dropped, none half-added).
	top := Amounts{}
	top[Requests] = Int128{hi: 1<<63 - 1, lo: 1<<64 - 1}
	one := Amounts{CPUSeconds: Int128Of(7), Requests: Int128Of(1)}
	before := top
	if err := top.Add(&one); err == nil || top != before {
		t.Errorf("128-bit overflow: err %v, sum changed %v", err, top != before)
	}
}

// TestAmountsHoldTheLargestTeam adds 400 days of the largest Fargate deployments (1,000 tasks of
// 16 vCPU and 120 GiB, 10 Gbit/s and 100,000 requests/s each, 2 per project) for 10,000 projects
// and compares with big.Int arithmetic.
func TestAmountsHoldTheLargestTeam(t *testing.T) {
	var hour Amounts // one deployment-hour, in quanta
	hour[CPUSeconds] = Int128Of(1000 * 16384 * 60 * 15)
	hour[MemoryGBHours] = Int128Of(1000 * 122880 * 60)
	hour[TaskMinutes] = Int128Of(1000 * 60 * 1_000_000)
	hour[EgressBytes] = Int128Of(1000 * 1_250_000_000 * 3600)
	hour[Requests] = Int128Of(1000 * 100_000 * 3600)
	const hours, deployments, projects = 400 * 24, 2, 10_000
	var project Amounts
	for range hours * deployments {
		if err := project.Add(&hour); err != nil {
			t.Fatal(err)
		}
	}
	var team Amounts
	for range projects {
		if err := team.Add(&project); err != nil {
			t.Fatal(err)
		}
	}
	n := big.NewInt(hours * deployments * projects)
	for m := range team {
		want := new(big.Int).Mul(hour[m].Big(), n)
		if team[m].Big().Cmp(want) != 0 {
			t.Errorf("%s: %s, want %s", seriesOf[m], team[m], want)
		}
	}
	// 1.6e18 vCPU-hours of quanta are beyond int64 and the old 9.2e9 vCPU-second limit.
	if _, fits := team[EgressBytes].Int64(); fits {
		t.Errorf("the test does not leave int64: %s", team[EgressBytes])
	}
	if got := team.Quo(CPUSeconds, 3600, 6).String(); got != new(big.Int).Mul(big.NewInt(1000*16*hours*deployments), big.NewInt(projects)).String() {
		t.Errorf("vCPU-hours %s", got)
	}
}

// TestRollupExactForTenThousandProjects writes per-minute samples for 10,000 projects through a
// real TSDB (small amounts for half, the largest tasks for the others, so the team total leaves the
// old 9.2e9 vCPU-second range) and checks team totals == the sum of per-project rows == the
// integers written, for every groupBy, on repeated calls.
func TestRollupExactForTenThousandProjects(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 10,000 projects")
	}
	db, err := tsdb.Open(nil, nil, tsdb.Options{Dir: t.TempDir(), OutOfOrderWindow: 400 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	const nproj = 10_000
	from := time.Date(2026, 10, 31, 22, 0, 0, 0, time.UTC) // across a month boundary
	to := from.Add(4 * time.Hour)
	rng := rand.New(rand.NewPCG(7, 8))
	type key struct {
		p string
		m Metric
		h int64 // hour start, unix seconds
	}
	truth := map[key]int64{} // quanta
	projects := make([]string, nproj)
	app := db.Appender(context.Background())
	minutes := []int{0, 17, 59, 60 + 30, 120 + 1, 180 + 59}
	for i := range projects {
		p := fmt.Sprintf("proj_%05d", i)
		projects[i] = p
		large := i%2 == 0
		for _, m := range []Metric{CPUSeconds, MemoryGBHours, EgressBytes, Requests} {
			l := labels.FromStrings(labels.MetricName, seriesOf[m], series.LabelProject, p, series.LabelDeployment, "web")
			for _, min := range minutes {
				start := from.Add(time.Duration(min) * time.Minute)
				var raw int64
				switch {
				case large && m == CPUSeconds:
					raw = 1000 * 16384
				case large && m == MemoryGBHours:
					raw = 1000 * 122880
				default:
					raw = rng.Int64N(5000)
				}
				var v float64
				var q int64
				switch m {
				case CPUSeconds:
					v, q = cpuSample(raw), 15*raw
				case MemoryGBHours:
					v, q = memSample(raw), raw
				case EgressBytes:
					v, q = bytesSample(raw), 60*raw
				default:
					v, q = float64(raw), raw
				}
				if _, err := app.Append(0, l, start.Add(time.Minute).UnixMilli(), v); err != nil {
					t.Fatal(err)
				}
				truth[key{p, m, start.Truncate(time.Hour).Unix()}] += q
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, db, Prices{}, nil)
	var oldLimit = new(big.Int).Mul(big.NewInt(9_223_372_036), big.NewInt(256)) // 9.2e9 vCPU-s in quanta
	for _, g := range []GroupBy{Hour, Day, Week, Month} {
		t.Run(string(g), func(t *testing.T) {
			bounds, err := Buckets(from, to, g, time.UTC)
			if err != nil {
				t.Fatal(err)
			}
			var first []Bucket
			for call := range 2 {
				r, err := e.Rollup(context.Background(), projects, bounds, ByProject)
				if err != nil {
					t.Fatal(err)
				}
				if len(r.Rows) != nproj {
					t.Fatalf("%d rows, want %d", len(r.Rows), nproj)
				}
				total, err := r.Total()
				if err != nil {
					t.Fatal(err)
				}
				// One row for the team (read in shares on several cores, merged) equals the
				// sum of the project rows.
				tr, err := e.Rollup(context.Background(), projects, bounds, ByTotal)
				if err != nil {
					t.Fatal(err)
				}
				for bi := range total {
					if got := tr.Rows[Key{}][bi]; got.Usage != total[bi].Usage {
						t.Fatalf("bucket %d: team row %v ≠ sum of project rows %v", bi, got.Usage, total[bi].Usage)
					}
				}
				for bi, b := range total {
					for _, m := range []Metric{CPUSeconds, MemoryGBHours, EgressBytes, Requests} {
						want, byProject := new(big.Int), new(big.Int)
						for _, p := range projects {
							for h := b.Start.Truncate(time.Hour); h.Before(b.End); h = h.Add(time.Hour) {
								want.Add(want, big.NewInt(truth[key{p, m, h.Unix()}]))
							}
							byProject.Add(byProject, r.Rows[Key{Project: p}][bi].Usage[m].Big())
						}
						if got := b.Usage[m].Big(); got.Cmp(want) != 0 || byProject.Cmp(want) != 0 {
							t.Fatalf("bucket %d %s: team %s, sum of projects %s, truth %s", bi, seriesOf[m], got, byProject, want)
						}
					}
				}
				if g == Month || g == Week {
					var all Amounts
					for i := range total {
						if err := all.Add(&total[i].Usage); err != nil {
							t.Fatal(err)
						}
					}
					if all[CPUSeconds].Big().Cmp(oldLimit) <= 0 {
						t.Errorf("team CPU %s quanta does not exceed the old limit", all[CPUSeconds])
					}
				}
				if call == 0 {
					first = total
				} else {
					for i := range total {
						if total[i].Usage != first[i].Usage || !total[i].Cost.Total().Equal(first[i].Cost.Total()) {
							t.Errorf("bucket %d differs between identical calls", i)
						}
					}
				}
			}
		})
	}
}
