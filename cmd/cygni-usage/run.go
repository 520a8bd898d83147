package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/cygni/usage/api"
	"github.com/cygni/usage/collector"
	"github.com/cygni/usage/config"
	"github.com/cygni/usage/internal/clock"
	"github.com/cygni/usage/query"
	"github.com/cygni/usage/rollup"
	"github.com/cygni/usage/simaws"
	"github.com/cygni/usage/store"
	"github.com/cygni/usage/tsdb"
	"github.com/cygni/usage/web"
)

// loadConfig reads --config and applies the command-line overrides.
func loadConfig(g *globals) (*config.Config, error) {
	cfg, err := config.Load(g.configFile)
	if err != nil {
		return nil, err
	}
	if g.dataDir != "" {
		cfg.DataDir = g.dataDir
	}
	if g.listen != "" {
		cfg.Listen = g.listen
	}
	return cfg, cfg.Validate()
}

func newLogger(level string) *slog.Logger { return newLoggerTo(os.Stderr, level) }

func newLoggerTo(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// process is everything one cygni-usage process runs, built from the configuration.
type process struct {
	cfg    *config.Config
	now    clock.Func // the process's clock: the wall clock, or CYGNI_TEST_NOW's pinned one
	term   *term      // stderr: log lines and the progress bar
	logger *slog.Logger
	// libLogger is for the libraries' own logs (the Prometheus TSDB): the logger, or in the
	// demo one that keeps their routine messages below info.
	libLogger *slog.Logger
	reg       *prometheus.Registry
	vm        *metrics.Set
	db        tsdb.Storage   // the series store: the embedded TSDB or a remote store (storage.mode)
	store     *store.Store   // the metadata store
	sim       *simaws.Sim    // non-nil when the simulated AWS runs in-process
	simURL    string         // its base URL
	api       api.Options    // filled by the parts, then served
	actors    []actor        // long-running parts
	closer    []func() error // closed in reverse order on exit
	ready     func() error
	parts     parts                // the parts this process runs (set by wire)
	sig       chan os.Signal       // SIGINT, SIGTERM, SIGHUP, caught from open on
	col       *collector.Collector // non-nil when the collector runs in this process
	engine    *query.Engine        // the query layer (wireQuery)
	derive    *rollup.Deriver      // non-nil when the Deriver runs in this process
}

// actor is one member of the run group.
type actor struct {
	name string
	run  func(ctx context.Context) error
}

func (p *process) add(name string, run func(ctx context.Context) error) {
	p.actors = append(p.actors, actor{name: name, run: run})
}

// openOptions are what a command changes in open.
type openOptions struct {
	quietLibraries bool     // the libraries' routine logs below info (the demo)
	simAddr        string   // listen address of the in-process simulated AWS; default 127.0.0.1:0
	simOversized   []string // simulated services that reserve far more than they use
}

// open builds the shared parts: logger, registries, TSDB and, if configured, the simulated AWS.
func open(cfg *config.Config, oo openOptions) (*process, error) {
	now, err := clock.FromEnv()
	if err != nil {
		return nil, err
	}
	t := newTerm(os.Stderr)
	p := &process{cfg: cfg, now: now, term: t, logger: newLoggerTo(t, cfg.LogLevel), reg: prometheus.NewRegistry(), vm: metrics.NewSet()}
	p.libLogger = p.logger
	if oo.quietLibraries {
		p.libLogger = slog.New(quietHandler{p.logger.Handler()})
	}
	if os.Getenv(clock.EnvTestNow) != "" {
		p.logger.Warn("clock pinned for a test run; this process does not read the wall clock", "env", clock.EnvTestNow, "now", now().Format(time.RFC3339))
	}
	// Catch the signals before anything starts: a SIGHUP (rule reload) that arrives while the
	// parts are being wired must not kill the process with the default action.
	p.sig = make(chan os.Signal, 1)
	signal.Notify(p.sig, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	p.closer = append(p.closer, func() error { signal.Stop(p.sig); return nil })
	p.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := privateDir(cfg.DataDir); err != nil {
		return nil, err
	}
	db, err := tsdb.OpenStorage(p.libLogger, p.reg, storageOptions(cfg))
	if err != nil {
		return nil, err
	}
	p.db = db
	p.closer = append(p.closer, db.Close)
	if err := p.openStore(); err != nil {
		p.close()
		return nil, err
	}
	if cfg.AWS.Simulated {
		if err := p.startSim(oo); err != nil {
			p.close()
			return nil, err
		}
	}
	return p, nil
}

// storageOptions is the series store the configuration chooses.
func storageOptions(cfg *config.Config) tsdb.StorageOptions {
	return tsdb.StorageOptions{
		Mode: cfg.Storage.Mode,
		Embedded: tsdb.Options{
			Dir:              filepath.Join(cfg.DataDir, "tsdb"),
			Retention:        cfg.TSDB.Retention.D(),
			OutOfOrderWindow: cfg.TSDB.OutOfOrderWindow.D(),
		},
		Remote: tsdb.RemoteOptions{
			Kind:     cfg.Storage.Remote.Kind,
			WriteURL: cfg.Storage.Remote.WriteURL,
			ReadURL:  cfg.Storage.Remote.ReadURL,
			QueueDir: filepath.Join(cfg.DataDir, "remote-queue"),
			Timeout:  cfg.Storage.Remote.Timeout.D(),
		},
	}
}

// startSim serves the simulated AWS on a loopback port and points the AWS SDK at it through
// the standard environment (AWS_ENDPOINT_URL and static credentials), exactly as a user would
// point the product at any endpoint.
func (p *process) startSim(oo openOptions) error {
	p.sim = simaws.New(simaws.Options{Seed: p.cfg.AWS.SimulatedSeed, Now: p.now, Oversized: oo.simOversized})
	addr := oo.simAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen for the simulated AWS on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: p.sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	p.closer = append(p.closer, srv.Close)
	p.simURL = "http://" + ln.Addr().String()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL":      p.simURL,
		"AWS_ACCESS_KEY_ID":     "AKIDSIMULATED",
		"AWS_SECRET_ACCESS_KEY": "simulated-secret",
		"AWS_REGION":            "us-east-1",
	} {
		if err := os.Setenv(k, v); err != nil {
			return fmt.Errorf("set %s: %w", k, err)
		}
	}
	p.logger.Info("simulated AWS endpoint started", "url", p.simURL)
	return nil
}

func (p *process) close() {
	for i := len(p.closer) - 1; i >= 0; i-- {
		if err := p.closer[i](); err != nil {
			p.logger.Warn("close on exit; continuing shutdown", "err", err)
		}
	}
	p.closer = nil
}

// serveHTTP adds the HTTP server to the run group. The listener is opened now so that the
// address is known (and a busy port fails) before anything else starts.
func (p *process) serveHTTP() (string, error) {
	console, err := web.New()
	if err != nil {
		return "", err
	}
	ln, err := net.Listen("tcp", p.cfg.Listen)
	if err != nil {
		return "", fmt.Errorf("listen on %s: %w", p.cfg.Listen, err)
	}
	opts := p.api
	opts.Logger = p.logger
	opts.Gatherer = p.reg
	opts.Metrics = p.vm
	opts.Ready = p.ready
	opts.OperatorTeams = p.cfg.OperatorTeams
	opts.Console = console
	opts.Limits = apiLimits(p.cfg)
	srv := newHTTPServer(p.cfg, api.New(opts))
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

// exitOnSecondSignal exits the process on the next SIGINT or SIGTERM: shutting down writes the
// TSDB's heads into blocks, which can take a while after a large backfill, and an operator who
// signals again does not want to wait. Nothing is lost: the next start replays the write-ahead
// log, and the collector resumes from its watermark.
func exitOnSecondSignal(logger *slog.Logger, sig <-chan os.Signal) {
	for s := range sig {
		if s == syscall.SIGHUP {
			continue
		}
		logger.Warn("second signal; exiting now without finishing the shutdown (the next start replays the write-ahead log)", "signal", s.String())
		os.Exit(1)
	}
}

// runAll runs every actor until one returns or a signal arrives, then shuts all down and
// closes the shared parts. SIGHUP calls onReload (rule files) without stopping anything.
func (p *process) runAll(onReload func()) error {
	defer p.close()
	var g run.Group
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	{
		sig := p.sig
		g.Add(func() error {
			for {
				select {
				case s := <-sig:
					if s == syscall.SIGHUP {
						if onReload != nil {
							onReload()
						}
						continue
					}
					p.logger.Info("signal received; shutting down (a second one exits at once)", "signal", s.String())
					go exitOnSecondSignal(p.logger, sig)
					return nil
				case <-ctx.Done():
					return nil
				}
			}
		}, func(error) { cancel() })
	}
	for _, a := range p.actors {
		actx, acancel := context.WithCancel(ctx)
		g.Add(func() error {
			err := a.run(actx)
			if err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("%s: %w", a.name, err)
			}
			return nil
		}, func(error) { acancel() })
	}
	return g.Run()
}
