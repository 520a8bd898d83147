package main

import (
	"fmt"

	"github.com/alecthomas/kingpin/v2"

	"github.com/cygni/usage/alerting"
)

type checkRulesCmd struct {
	files []string
}

func registerCheckRules(app *kingpin.Application) (string, command) {
	c := &checkRulesCmd{}
	cl := app.Command("check-rules", "Validate Prometheus rule files (YAML, every expr, templates) and exit non-zero with file:line errors.")
	cl.Arg("file", "Rule files to check.").Required().ExistingFilesVar(&c.files)
	return cl.FullCommand(), c
}

func (c *checkRulesCmd) run(*globals) error {
	if err := alerting.CheckFiles(c.files...); err != nil {
		return err
	}
	for _, f := range c.files {
		fmt.Printf("%s: OK\n", f)
	}
	return nil
}
