package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cygni/usage/collector"
)

// term is the process's stderr: log lines and at most one progress line, never mixed up. On a
// terminal the progress line is redrawn in place and a log line first clears it, then the
// progress line is drawn again below the log line; elsewhere (a pipe, a file) progress is
// written as whole lines at every quarter.
type term struct {
	mu   sync.Mutex
	w    io.Writer
	tty  bool
	line string // the progress line shown on the terminal; "" when none
}

func newTerm(f *os.File) *term {
	fi, err := f.Stat()
	return &term{w: f, tty: err == nil && fi.Mode()&os.ModeCharDevice != 0}
}

// Write writes log output (whole lines, as slog writes them).
func (t *term) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.line != "" {
		_, _ = io.WriteString(t.w, "\r\033[K")
	}
	n, err := t.w.Write(p)
	if t.line != "" {
		_, _ = io.WriteString(t.w, t.line)
	}
	return n, err
}

// progress shows line as the progress line (terminal only).
func (t *term) progress(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.tty {
		return
	}
	t.line = line
	_, _ = io.WriteString(t.w, "\r\033[K"+line)
}

// println ends the progress line, if any, and writes line on a line of its own.
func (t *term) println(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.line != "" {
		_, _ = io.WriteString(t.w, "\r\033[K")
		t.line = ""
	}
	_, _ = io.WriteString(t.w, line+"\n")
}

// progressBars draws a progress bar for every collection window longer than an hour (the first
// backfill, a gap after an outage, a one-shot collect; live cycles draw nothing) and ends each
// with "backfill done: N samples in T".
type progressBars struct {
	t        *term
	always   bool // draw for every window (the collect command)
	from     time.Time
	quarters int // quarters reported off a terminal
}

func (b *progressBars) update(pr collector.Progress) {
	total := pr.To.Sub(pr.From)
	if total <= 0 || (!b.always && total < time.Hour) {
		return
	}
	if !b.from.Equal(pr.From) {
		b.from, b.quarters = pr.From, 0
	}
	minutes, done := int64(total/time.Minute), int64(pr.Done/time.Minute)
	frac := float64(pr.Done) / float64(total)
	const width = 30
	filled := min(int(frac*width), width)
	desc := fmt.Sprintf("collecting %s .. %s", pr.From.Format(time.RFC3339), pr.To.Format(time.RFC3339))
	if b.t.tty {
		b.t.progress(fmt.Sprintf("%s %3.0f%% |%s%s| %d/%d minutes", desc, frac*100,
			strings.Repeat("█", filled), strings.Repeat(" ", width-filled), done, minutes))
	} else if q := int(frac * 4); q > b.quarters && pr.Done < total {
		b.quarters = q
		b.t.println(fmt.Sprintf("%s: %3.0f%% (%d/%d minutes, %s samples)", desc, frac*100, done, minutes, thousands(pr.Samples)))
	}
	if pr.Done >= total {
		elapsed := time.Duration(0)
		if !pr.Started.IsZero() {
			elapsed = pr.At.Sub(pr.Started)
		}
		b.t.println(fmt.Sprintf("backfill done: %s samples in %s (%s .. %s)", thousands(pr.Samples),
			elapsed.Round(100*time.Millisecond), pr.From.Format(time.RFC3339), pr.To.Format(time.RFC3339)))
		b.from = time.Time{}
	}
}

// thousands writes n with thousands separators: 1,234,567.
func thousands(n uint64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// quietHandler lowers the records of a library below warn to debug: the Prometheus TSDB's block
// writes, compactions and head GCs are the normal life of the TSDB, not news for a demo user.
type quietHandler struct{ slog.Handler }

func (h quietHandler) Enabled(ctx context.Context, l slog.Level) bool {
	if l < slog.LevelWarn {
		l = slog.LevelDebug
	}
	return h.Handler.Enabled(ctx, l)
}

func (h quietHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		r.Level = slog.LevelDebug
	}
	return h.Handler.Handle(ctx, r)
}

func (h quietHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return quietHandler{h.Handler.WithAttrs(as)}
}

func (h quietHandler) WithGroup(name string) slog.Handler {
	return quietHandler{h.Handler.WithGroup(name)}
}
