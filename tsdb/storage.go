package tsdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	config_util "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/storage/remote"
)

// Storage modes and remote kinds (the values of storage.mode and storage.remote.kind).
const (
	ModeEmbedded = "embedded"
	ModeRemote   = "remote"

	KindVictoriaMetrics = "victoriametrics"
	KindPrometheus      = "prometheus"
)

// Storage is what the product keeps its series in: the embedded TSDB, or a remote
// Prometheus-compatible store. The collector, the Deriver, the rule engine, billing and the
// query layer see only this.
type Storage interface {
	storage.Appendable
	storage.AppendableV2
	storage.SampleAndChunkQueryable
	Close() error
}

var (
	_ Storage = (*DB)(nil)
	_ Storage = (*Remote)(nil)
)

// StorageOptions choose and configure the series store.
type StorageOptions struct {
	// Mode is ModeEmbedded (default) or ModeRemote.
	Mode string
	// Embedded configures the embedded TSDB (ModeEmbedded).
	Embedded Options
	// Remote configures the remote store (ModeRemote).
	Remote RemoteOptions
}

// OpenStorage opens the series store that opts choose. It is the one place that decides
// between the embedded TSDB and a remote store.
func OpenStorage(logger *slog.Logger, reg prometheus.Registerer, opts StorageOptions) (Storage, error) {
	switch opts.Mode {
	case "", ModeEmbedded:
		return Open(logger, reg, opts.Embedded)
	case ModeRemote:
		return OpenRemote(logger, reg, opts.Remote)
	default:
		return nil, fmt.Errorf("tsdb: unknown storage mode %q; want %s or %s", opts.Mode, ModeEmbedded, ModeRemote)
	}
}

// RemoteOptions configure a remote store. Zero values take the defaults.
type RemoteOptions struct {
	// WriteURL is the remote-write endpoint (VictoriaMetrics: http://host:8428/api/v1/write;
	// Prometheus: http://host:9090/api/v1/write). Required.
	WriteURL string
	// ReadURL is, for KindPrometheus, the remote-read endpoint (http://host:9090/api/v1/read);
	// for KindVictoriaMetrics, the base of its Prometheus query API (http://host:8428, or
	// vmselect's http://host:8481/select/0/prometheus), under which /api/v1/export is read.
	// Required.
	ReadURL string
	// Kind is KindVictoriaMetrics or KindPrometheus. Required.
	Kind string
	// QueueDir holds the durable write queue. Required.
	QueueDir string
	// Timeout bounds one HTTP request. Default 30s.
	Timeout time.Duration
	// ReadSyncTimeout is how long a read waits for the queue to deliver what this process has
	// committed before it (reads see the process's own writes). Default 30s.
	ReadSyncTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between attempts to send a batch. Defaults 50ms
	// and 5s.
	MinBackoff, MaxBackoff time.Duration
	// DrainTimeout is how long Close waits for the queue to deliver what is pending (default
	// 5s; negative: not at all). What is left is sent by the next start.
	DrainTimeout time.Duration
	// HTTPClient, if set, makes every request (writes, reads, flushes); default a client with a
	// transport of its own and Timeout.
	HTTPClient *http.Client
}

// Remote keeps series in a remote store: appends are committed to a durable local queue and
// sent by remote-write; reads go to the store's own read API. A read first waits until the
// queue has delivered everything this process committed, so the collector and the Deriver,
// which read what they wrote before they write corrections, never see a stale store.
type Remote struct {
	logger *slog.Logger
	opts   RemoteOptions
	q      *queue
	read   storage.SampleAndChunkQueryable
	hc     *http.Client

	flushMu   sync.Mutex
	flushedAt uint64 // delivered count at the last VictoriaMetrics flush
	flushURL  string // VictoriaMetrics' /internal/force_flush; "" for other kinds
}

