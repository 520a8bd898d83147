package tsdb

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/cygni/usage/internal/storetest"
)

func openRemoteTest(t testing.TB, s *storetest.Server, queueDir string) *Remote {
	t.Helper()
	r, err := OpenRemote(nil, nil, RemoteOptions{
		Kind: s.Kind, WriteURL: s.WriteURL, ReadURL: s.ReadURL, QueueDir: queueDir,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, ReadSyncTimeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type sample struct {
	t int64
	v float64
}

// samplesOf returns every sample of the series matching ms, by series.
func samplesOf(t testing.TB, q storage.Queryable, ms ...*labels.Matcher) map[string][]sample {
	t.Helper()
	qr, err := q.Querier(0, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	defer qr.Close()
	ss := qr.Select(context.Background(), true, nil, ms...)
	out := map[string][]sample{}
	var it chunkenc.Iterator
	for ss.Next() {
		it = ss.At().Iterator(it)
		k := ss.At().Labels().String()
		for it.Next() == chunkenc.ValFloat {
			ts, v := it.At()
			out[k] = append(out[k], sample{ts, v})
		}
	}
	if err := ss.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Per-period amounts, a late correction inside the same period (1 ms before the period's end)
// and a resend of both: each store keeps exactly the first value and the correction, once.
func TestRemoteRoundTrip(t *testing.T) {
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) {
			s := storetest.Start(t, kind)
			r := openRemoteTest(t, s, t.TempDir())
			defer r.Close()
			end := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC).UnixMilli()
			a := labels.FromStrings(labels.MetricName, "cygni_cpu_seconds", "project", "proj_a", "cluster", "c1")
			b := labels.FromStrings(labels.MetricName, "cygni_cpu_seconds", "project", "proj_b", "cluster", "c1")
			write := func(ss ...struct {
				l labels.Labels
				s sample
			}) {
				app := r.Appender(context.Background())
				for _, x := range ss {
					if _, err := app.Append(0, x.l, x.s.t, x.s.v); err != nil {
						t.Fatal(err)
					}
				}
				if err := app.Commit(); err != nil {
					t.Fatal(err)
				}
			}
			type ls = struct {
				l labels.Labels
				s sample
			}
			// Written later first: the periods arrive out of order, as backfills do.
			write(ls{a, sample{end, 30}}, ls{b, sample{end, 7}})
			write(ls{a, sample{end - 60_000, 10}}, ls{a, sample{end - 120_000, 5}})
			write(ls{a, sample{end - 60_001, 2.5}}) // a correction of the period ending at end-60s
			// The same samples again (a resend after a crash).
			write(ls{a, sample{end, 30}}, ls{a, sample{end - 60_000, 10}}, ls{a, sample{end - 60_001, 2.5}}, ls{b, sample{end, 7}})
			got := samplesOf(t, r, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, "cygni_cpu_seconds"))
			want := map[string][]sample{
				a.String(): {{end - 120_000, 5}, {end - 60_001, 2.5}, {end - 60_000, 10}, {end, 30}},
				b.String(): {{end, 7}},
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("stored\n%v\nwant\n%v", got, want)
			}
			// Label values come back as from the embedded TSDB.
			q, err := r.Querier(0, 1<<62)
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			vals, _, err := q.LabelValues(context.Background(), "project", nil, labels.MustNewMatcher(labels.MatchEqual, "cluster", "c1"))
			if err != nil || !slices.Equal(vals, []string{"proj_a", "proj_b"}) {
				t.Errorf("LabelValues(project) = %v, %v", vals, err)
			}
			// A narrower range returns only its samples (both ends inclusive).
			qr, err := r.Querier(end-60_001, end-60_000)
			if err != nil {
				t.Fatal(err)
			}
			defer qr.Close()
			ss := qr.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, "project", "proj_a"))
			n := 0
			var it chunkenc.Iterator
			for ss.Next() {
				it = ss.At().Iterator(it)
				for it.Next() == chunkenc.ValFloat {
					n++
				}
			}
			if ss.Err() != nil || n != 2 {
				t.Errorf("range [end-60001, end-60000]: %d samples (%v), want 2", n, ss.Err())
			}
		})
	}
}

const remoteChildEnv = "CYGNI_TSDB_REMOTE_KILL_CHILD"

