package alerting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/cygni/usage/store"
)

// Outbox is the durable queue of e-mails and webhooks (the metadata store).
type Outbox interface {
	ClaimOutbox(ctx context.Context, channel string, limit int, lease time.Duration) ([]store.OutboxMessage, error)
	MarkOutboxSent(ctx context.Context, id int64) error
	MarkOutboxFailed(ctx context.Context, id int64, retryIn time.Duration, reason string) error
}

// DeliverFunc delivers one outbox payload; an error means "try again later".
type DeliverFunc func(ctx context.Context, payload []byte) error

// SenderOptions configure a Sender.
type SenderOptions struct {
	Channel string      // store.ChannelEmail or store.ChannelWebhook
	Outbox  Outbox      // required
	Deliver DeliverFunc // required
	// MinBackoff is the wait after the first failure (default 5s); it doubles per attempt up to
	// MaxBackoff (default 10m).
	MinBackoff, MaxBackoff time.Duration
	// Poll is how often the outbox is checked when nothing wakes the sender (default 5s).
	Poll time.Duration
	// Lease is how long a claimed message is reserved for one attempt (default 5m).
	Lease   time.Duration
	Metrics *metrics.Set
}

// Sender delivers one channel's outbox messages in its own goroutine (Run), retrying with
// exponential back-off; a message leaves the outbox only when it was delivered.
type Sender struct {
	logger       *slog.Logger
	opts         SenderOptions
	wake         chan struct{}
	sent, failed *metrics.Counter
}

// NewSender validates opts and fills defaults.
func NewSender(logger *slog.Logger, opts SenderOptions) (*Sender, error) {
	if opts.Outbox == nil || opts.Deliver == nil {
		return nil, errors.New("sender: outbox and deliver are required")
	}
	if opts.Channel != store.ChannelEmail && opts.Channel != store.ChannelWebhook {
		return nil, fmt.Errorf("sender: channel %q; want email or webhook", opts.Channel)
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 5 * time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 10 * time.Minute
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = opts.MinBackoff
	}
	if opts.Poll <= 0 {
		opts.Poll = 5 * time.Second
	}
	if opts.Lease <= 0 {
		opts.Lease = 5 * time.Minute
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.NewSet()
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Sender{
		logger: logger.With("component", "alerting-sender", "channel", opts.Channel),
		opts:   opts,
		wake:   make(chan struct{}, 1),
		sent:   opts.Metrics.GetOrCreateCounter(fmt.Sprintf(`cygni_alert_deliveries_total{channel=%q,result="sent"}`, opts.Channel)),
		failed: opts.Metrics.GetOrCreateCounter(fmt.Sprintf(`cygni_alert_deliveries_total{channel=%q,result="failed"}`, opts.Channel)),
	}, nil
}

// Kick wakes the sender now (new messages were queued). It never blocks.
func (s *Sender) Kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run delivers due messages until ctx is done.
func (s *Sender) Run(ctx context.Context) error {
	t := time.NewTicker(s.opts.Poll)
	defer t.Stop()
	for {
		if _, err := s.Flush(ctx); err != nil && ctx.Err() == nil {
			s.logger.Warn("read the outbox; retrying at the next poll", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-s.wake:
		}
	}
}

// backoff is the wait after a message's attempts-th failure (attempts counts earlier ones).
func (s *Sender) backoff(attempts int) time.Duration {
	d := s.opts.MinBackoff
	for i := 0; i < attempts && d < s.opts.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, s.opts.MaxBackoff)
}

// Flush makes one pass over the due messages and returns how many were delivered.
func (s *Sender) Flush(ctx context.Context) (int, error) {
	delivered := 0
	for {
		msgs, err := s.opts.Outbox.ClaimOutbox(ctx, s.opts.Channel, 20, s.opts.Lease)
		if err != nil {
			return delivered, err
		}
		if len(msgs) == 0 {
			return delivered, nil
		}
		for _, m := range msgs {
			if err := s.opts.Deliver(ctx, m.Payload); err != nil {
				s.failed.Inc()
				wait := s.backoff(m.Attempts)
				s.logger.Warn("deliver message; retrying later", "id", m.ID, "notification", m.NotificationID, "attempt", m.Attempts+1, "retry_in", wait, "err", err)
				if merr := s.opts.Outbox.MarkOutboxFailed(context.WithoutCancel(ctx), m.ID, wait, err.Error()); merr != nil {
					return delivered, merr
				}
				continue
			}
			if err := s.opts.Outbox.MarkOutboxSent(context.WithoutCancel(ctx), m.ID); err != nil {
				return delivered, err
			}
			s.sent.Inc()
			delivered++
		}
	}
}
