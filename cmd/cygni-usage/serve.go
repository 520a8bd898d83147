package main

import (
	"fmt"
	"strings"

	"github.com/alecthomas/kingpin/v2"
)

type serveCmd struct {
	only string
}

func registerServe(app *kingpin.Application) (string, command) {
	c := &serveCmd{}
	cl := app.Command("serve", "Run the production service: collector, API, alerting and billing.")
	cl.Flag("only", "Run only these parts, comma-separated: collector,api,alerting,billing.").StringVar(&c.only)
	return cl.FullCommand(), c
}

// parts is the set of parts a process runs.
type parts map[string]bool

func parseParts(only string) (parts, error) {
	all := parts{"collector": true, "api": true, "alerting": true, "billing": true}
	if only == "" {
		return all, nil
	}
	ps := parts{}
	for _, s := range strings.Split(only, ",") {
		s = strings.TrimSpace(s)
		if !all[s] {
			return nil, fmt.Errorf("--only: unknown part %q; want collector, api, alerting or billing", s)
		}
		ps[s] = true
	}
	return ps, nil
}

func (c *serveCmd) run(g *globals) error {
	ps, err := parseParts(c.only)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(g)
	if err != nil {
		return err
	}
	p, err := open(cfg, openOptions{})
	if err != nil {
		return err
	}
	if err := p.wire(ps); err != nil {
		p.close()
		return err
	}
	if ps["api"] {
		url, err := p.serveHTTP()
		if err != nil {
			p.close()
			return err
		}
		p.logger.Info("serving", "url", url)
	} else {
		url, err := p.serveOps()
		if err != nil {
			p.close()
			return err
		}
		p.logger.Info("serving the operations endpoints (/healthz, /readyz, /metrics)", "url", url)
	}
	return p.runAll(p.reload)
}