// OpenRemote opens the durable queue in opts.QueueDir, starts sending what it holds, and
// connects the read side.
func OpenRemote(logger *slog.Logger, reg prometheus.Registerer, opts RemoteOptions) (*Remote, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "remote-storage")
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.ReadSyncTimeout == 0 {
		opts.ReadSyncTimeout = 30 * time.Second
	}
	if opts.MinBackoff == 0 {
		opts.MinBackoff = 50 * time.Millisecond
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 5 * time.Second
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 5 * time.Second
	}
	if opts.QueueDir == "" {
		return nil, errors.New("tsdb: remote storage needs a queue directory")
	}
	wu, err := parseHTTPURL("write_url", opts.WriteURL)
	if err != nil {
		return nil, err
	}
	hc := httpClient(opts)
	read, err := openRead(opts, hc)
	if err != nil {
		return nil, err
	}
	r := &Remote{logger: logger, opts: opts, hc: hc, read: read}
	if opts.Kind == KindVictoriaMetrics {
		f := *wu
		f.Path, f.RawQuery = "/internal/force_flush", ""
		r.flushURL = f.String()
	}
	wc, err := remote.NewWriteClient("cygni", &remote.ClientConfig{
		URL:              &config_util.URL{URL: wu},
		Timeout:          model.Duration(opts.Timeout),
		HTTPClientConfig: config_util.DefaultHTTPClientConfig,
		RetryOnRateLimit: true,
	})
	if err != nil {
		return nil, fmt.Errorf("remote write client for %s: %w", opts.WriteURL, err)
	}
	if c, ok := wc.(*remote.Client); ok {
		c.Client = hc
	}
	q, err := openQueue(logger, reg, opts.QueueDir, wc, opts.MinBackoff, opts.MaxBackoff)
	if err != nil {
		return nil, err
	}
	r.q = q
	return r, nil
}

// httpClient is the one HTTP client of a remote store (reads, writes, flushes): a transport of
// its own, so that Close can close its connections.
func httpClient(opts RemoteOptions) *http.Client {
	if opts.HTTPClient != nil {
		return opts.HTTPClient
	}
	t := opts.Timeout
	if t == 0 {
		t = 30 * time.Second
	}
	return &http.Client{Timeout: t, Transport: &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     90 * time.Second,
	}}
}

// openRead connects the read side of a remote store.
func openRead(opts RemoteOptions, hc *http.Client) (storage.SampleAndChunkQueryable, error) {
	ru, err := parseHTTPURL("read_url", opts.ReadURL)
	if err != nil {
		return nil, err
	}
	switch opts.Kind {
	case KindVictoriaMetrics:
		return &vmQueryable{base: strings.TrimSuffix(ru.String(), "/"), hc: hc}, nil
	case KindPrometheus:
		t := opts.Timeout
		if t == 0 {
			t = 30 * time.Second
		}
		rc, err := remote.NewReadClient("cygni", &remote.ClientConfig{
			URL:              &config_util.URL{URL: ru},
			Timeout:          model.Duration(t),
			HTTPClientConfig: config_util.DefaultHTTPClientConfig,
			ChunkedReadLimit: 50 << 20,
		})
		if err != nil {
			return nil, fmt.Errorf("remote read client for %s: %w", opts.ReadURL, err)
		}
		if c, ok := rc.(*remote.Client); ok {
			c.Client = hc
		}
		return labelsFromSeries{remote.NewSampleAndChunkQueryableClient(rc, labels.EmptyLabels(), nil, true, func() (int64, error) { return 0, nil })}, nil
	default:
		return nil, fmt.Errorf("tsdb: unknown remote kind %q; want %s or %s", opts.Kind, KindVictoriaMetrics, KindPrometheus)
	}
}

func parseHTTPURL(key, s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("tsdb: remote %s %q is not an http(s) URL", key, s)
	}
	return u, nil
}

// Appender returns an appender whose Commit writes its samples to the durable queue.
func (r *Remote) Appender(context.Context) storage.Appender { return &appender{q: r.q} }

