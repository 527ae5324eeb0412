-- Late events, counted per event type and hour of their own event time. They are late for every
-- event-time window, so this is a plain (updating) aggregation: each new late event overwrites its
-- (type, hour) item with the new count.
CREATE TEMPORARY VIEW late_events_1h AS
SELECT
  'late_events_1h#' || event_type AS pk,
  DATE_FORMAT(hour_start, $stamp) AS sk,
  'late_events_1h' AS metric,
  DATE_FORMAT(hour_start, $stamp) AS window_start,
  DATE_FORMAT(hour_start + INTERVAL '1' HOUR, $stamp) AS window_end,
  event_type,
  COUNT(*) AS late_events
FROM (
  SELECT event_type, FLOOR(CAST(event_time AS TIMESTAMP(3)) TO HOUR) AS hour_start
  FROM late
)
GROUP BY event_type, hour_start;
