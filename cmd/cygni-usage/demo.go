package main

import (
	"fmt"
	"os"

	"github.com/alecthomas/kingpin/v2"
)

type demoCmd struct{}

func registerDemo(app *kingpin.Application) (string, command) {
	cl := app.Command("demo", "Run everything in one process on embedded defaults with the simulated AWS, and print what to open.")
	return cl.FullCommand(), &demoCmd{}
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
	p, err := open(cfg)
	if err != nil {
		return err
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
	fmt.Fprintf(os.Stdout, "\nCygni Usage demo is running.\n  URL:            %s\n  health:         %s/healthz\n  self-metrics:   %s/metrics\n  simulated AWS:  %s\n%sTry: curl -H \"Authorization: Bearer <admin token>\" %s/api/usage/notifications\nPress Ctrl-C to stop; the next start continues where this one stopped.\n\n", url, url, url, p.simURL, tokens, url)
	return p.runAll(p.reload)
}