// AppenderV2 returns an appender of Prometheus' next append interface over the same queue.
func (r *Remote) AppenderV2(context.Context) storage.AppenderV2 { return &appenderV2{q: r.q} }

// Querier returns a querier of the remote store over [mint, maxt] (milliseconds), once the
// queue has delivered this process's writes.
func (r *Remote) Querier(mint, maxt int64) (storage.Querier, error) {
	if err := r.sync(); err != nil {
		return nil, err
	}
	return r.read.Querier(mint, maxt)
}

// ChunkQuerier returns a chunk querier of the remote store, as Querier.
func (r *Remote) ChunkQuerier(mint, maxt int64) (storage.ChunkQuerier, error) {
	if err := r.sync(); err != nil {
		return nil, err
	}
	return r.read.ChunkQuerier(mint, maxt)
}

// Sync waits until the queue has delivered everything committed before the call.
func (r *Remote) Sync(ctx context.Context) error {
	if err := r.q.waitDelivered(ctx); err != nil {
		return err
	}
	return r.forceFlush(ctx)
}

func (r *Remote) sync() error {
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.ReadSyncTimeout)
	defer cancel()
	if err := r.Sync(ctx); err != nil {
		return fmt.Errorf("remote store: %d committed samples not yet delivered to %s, so a read would miss them: %w", r.q.pendingSamples(), r.opts.WriteURL, err)
	}
	return nil
}

// forceFlush makes VictoriaMetrics search what it received (it buffers new samples for a
// second or two), once per delivery.
func (r *Remote) forceFlush(ctx context.Context) error {
	if r.flushURL == "" {
		return nil
	}
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	d := r.q.deliveredRecords()
	if d == r.flushedAt {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.flushURL, nil)
	if err != nil {
		return err
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return fmt.Errorf("flush VictoriaMetrics: %w", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		// vminsert and other stores have no such endpoint: their new samples become
		// searchable on their own within seconds.
		r.logger.Debug("store has no force_flush endpoint", "url", r.flushURL, "status", resp.Status)
	}
	r.flushedAt = d
	return nil
}

// Pending returns the number of committed samples not yet delivered.
func (r *Remote) Pending() uint64 { return r.q.pendingSamples() }

// Close gives the queue DrainTimeout to deliver what is pending, then stops sending (what is
// not delivered stays in the queue for the next start) and closes the queue.
func (r *Remote) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), max(r.opts.DrainTimeout, 0))
	defer cancel()
	if err := r.q.waitDelivered(ctx); err != nil {
		r.logger.Warn("closing with samples not yet delivered; they are sent on the next start", "pending", r.q.pendingSamples())
	}
	err := r.q.close()
	// A connection whose last response was just read goes back to its pool from the
	// transport's own goroutine, a moment later: close the idle ones again after that.
	r.closeIdle()
	time.Sleep(50 * time.Millisecond)
	r.closeIdle()
	return err
}

// closeIdle closes the idle keep-alive connections of the HTTP client.
func (r *Remote) closeIdle() { r.hc.CloseIdleConnections() }

// Reader is a read-only view of the series store.
type Reader interface {
	storage.Queryable
	Close() error
}

// OpenReader opens the store that opts choose for reading only, beside a server that may be
// running on it: the embedded TSDB through OpenReadOnly (no lock), a remote store through its
// read API (the write queue is not opened).
func OpenReader(logger *slog.Logger, opts StorageOptions) (Reader, error) {
	switch opts.Mode {
	case "", ModeEmbedded:
		return OpenReadOnly(logger, opts.Embedded.Dir)
	case ModeRemote:
		q, err := openRead(opts.Remote, httpClient(opts.Remote))
		if err != nil {
			return nil, err
		}
		return remoteReader{q}, nil
	default:
		return nil, fmt.Errorf("tsdb: unknown storage mode %q; want %s or %s", opts.Mode, ModeEmbedded, ModeRemote)
	}
}

type remoteReader struct {
	storage.SampleAndChunkQueryable
}

func (remoteReader) Close() error { return nil }
