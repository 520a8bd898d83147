package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/cygni/usage/api"
)

// serveOps serves the operations endpoints alone (/healthz, /readyz, /metrics) on listen, for
// a process that runs no API part: a collector shard, billing or a rule evaluation of its own
// gets its probes and its metrics (the remote-write queue's among them) without the APIs.
func (p *process) serveOps() (string, error) {
	ln, err := net.Listen("tcp", p.cfg.Listen)
	if err != nil {
		return "", fmt.Errorf("listen on %s: %w", p.cfg.Listen, err)
	}
	srv := newHTTPServer(p.cfg, api.NewOps(api.Options{
		Logger: p.logger, Gatherer: p.reg, Metrics: p.vm, Ready: p.ready, ReadyDetails: p.api.ReadyDetails,
	}))
	p.add("http", func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(ln) }()
		select {
		case err := <-errc:
			return fmt.Errorf("serve HTTP: %w", err)
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
			return nil
		}
	})
	return "http://" + ln.Addr().String(), nil
}
