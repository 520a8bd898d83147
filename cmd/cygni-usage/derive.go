package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/cygni/usage/internal/clock"
)

// deriveCmd is `cygni-usage derive --from T --to T`: rebuild the derived tiers of a span.
type deriveCmd struct {
	from, to string
}

func registerDerive(app *kingpin.Application) (string, command) {
	c := &deriveCmd{}
	cl := app.Command("derive", "Rebuild the derived hourly series (<series>:sum1h, cygni_project_cost_usd) of a span from the 1-minute samples, with a progress bar. Idempotent: only differences are written; hours older than the out-of-order window go into blocks. Run it with the server stopped (it opens the data dir).")
	cl.Flag("from", "Start of the span, RFC 3339 (2024-01-31T00:00:00Z) or YYYY-MM-DD (UTC midnight); rounded down to the hour.").Required().StringVar(&c.from)
	cl.Flag("to", "End of the span (exclusive), RFC 3339 or YYYY-MM-DD; rounded up to the hour, at most the current hour.").Required().StringVar(&c.to)
	return cl.FullCommand(), c
}

func (c *deriveCmd) run(g *globals) error {
	from, err := parseTimeFlag("--from", c.from)
	if err != nil {
		return err
	}
	to, err := parseTimeFlag("--to", c.to)
	if err != nil {
		return err
	}
	clk, err := clock.FromEnv()
	if err != nil {
		return err
	}
	if hour := clk().UTC().Truncate(time.Hour); to.After(hour) {
		to = hour
	}
	if !from.Before(to) {
		return fmt.Errorf("--from %s is not before --to %s (the end is capped at the current hour)",
			from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	cfg, err := loadConfig(g)
	if err != nil {
		return err
	}
	p, err := open(cfg, openOptions{})
	if err != nil {
		return err
	}
	defer p.close()
	// The metadata store's price overrides price the cost series, as in the server.
	if err := p.openStore(); err != nil {
		return err
	}
	_, d, err := p.newQuery(nil)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	started := time.Now()
	desc := fmt.Sprintf("deriving %s .. %s", from.Format(time.RFC3339), to.Format(time.RFC3339))
	progress := func(done, total int) {
		frac := float64(done) / float64(total)
		const width = 30
		filled := min(int(frac*width), width)
		line := fmt.Sprintf("%s %3.0f%% |%s%s| %d/%d hours", desc, frac*100,
			strings.Repeat("█", filled), strings.Repeat(" ", width-filled), done, total)
		if p.term.tty {
			p.term.progress(line)
		} else {
			p.term.println(line)
		}
	}
	if err := d.Rebuild(ctx, from, to, progress); err != nil {
		return err
	}
	p.term.println(fmt.Sprintf("derive done: %s .. %s in %s", from.Format(time.RFC3339), to.Format(time.RFC3339),
		time.Since(started).Round(100*time.Millisecond)))
	return nil
}