// TestRemoteKill9 re-executes the test binary as a child that commits batches to a remote
// store and reports each commit; the store is stopped while the child writes, the child is
// SIGKILLed, the store restarted, and the queue reopened: every series holds each committed
// sample exactly once — nothing lost, nothing doubled by the resend.
func TestRemoteKill9(t *testing.T) {
	if v := os.Getenv(remoteChildEnv); v != "" {
		remoteKill9Child(v)
		return
	}
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) {
			s := storetest.Start(t, kind)
			queueDir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestRemoteKill9$")
			cmd.Env = append(os.Environ(), remoteChildEnv+"="+strings.Join([]string{kind, s.WriteURL, s.ReadURL, queueDir}, " "))
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(out)
			committed, stopped := 0, false
			for sc.Scan() {
				n, ok := strings.CutPrefix(sc.Text(), "committed ")
				if !ok {
					t.Logf("child: %s", sc.Text())
					continue
				}
				committed, _ = strconv.Atoi(n)
				if committed >= 20_000 && !stopped {
					s.Stop() // the store goes down mid-stream
					stopped = true
				}
				if committed >= 50_000 {
					break
				}
			}
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			if committed < 50_000 {
				t.Fatalf("child reported only %d committed samples", committed)
			}
			s.Start()
			r := openRemoteTest(t, s, queueDir)
			defer r.Close()
			if err := r.Sync(context.Background()); err != nil {
				t.Fatal(err)
			}
			// Sync waits for this process's own commits; the child's backlog is delivered by
			// the sender in order before anything newer: commit one marker and wait for it.
			app := r.Appender(context.Background())
			if _, err := app.Append(0, labels.FromStrings(labels.MetricName, "kill9_marker"), kill9Base, 1); err != nil {
				t.Fatal(err)
			}
			if err := app.Commit(); err != nil {
				t.Fatal(err)
			}
			got := samplesOf(t, r, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, "kill9"))
			if len(got) != 100 {
				t.Fatalf("%d series, want 100", len(got))
			}
			n := 0
			for k, ss := range got {
				for i, x := range ss {
					if x.t != kill9Base+int64(i)*60_000 || x.v != 1 {
						t.Fatalf("%s: sample %d is %v, want (%d, 1): lost or doubled", k, i, x, kill9Base+int64(i)*60_000)
					}
				}
				n += len(ss)
			}
			if n < committed {
				t.Errorf("after kill -9 with the store down: %d samples, but %d were committed", n, committed)
			}
			t.Logf("%s: %d committed, %d stored exactly once", kind, committed, n)
		})
	}
}

var kill9Base = time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC).UnixMilli()

