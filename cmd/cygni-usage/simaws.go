package main

import (
	"fmt"
	"net/http"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/cygni/usage/internal/clock"
	"github.com/cygni/usage/simaws"
)

type simAWSCmd struct {
	addr   string
	seed   int64
	spikes []string
}

func registerSimAWS(app *kingpin.Application) (string, command) {
	c := &simAWSCmd{}
	cl := app.Command("sim-aws", "Serve the simulated AWS endpoint (ECS and CloudWatch wire protocols) alone.")
	cl.Flag("addr", "Listen address.").Default("127.0.0.1:4566").StringVar(&c.addr)
	cl.Flag("seed", "Seed of the simulated fleet.").Default("1").Int64Var(&c.seed)
	cl.Flag("spike", "A usage spike: project=proj_001,factor=8[,from=-1h|RFC3339][,for=3h] multiplies the project's running tasks (repeatable; also POST /_sim/spikes).").StringsVar(&c.spikes)
	return cl.FullCommand(), c
}

func (c *simAWSCmd) run(*globals) error {
	now, err := clock.FromEnv()
	if err != nil {
		return err
	}
	sim := simaws.New(simaws.Options{Seed: c.seed, Now: now})
	for _, v := range c.spikes {
		sp, err := simaws.ParseSpike(v, now())
		if err != nil {
			return err
		}
		if err := sim.AddSpike(sp); err != nil {
			return err
		}
		fmt.Printf("spike: %s × %d from %s to %s\n", sp.Project, sp.Factor, sp.From.Format(time.RFC3339), sp.To.Format(time.RFC3339))
	}
	fmt.Printf("simulated AWS on http://%s (access key AKIDSIMULATED, secret simulated-secret)\n", c.addr)
	fmt.Printf("  export AWS_ENDPOINT_URL=http://%s AWS_ACCESS_KEY_ID=AKIDSIMULATED AWS_SECRET_ACCESS_KEY=simulated-secret AWS_REGION=us-east-1\n", c.addr)
	srv := &http.Server{Addr: c.addr, Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}
