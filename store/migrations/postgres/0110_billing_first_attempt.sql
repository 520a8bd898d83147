-- 0110: when a billing report was first sent. Stripe deduplicates a meter event identifier for
-- at least 24 hours; a resend later than that checks Stripe's hourly summaries first.
ALTER TABLE billing_reports ADD COLUMN first_attempt_at TIMESTAMPTZ;
UPDATE billing_reports SET first_attempt_at = created_at WHERE attempts > 0;
-- Rows parked as failed because Stripe answered that it already holds an event with the row's
-- own identifier were delivered (an earlier attempt whose answer was lost): mark them sent.
UPDATE billing_reports SET state = 'sent', sent_at = next_attempt_at,
	last_error = 'delivered: Stripe already held this identifier (reclassified by migration 0110; was: ' || last_error || ')'
	WHERE state = 'failed' AND (last_error LIKE '%already exists with identifier ' || identifier
		OR last_error LIKE '%already exists with identifier ' || identifier || '.%'
		OR last_error LIKE '%already exists with identifier ' || identifier || ' %');
