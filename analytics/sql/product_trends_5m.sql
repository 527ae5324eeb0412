-- Per product, 5-minute windows sliding every minute (HOP), for trends.
CREATE TEMPORARY VIEW product_trends_5m AS
SELECT
  'product_trends_5m#' || product_id AS pk,
  DATE_FORMAT(window_start, $stamp) AS sk,
  'product_trends_5m' AS metric,
  DATE_FORMAT(window_start, $stamp) AS window_start,
  DATE_FORMAT(window_end, $stamp) AS window_end,
  product_id,
  COUNT(*) AS view_count,
  COUNT(DISTINCT user_id) AS unique_viewers
FROM TABLE(HOP(TABLE on_time, DESCRIPTOR(event_time), INTERVAL '1' MINUTE, INTERVAL '5' MINUTE))
WHERE event_type = 'product_view'
GROUP BY window_start, window_end, product_id;
