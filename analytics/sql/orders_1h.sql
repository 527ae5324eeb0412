-- Per hour: orders, revenue, distinct customers, completed orders, completed revenue (exact DECIMAL).
--
-- "First" means the smallest event time at Flink's rowtime precision (the millisecond); among events
-- of one order in the same millisecond, the first to arrive.
-- * An order counts once, in the hour of its first event, whatever that event's status: +1 order,
--   + its total_amount to revenue, its user_id among the distinct customers.
-- * A completion counts once per order, at the first of its events whose status normalises to
--   'completed', in that event's hour: +1 completed order, + its total_amount to completed revenue.
-- Status normalisation: lowercased; complete/completed/fulfilled -> completed; canceled/cancelled ->
-- cancelled; anything else stays as lowercased.
--
-- Why the event-time attribute and not (event_us, event_id): ordered by the rowtime alone, this is
-- Flink's deduplication (keep the first row on event time), which holds each order's earliest event
-- until the watermark passes it and then emits it once, insert-only (FLINK-37005). A Top-1 ordered by
-- other or several columns is, in Flink 2.1 to 2.3, planned as insert-only too but keeps emitting a
-- new first row without retracting the old one, so an order whose first event arrives after a later
-- one counts twice (FLINK-40368; found by tests/analytics/test_flink_property.py).

CREATE TEMPORARY VIEW order_events AS
SELECT
  event_id,
  event_time,
  user_id,
  order_id,
  total_amount,
  CASE LOWER(status)
    WHEN 'complete' THEN 'completed'
    WHEN 'fulfilled' THEN 'completed'
    WHEN 'canceled' THEN 'cancelled'
    ELSE LOWER(status)
  END AS status
FROM on_time
WHERE event_type = 'order_event';

CREATE TEMPORARY VIEW first_order_events AS
SELECT *
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY order_id ORDER BY event_time ASC) AS order_rank
  FROM order_events
)
WHERE order_rank = 1;

CREATE TEMPORARY VIEW first_completions AS
SELECT *
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY order_id ORDER BY event_time ASC) AS completion_rank
  FROM order_events
  WHERE status = 'completed'
)
WHERE completion_rank = 1;

CREATE TEMPORARY VIEW order_facts AS
SELECT event_time, user_id AS customer, 1 AS is_order, total_amount AS order_amount,
       0 AS is_completion, CAST(0 AS DECIMAL(38, 10)) AS completion_amount
FROM first_order_events
UNION ALL
SELECT event_time, CAST(NULL AS STRING) AS customer, 0 AS is_order, CAST(0 AS DECIMAL(38, 10)) AS order_amount,
       1 AS is_completion, total_amount AS completion_amount
FROM first_completions;

CREATE TEMPORARY VIEW orders_1h AS
SELECT
  'orders_1h' AS pk,
  DATE_FORMAT(window_start, $stamp) AS sk,
  'orders_1h' AS metric,
  DATE_FORMAT(window_start, $stamp) AS window_start,
  DATE_FORMAT(window_end, $stamp) AS window_end,
  CAST(SUM(is_order) AS BIGINT) AS orders,
  CAST(SUM(order_amount) AS DECIMAL(38, 10)) AS revenue,
  COUNT(DISTINCT customer) AS customers,
  CAST(SUM(is_completion) AS BIGINT) AS completed_orders,
  CAST(SUM(completion_amount) AS DECIMAL(38, 10)) AS completed_revenue
FROM TABLE(TUMBLE(TABLE order_facts, DESCRIPTOR(event_time), INTERVAL '1' HOUR))
GROUP BY window_start, window_end;
