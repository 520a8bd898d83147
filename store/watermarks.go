package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// CollectorWatermark returns the watermark of the collector shard key (see
// SetCollectorWatermark), and false when there is none.
func (s *Store) CollectorWatermark(ctx context.Context, key string) (time.Time, bool, error) {
	var ms int64
	err := s.db.QueryRowContext(ctx, s.rebind("SELECT watermark_ms FROM collector_watermarks WHERE key = ?"), key).Scan(&ms)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read the collector watermark %s: %w", key, err)
	}
	return time.UnixMilli(ms).UTC(), true, nil
}

// SetCollectorWatermark records that shard key (one of shards) has committed everything before
// t. A watermark never moves back: an older t leaves the row as it is.
func (s *Store) SetCollectorWatermark(ctx context.Context, key string, shards int, t time.Time) error {
	_, err := s.db.ExecContext(ctx, s.rebind(`INSERT INTO collector_watermarks (key, shards, watermark_ms, updated_ms) VALUES (?, ?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET shards = excluded.shards, updated_ms = excluded.updated_ms,
			watermark_ms = CASE WHEN excluded.watermark_ms > collector_watermarks.watermark_ms
				THEN excluded.watermark_ms ELSE collector_watermarks.watermark_ms END`),
		key, shards, t.UnixMilli(), s.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("write the collector watermark %s: %w", key, err)
	}
	return nil
}

// CollectedUntil returns how far every collector shard has collected: the least watermark of
// the shards of the current sharding (the shard count of the row written last; rows with shards
// 0, such as the right-sizing watermarks, are no shard), and false
// while no shard has a watermark or not every shard of that sharding has one.
func (s *Store) CollectedUntil(ctx context.Context) (time.Time, bool, error) {
	var shards int
	err := s.db.QueryRowContext(ctx, "SELECT shards FROM collector_watermarks WHERE shards > 0 ORDER BY updated_ms DESC LIMIT 1").Scan(&shards)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read the collector watermarks: %w", err)
	}
	var n int
	var least sql.NullInt64
	if err := s.db.QueryRowContext(ctx, s.rebind("SELECT COUNT(*), MIN(watermark_ms) FROM collector_watermarks WHERE shards = ?"), shards).Scan(&n, &least); err != nil {
		return time.Time{}, false, fmt.Errorf("read the collector watermarks: %w", err)
	}
	if n < shards || !least.Valid {
		return time.Time{}, false, nil
	}
	return time.UnixMilli(least.Int64).UTC(), true, nil
}
