package collector

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/cygni/usage/simaws"
	"github.com/cygni/usage/tsdb"
)

// inProcess is an http.RoundTripper that serves requests from a handler without a network, and
// can record the answers and replay them (pre-encoded responses, keyed by the request body).
type inProcess struct {
	h      http.Handler
	mu     sync.Mutex
	record bool
	saved  map[[32]byte]*httptest.ResponseRecorder
}

func (p *inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	key := sha256.Sum256(append([]byte(r.URL.Path+r.Header.Get("X-Amz-Target")), body...))
	p.mu.Lock()
	rec, ok := p.saved[key]
	p.mu.Unlock()
	if !ok {
		r2 := r.Clone(r.Context())
		r2.Body = io.NopCloser(bytes.NewReader(body))
		if r2.Host == "" {
			r2.Host = r.URL.Host
		}
		rec = httptest.NewRecorder()
		p.h.ServeHTTP(rec, r2)
		if p.record {
			p.mu.Lock()
			p.saved[key] = rec
			p.mu.Unlock()
		}
	}
	resp := rec.Result()
	resp.Body = io.NopCloser(bytes.NewReader(rec.Body.Bytes()))
	resp.Request = r
	return resp, nil
}

// recordedFleet is the fleet (10,000 services: 5,000 projects × 2) behind SDK clients
// whose answers are recorded (tr.record) and replayed once recording is off.
func recordedFleet(clk *clock) (*cloudwatch.Client, *ecs.Client, *inProcess) {
	sim := simaws.New(simaws.Options{Projects: 5000, ServicesPerProject: 2, Untagged: -1, Now: clk.Now})
	tr := &inProcess{h: sim.Handler(), record: true, saved: map[[32]byte]*httptest.ResponseRecorder{}}
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDSIMULATED", "simulated-secret", ""),
		HTTPClient:  &http.Client{Transport: tr},
	}
	cw := cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) { o.BaseEndpoint = aws.String("http://sim.invalid") })
	ec := ecs.NewFromConfig(cfg, func(o *ecs.Options) { o.BaseEndpoint = aws.String("http://sim.invalid") })
	return cw, ec, tr
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDecodeConvertAppend measures the collector's path for 10,000 services × 7 series ×
// 5 one-minute periods: the SDK decoding pre-encoded GetMetricData answers (CBOR, no network),
// the conversion, the correction rule against the TSDB and the committed appends into a fresh
// TSDB. Discovery and the recording of the answers happen once, outside the timer.
//
//	go test -run '^$' -bench BenchmarkDecodeConvertAppend -benchtime 5x ./collector/
func BenchmarkDecodeConvertAppend(b *testing.B) {
	clk := &clock{t: testNow}
	cw, ec, tr := recordedFleet(clk)
	ch := chunk{from: testNow.Add(-5 * time.Minute), to: testNow, period: 60}
	ctx := context.Background()

	newCollector := func(dir string) (*Collector, *tsdb.DB) {
		db, err := tsdb.Open(nil, nil, tsdb.Options{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		c, err := New(nil, nil, Options{CloudWatch: cw, ECS: ec, Storage: db, Region: "us-east-1", Now: clk.Now, Concurrency: 4})
		if err != nil {
			b.Fatal(err)
		}
		return c, db
	}
	// Discovery and one recording pass.
	c, db := newCollector(b.TempDir())
	plan, err := c.discover(ctx, allMetrics)
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := c.collectChunk(ctx, plan, ch, nil); err != nil {
		b.Fatal(err)
	}
	samples := c.m.appended.Get()
	db.Close()
	if samples < 300_000 {
		b.Fatalf("recording pass appended %d samples; want about 10,000 × 7 × 5", samples)
	}
	tr.record = false

	var cpu time.Duration
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		c, db := newCollector(b.TempDir())
		plan, err := c.discover(ctx, allMetrics) // replayed answers; not timed
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := cpuTime()
		if _, _, err := c.collectChunk(ctx, plan, ch, nil); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - start
		b.StopTimer()
		if got := c.m.appended.Get(); got != samples {
			b.Fatalf("appended %d samples, want %d", got, samples)
		}
		db.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(samples)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
}

// BenchmarkBackfill measures the collector's backfill path end to end on the fleet:
// 10,000 services (5,000 projects × 2) × 7 series, 6 hours of 1-minute periods read by
// Collect into a fresh TSDB: the SDK encoding the GetMetricData requests and decoding their
// answers (CBOR, replayed from a recording: what the simulated AWS costs is not the
// collector's), the conversion, the correction rule, the appends and the flush of what was
// appended into blocks before Collect returns. The clock is 3 hours past the window: history.
// Discovery and the recording happen once, outside the timer. The chunks of such a fleet are
// 28 minutes (MaxChunkPoints), so the backfill goes through the head in order (inOrder).
//
//	go test -run '^$' -bench BenchmarkBackfill -benchtime 3x ./collector/
func BenchmarkBackfill(b *testing.B) {
	to := testNow.Add(-3 * time.Hour).Truncate(time.Hour)
	from := to.Add(-6 * time.Hour)
	clk := &clock{t: testNow}
	cw, ec, tr := recordedFleet(clk)
	ctx := context.Background()
	collect := func() (uint64, time.Duration) {
		db, err := tsdb.Open(nil, nil, tsdb.Options{Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		var samples uint64
		c, err := New(nil, nil, Options{CloudWatch: cw, ECS: ec, Storage: db, Region: "us-east-1", Now: clk.Now,
			OnProgress: func(p Progress) { samples = p.Samples }})
		if err != nil {
			b.Fatal(err)
		}
		start := cpuTime()
		if err := c.Collect(ctx, from, to); err != nil {
			b.Fatal(err)
		}
		return samples, cpuTime() - start
	}
	// The recording pass. Tasks do not run every minute: about 85 % of the periods have data.
	want, _ := collect()
	if min := uint64(10_000 * 7 * 6 * 60 * 3 / 4); want < min {
		b.Fatalf("recording pass appended %d samples; want about 10,000 × 7 × 360", want)
	}
	tr.record = false

	var cpu time.Duration
	for b.Loop() {
		got, c := collect()
		cpu += c
		if got != want {
			b.Fatalf("appended %d samples, want %d", got, want)
		}
	}
	b.ReportMetric(float64(want)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(float64(want)*float64(b.N)/cpu.Seconds(), "samples/cpu-s")
}
