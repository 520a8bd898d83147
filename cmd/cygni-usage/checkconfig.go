package main

import (
	"fmt"

	"github.com/alecthomas/kingpin/v2"
)

type checkConfigCmd struct{}

func registerCheckConfig(app *kingpin.Application) (string, command) {
	cl := app.Command("check-config", "Validate the configuration file (--config) and exit non-zero naming the bad key.")
	return cl.FullCommand(), &checkConfigCmd{}
}

func (c *checkConfigCmd) run(g *globals) error {
	if _, err := loadConfig(g); err != nil {
		return err
	}
	name := g.configFile
	if name == "" {
		name = "(defaults)"
	}
	fmt.Printf("%s: OK\n", name)
	return nil
}