func remoteKill9Child(arg string) {
	f := strings.Fields(arg)
	r, err := OpenRemote(nil, nil, RemoteOptions{Kind: f[0], WriteURL: f[1], ReadURL: f[2], QueueDir: f[3], MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	sets := make([]labels.Labels, 100)
	for i := range sets {
		sets[i] = labels.FromStrings(labels.MetricName, "kill9", "i", strconv.Itoa(i))
	}
	ts := kill9Base
	total := 0
	for { // until killed
		app := r.Appender(context.Background())
		for i := range sets {
			if _, err := app.Append(0, sets[i], ts, 1); err != nil {
				fmt.Println("append:", err)
				os.Exit(1)
			}
		}
		if err := app.Commit(); err != nil {
			fmt.Println("commit:", err)
			os.Exit(1)
		}
		total += len(sets)
		ts += 60_000
		fmt.Printf("committed %d\n", total)
		time.Sleep(200 * time.Microsecond)
	}
}

// BenchmarkRemoteWrite measures the remote mode's write path end to end: each iteration
// commits one sample to each of 1,000 series into the durable queue; the timer stops once the
// store has acknowledged all of them. It reports delivered samples/s and the queue's bytes on
// disk per sample (before delivered segments are deleted).
//
//	go test -run '^$' -bench BenchmarkRemoteWrite -benchtime 200x ./tsdb/
func BenchmarkRemoteWrite(b *testing.B) {
	for _, kind := range storetest.Kinds {
		b.Run(kind, func(b *testing.B) {
			s := storetest.Start(b, kind)
			dir := b.TempDir()
			r := openRemoteTest(b, s, dir)
			defer r.Close()
			const series = 1000
			sets := make([]labels.Labels, series)
			for i := range sets {
				sets[i] = labels.FromStrings(labels.MetricName, "cygni_cpu_seconds", "project", "proj_"+strconv.Itoa(i%100),
					"deployment", "svc"+strconv.Itoa(i), "cluster", "cygni-prod", "region", "us-east-1")
			}
			ts := kill9Base
			b.ReportAllocs()
			for b.Loop() {
				app := r.Appender(context.Background())
				for i := range sets {
					if _, err := app.Append(0, sets[i], ts, float64(i)); err != nil {
						b.Fatal(err)
					}
				}
				if err := app.Commit(); err != nil {
					b.Fatal(err)
				}
				ts += 60_000
			}
			if err := r.Sync(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(series*b.N)/b.Elapsed().Seconds(), "samples/s")
			b.ReportMetric(float64(dirSize(b, dir))/float64(series*b.N), "queue-bytes/sample")
		})
	}
}

func dirSize(tb testing.TB, dir string) int64 {
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// A store that refuses one sample of a request (Prometheus: a sample behind its out-of-order
// window) refuses the whole request; the queue isolates the refused sample, drops and counts
// only it, and delivers the rest of the request.
func TestRemoteRefusedSampleIsolated(t *testing.T) {
	s := storetest.StartPrometheus(t)
	r := openRemoteTest(t, s, t.TempDir())
	defer r.Close()
	end := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC).UnixMilli()
	app := r.Appender(context.Background())
	if _, err := app.Append(0, labels.FromStrings(labels.MetricName, "x", "i", "head"), end, 1); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	app = r.Appender(context.Background())
	for i := range 10 {
		l := labels.FromStrings(labels.MetricName, "x", "i", strconv.Itoa(i))
		ts := end - int64(i)*60_000
		if i == 7 {
			ts = end - 60*24*3600*1000 // 60 days behind the head: outside the 30-day window
		}
		if _, err := app.Append(0, l, ts, float64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	got := samplesOf(t, r, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, "x"))
	if len(got) != 10 {
		t.Errorf("%d series stored, want 10 (the head and 9 of the 10 new ones): %v", len(got), got)
	}
	if _, ok := got[labels.FromStrings(labels.MetricName, "x", "i", "7").String()]; ok {
		t.Errorf("the refused sample was stored: %v", got)
	}
	if n := testutil.ToFloat64(r.q.rejected); n != 1 {
		t.Errorf("rejected samples = %v, want 1", n)
	}
}

// A queue whose last segment ends in a torn record (the machine died mid-write) opens, sends
// every complete record once the store is up, and goes on with new commits.
func TestRemoteQueueTornTail(t *testing.T) {
	dir := t.TempDir()
	down := "http://" + closedAddr(t)
	r, err := OpenRemote(nil, nil, RemoteOptions{Kind: KindVictoriaMetrics, WriteURL: down + "/api/v1/write", ReadURL: down, QueueDir: dir,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, DrainTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	commit := func(r *Remote, batch int) {
		t.Helper()
		app := r.Appender(context.Background())
		for i := range 50 {
			if _, err := app.Append(0, labels.FromStrings(labels.MetricName, "torn", "i", strconv.Itoa(i)), kill9Base+int64(batch)*60_000, 1); err != nil {
				t.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	for batch := range 3 {
		commit(r, batch)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	segs, err := filepath.Glob(filepath.Join(dir, "wal", "0*"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no queue segments: %v %v", segs, err)
	}
	f, err := os.OpenFile(segs[len(segs)-1], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The header of a full record of 200 bytes, then only 20 of them.
	if _, err := f.Write(append([]byte{1, 0, 200, 0, 0, 0, 0}, make([]byte, 20)...)); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()

	s := storetest.StartVictoriaMetrics(t)
	r2 := openRemoteTest(t, s, dir)
	defer r2.Close()
	commit(r2, 3)
	got := samplesOf(t, r2, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, "torn"))
	if len(got) != 50 {
		t.Fatalf("%d series, want 50", len(got))
	}
	for k, ss := range got {
		if len(ss) != 4 {
			t.Errorf("%s: %d samples, want 4 (3 before the tear, 1 after), each once: %v", k, len(ss), ss)
		}
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}
