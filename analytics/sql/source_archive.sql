-- The local binding's source: the archive's events, staged by analytics.local as JSON lines with the
-- columns of analytics.rows.EVENT_COLUMNS, in event-time order (the archive is replayed, not streamed).
-- Placeholders: $columns, $path, $watermark_delay (the allowed lateness, e.g. INTERVAL '0 00:00:30.000' DAY TO SECOND(3)).
CREATE TEMPORARY TABLE events (
$columns,
  event_time AS TO_TIMESTAMP_LTZ(event_ms, 3),
  proc_time AS PROCTIME(),
  WATERMARK FOR event_time AS event_time - $watermark_delay
) WITH (
  'connector' = 'filesystem',
  'path' = '$path',
  'format' = 'json',
  'json.fail-on-missing-field' = 'true',
  'json.ignore-parse-errors' = 'false'
);
