package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/cygni/usage/config"
	"github.com/cygni/usage/query"
)

type demoCmd struct {
	simAddr string
}

func registerDemo(app *kingpin.Application) (string, command) {
	c := &demoCmd{}
	cl := app.Command("demo", "Run everything in one process on embedded defaults with the simulated AWS, and print what to open.")
	cl.Flag("sim-addr", "Listen address of the simulated AWS (default: a free loopback port), e.g. 127.0.0.1:4566 for a fixed ground-truth URL.").StringVar(&c.simAddr)
	return cl.FullCommand(), c
}

func (c *demoCmd) run(g *globals) error {
	cfg, err := loadConfig(g)
	if err != nil {
		return err
	}
	cfg.AWS.Simulated = true
	if len(cfg.OperatorTeams) == 0 {
		cfg.OperatorTeams = []string{demoTeams[0].team.ID} // Acme operates the demo
	}
	if g.configFile == "" {
		// On the embedded defaults, evaluate the budget rules every 10 s so that the seeded
		// statuses show as notifications right after the backfill.
		cfg.Alerting.EvaluationInterval = config.Duration(10 * time.Second)
	}
	p, err := open(cfg, openOptions{quietLibraries: true, simAddr: c.simAddr, simOversized: demoOversized})
	if err != nil {
		return err
	}
	// On the embedded defaults, backfill every demo team's whole billing period so far (at
	// least collector.backfill), so that month-to-date costs, budgets and forecasts are those
	// of a real month. A --config file's collector.backfill is kept as it is.
	if g.configFile == "" {
		now := p.now()
		for _, dt := range demoTeams {
			start, _ := query.BillingPeriod(now, dt.team.BillingAnchorDay)
			if d := now.Sub(start).Truncate(time.Hour) + time.Hour; d > cfg.Collector.Backfill.D() {
				cfg.Collector.Backfill = config.Duration(d)
			}
		}
	}
	tokens, err := p.seedDemo()
	if err != nil {
		p.close()
		return err
	}
	all, _ := parseParts("")
	if err := p.wire(all); err != nil {
		p.close()
		return err
	}
	url, err := p.serveHTTP()
	if err != nil {
		p.close()
		return err
	}
	// The banner comes last, once the first collection (the backfill) is done, so that nothing
	// scrolls it away.
	p.add("banner", func(ctx context.Context) error {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for p.ready() != nil {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
		// The first backfill triggers the Deriver and the rules at once: let their log lines
		// (the seeded budget alerts) come first.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
		fmt.Fprint(os.Stdout, demoBanner(url, p.simURL, tokens, p.now(), demoTeams[0].team.BillingAnchorDay))
		<-ctx.Done()
		return nil
	})
	return p.runAll(p.reload)
}
