package tsdb

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

func openTest(t testing.TB, dir string) *DB {
	t.Helper()
	db, err := Open(nil, nil, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// count returns the number of samples and their sum over all series named name.
func count(t testing.TB, db storage.Queryable, name string) (int, float64) {
	t.Helper()
	q, err := db.Querier(0, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, name))
	n, sum := 0, 0.0
	var it chunkenc.Iterator
	for ss.Next() {
		it = ss.At().Iterator(it)
		for it.Next() == chunkenc.ValFloat {
			_, v := it.At()
			n++
			sum += v
		}
	}
	if err := ss.Err(); err != nil {
		t.Fatal(err)
	}
	return n, sum
}

func TestOpenValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"no dir", Options{}, "directory is empty"},
		{"negative retention", Options{Dir: t.TempDir(), Retention: -time.Hour}, "negative retention"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(nil, nil, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// Late samples inside the out-of-order window are accepted (the collector's corrections);
// older ones are rejected, never silently dropped.
func TestOutOfOrderWindow(t *testing.T) {
	db, err := Open(nil, nil, Options{Dir: t.TempDir(), OutOfOrderWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ls := labels.FromStrings(labels.MetricName, "x")
	base := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC).UnixMilli()
	app := db.Appender(context.Background())
	if _, err := app.Append(0, ls, base, 1); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		ts      int64
		wantErr error
	}{
		{"correction inside the window", base - 30*60*1000, nil},
		{"older than the window", base - 2*3600*1000, storage.ErrTooOldSample},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := db.Appender(context.Background())
			_, err := app.Append(0, ls, tc.ts, 2)
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("append: %v, want %v", err, tc.wantErr)
			}
			if err := app.Commit(); err != nil {
				t.Fatal(err)
			}
		})
	}
	if n, sum := count(t, db, "x"); n != 2 || sum != 3 {
		t.Errorf("stored %d samples summing to %v, want 2 and 3", n, sum)
	}
}

const childEnv = "CYGNI_TSDB_KILL_CHILD_DIR"

