-- 0101: the idempotency-key generation of a billing report. It advances only when Stripe may
-- have saved a failed result under the old key (a 5xx, an operator's retry of a failed row), so a
-- crash between sending and recording resends under the same key.
ALTER TABLE billing_reports ADD COLUMN key_generation INTEGER NOT NULL DEFAULT 0;
