-- Per product, 1-minute tumbling windows: views, distinct viewers, mean session duration.
-- A view without a session_duration counts in view_count and unique_viewers but not in the average
-- (AVG skips NULL); a window with no duration at all has no avg_session_duration attribute.
-- unique_viewers counts distinct non-null user_id.
CREATE TEMPORARY VIEW product_views_1m_windows AS
SELECT
  window_start,
  window_end,
  product_id,
  COUNT(*) AS view_count,
  COUNT(DISTINCT user_id) AS unique_viewers,
  AVG(session_duration) AS avg_session_duration
FROM TABLE(TUMBLE(TABLE on_time, DESCRIPTOR(event_time), INTERVAL '1' MINUTE))
WHERE event_type = 'product_view'
GROUP BY window_start, window_end, product_id;

CREATE TEMPORARY VIEW product_views_1m AS
SELECT
  'product_views_1m#' || product_id AS pk,
  DATE_FORMAT(window_start, $stamp) AS sk,
  'product_views_1m' AS metric,
  DATE_FORMAT(window_start, $stamp) AS window_start,
  DATE_FORMAT(window_end, $stamp) AS window_end,
  product_id,
  view_count,
  unique_viewers,
  CAST(avg_session_duration AS DECIMAL(38, 6)) AS avg_session_duration
FROM product_views_1m_windows;