// TestKill9 re-executes the test binary as a child that appends and commits batches and
// reports each commit on stdout; the parent SIGKILLs it and reopens the TSDB: every sample the
// child reported committed is there (the WAL replays).
func TestKill9(t *testing.T) {
	if dir := os.Getenv(childEnv); dir != "" {
		kill9Child(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	committed := 0
	for sc.Scan() {
		n, ok := strings.CutPrefix(sc.Text(), "committed ")
		if !ok {
			continue
		}
		committed, _ = strconv.Atoi(n)
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
	db := openTest(t, dir)
	defer db.Close()
	n, sum := count(t, db, "kill9")
	if n < committed {
		t.Errorf("after kill -9: %d samples, but %d were committed", n, committed)
	}
	// Every sample has value 1, so the sum checks there are no duplicates or half-written ones.
	if sum != float64(n) {
		t.Errorf("after kill -9: sum %v over %d samples", sum, n)
	}
}

func kill9Child(dir string) {
	db, err := Open(nil, nil, Options{Dir: dir})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	sets := make([]labels.Labels, 100)
	for i := range sets {
		sets[i] = labels.FromStrings(labels.MetricName, "kill9", "i", strconv.Itoa(i))
	}
	refs := make([]storage.SeriesRef, len(sets))
	ts := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC).UnixMilli()
	total := 0
	for { // until killed
		app := db.Appender(context.Background())
		for i := range sets {
			ref, err := app.Append(refs[i], sets[i], ts, 1)
			if err != nil {
				fmt.Println("append:", err)
				os.Exit(1)
			}
			refs[i] = ref
		}
		if err := app.Commit(); err != nil {
			fmt.Println("commit:", err)
			os.Exit(1)
		}
		total += len(sets)
		ts += 60_000
		fmt.Printf("committed %d\n", total)
	}
}

// A read-only view sees what a DB that is still open (a running server) has committed, takes no
// lock from it, and leaves nothing behind in its directory.
func TestOpenReadOnlyBesideTheServer(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(nil, nil, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ls := labels.FromStrings(labels.MetricName, "x")
	base := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC).UnixMilli()
	app := db.Appender(context.Background())
	for i := range 10 {
		if _, err := app.Append(0, ls, base+int64(i)*60_000, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadDir(dir)
	ro, err := OpenReadOnly(nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	if n, sum := count(t, ro, "x"); n != 10 || sum != 10 {
		t.Errorf("read-only view: %d samples summing to %v, want 10 and 10", n, sum)
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadDir(dir)
	if len(after) != len(before) {
		t.Errorf("the read-only view changed the directory: %v, then %v", before, after)
	}
	// The server still writes.
	app = db.Appender(context.Background())
	if _, err := app.Append(0, ls, base+600_000, 1); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
}

// WriteBlock puts samples older than the out-of-order window into a block that queries see at
// once, and never loses head samples: on restart Prometheus drops the WAL's samples older than
// the newest block's end, so a block reaching into an uncompacted head compacts the head first.
func TestWriteBlockOlderThanTheWindowSurvivesARestart(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(nil, nil, Options{Dir: dir, OutOfOrderWindow: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	raw := labels.FromStrings(labels.MetricName, "raw")
	old := labels.FromStrings(labels.MetricName, "old")
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	app := db.Appender(context.Background())
	const minutes = 4 * 24 * 60
	for i := range minutes {
		if _, err := app.Append(0, raw, t0.Add(time.Duration(i+1)*time.Minute).UnixMilli(), 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	// The head refuses a sample three days behind its newest one.
	oldT := t0.Add(25 * time.Hour).UnixMilli()
	app = db.Appender(context.Background())
	if _, err := app.Append(0, old, oldT, 7); !errors.Is(err, storage.ErrTooOldSample) && !errors.Is(err, storage.ErrOutOfBounds) {
		t.Fatalf("head accepted a sample older than the window: %v", err)
	}
	_ = app.Rollback()
	err = db.WriteBlock(context.Background(), oldT, func(app storage.Appender) error {
		_, err := app.Append(0, old, oldT, 7)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, sum := count(t, db, "old"); n != 1 || sum != 7 {
		t.Fatalf("block not visible: %d samples, sum %v", n, sum)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir)
	defer db.Close()
	if n, _ := count(t, db, "raw"); n != minutes {
		t.Errorf("after a restart %d raw samples, want %d", n, minutes)
	}
	if n, _ := count(t, db, "old"); n != 1 {
		t.Errorf("after a restart %d block samples, want 1", n)
	}
}

// Blocks written by WriteBlock overlap others by design: Prometheus' warning about it is demoted
// to debug, so an operator's log at info shows nothing alarming.
func TestOverlappingBlocksAreNotAWarning(t *testing.T) {
	var buf syncBuf
	db, err := Open(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})), nil, Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, v := range []string{"a", "b"} {
		err := db.WriteBlock(context.Background(), 1000, func(app storage.Appender) error {
			_, err := app.Append(0, labels.FromStrings(labels.MetricName, "x", "v", v), 1000, 1)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := count(t, db, "x"); n != 2 {
		t.Fatalf("%d samples in the two blocks, want 2", n)
	}
	time.Sleep(2 * blockReloadInterval) // reloads that see the overlap
	if s := buf.String(); strings.Contains(s, "level=WARN") {
		t.Errorf("warnings logged:\n%s", s)
	}
}

// A block of several days appended one series after the other (as the Deriver writes old hours)
// keeps every sample: the block writer's head used to refuse samples more than an hour before
// the first one appended (a series that starts later came first).
func TestWriteBlockSeriesAfterSeries(t *testing.T) {
	db := openTest(t, t.TempDir())
	defer db.Close()
	const hourMs = 3600_000
	start := time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC).UnixMilli()
	const hours = 3 * 24
	err := db.WriteBlock(context.Background(), start+hours*hourMs, func(app storage.Appender) error {
		for i, s := range []string{"a", "b", "c"} {
			for h := int64(1 + 10*(1-i%2)); h <= hours; h++ { // a and c from hour 11, b from hour 1
				if _, err := app.Append(0, labels.FromStrings(labels.MetricName, "x:sum1h", "s", s), start+h*hourMs, float64(h)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := count(t, db, "x:sum1h"); n != 3*hours-20 {
		t.Fatalf("%d samples in the block, want %d", n, 3*hours-20)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Generation names every write that can change a range: a commit into the head changes the
// generation of its days only; samples replayed from the write-ahead log at open leave their days
// without a generation until they are persisted; a persisted day's generation names its blocks.
func TestGeneration(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir)
	day := time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC).UnixMilli()
	const dayMs = 24 * 3600 * 1000
	appendAt := func(db *DB, ts int64) {
		t.Helper()
		app := db.Appender(context.Background())
		if _, err := app.Append(0, labels.FromStrings(labels.MetricName, "g"), ts, 1); err != nil {
			t.Fatal(err)
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	gen := func(db *DB, d int64) (string, bool) { return db.Generation(d+1, d+dayMs) }
	appendAt(db, day+3600_000)
	g1, ok := gen(db, day)
	if !ok {
		t.Fatal("a day written in the head by this DB has no generation")
	}
	other, _ := gen(db, day+dayMs)
	appendAt(db, day+7200_000)
	if g2, _ := gen(db, day); g2 == g1 {
		t.Errorf("a commit into the day left its generation %q", g1)
	}
	if o2, _ := gen(db, day+dayMs); o2 != other {
		t.Errorf("a commit into another day changed the next day's generation %q → %q", other, o2)
	}
	// Closed without persisting the head (as after kill -9): the samples come back from the WAL.
	db.stopOnce.Do(func() { close(db.stop) })
	<-db.loopDone
	if err := db.db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir)
	defer db.Close()
	if g, ok := gen(db, day); ok {
		t.Errorf("a day replayed from the WAL has generation %q, want none", g)
	}
	if err := db.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	g3, ok := gen(db, day)
	if !ok || !strings.Contains(g3, ".0 ") {
		t.Fatalf("a persisted day's generation %q (%v), want its blocks", g3, ok)
	}
	if g4, _ := gen(db, day); g4 != g3 {
		t.Errorf("generation moved without a write: %q → %q", g3, g4)
	}
}

// A derived tier's generation moves only with commits of that tier's samples into the day:
// the collector's 1-minute samples and the Deriver's gauges leave the hourly tier's day as it
// was, and a new hourly point moves it (and the day's generation of everything).
func TestTierGeneration(t *testing.T) {
	db := openTest(t, t.TempDir())
	defer db.Close()
	day := time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC).UnixMilli()
	const dayMs = 24 * 3600 * 1000
	appendAt := func(name string, ts int64) {
		t.Helper()
		app := db.Appender(context.Background())
		if _, err := app.Append(0, labels.FromStrings(labels.MetricName, name, "project", "p1"), ts, 1); err != nil {
			t.Fatal(err)
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	hourly := func() string {
		t.Helper()
		g, ok := db.TierGeneration(day+1, day+dayMs, ":sum1h")
		if !ok {
			t.Fatal("a day written by this DB has no hourly generation")
		}
		return g
	}
	appendAt("cygni_cpu_seconds:sum1h", day+3600_000)
	h1, all1 := hourly(), must(db.Generation(day+1, day+dayMs))
	daily1, _ := db.TierGeneration(day+1, day+dayMs, ":sum1d")
	appendAt("cygni_cpu_seconds", day+3660_000)
	appendAt("cygni_project_budget_usd", day+3660_000)
	if h := hourly(); h != h1 {
		t.Errorf("1-minute samples and gauges moved the hourly tier's generation %q → %q", h1, h)
	}
	if all := must(db.Generation(day+1, day+dayMs)); all == all1 {
		t.Errorf("commits into the day left its generation %q", all1)
	}
	appendAt("cygni_cpu_seconds:sum1h", day+7200_000)
	if h := hourly(); h == h1 {
		t.Errorf("an hourly point left the hourly tier's generation %q", h1)
	}
	if d, _ := db.TierGeneration(day+1, day+dayMs, ":sum1d"); d != daily1 {
		t.Errorf("an hourly point moved the daily tier's generation %q → %q", daily1, d)
	}
	if g, _ := db.TierGeneration(day+1, day+dayMs, ":other"); g != must(db.Generation(day+1, day+dayMs)) {
		t.Errorf("an unknown suffix's generation %q is not the day's", g)
	}
	// The 1-minute samples of the usage series, per UTC hour: a commit into hour 1 moves hour 1
	// only; gauges and hourly points move neither.
	const hourMs = 3600_000
	raw := func(h int64) string { return must(db.TierGeneration(day+h*hourMs+1, day+(h+1)*hourMs, RawSuffix)) }
	r1, r3 := raw(1), raw(3)
	appendAt("cygni_project_budget_usd", day+3720_000)
	appendAt("cygni_cpu_seconds:sum1h", day+3*hourMs)
	if g := raw(1); g != r1 {
		t.Errorf("a gauge and an hourly point moved hour 1's raw generation %q → %q", r1, g)
	}
	appendAt("cygni_memory_gb_hours", day+3720_000)
	if g := raw(1); g == r1 {
		t.Errorf("a 1-minute sample into hour 1 left its raw generation %q", r1)
	}
	if g := raw(3); g != r3 {
		t.Errorf("a 1-minute sample into hour 1 moved hour 3's raw generation %q → %q", r3, g)
	}
}

func must(g string, ok bool) string {
	if !ok {
		panic("no generation")
	}
	return g
}
