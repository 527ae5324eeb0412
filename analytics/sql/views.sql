-- What every metric reads: the events once each, split by the watermark into on time and late.
-- `events` has the columns of analytics.rows.EVENT_COLUMNS plus event_time (the rowtime, declared with
-- a WATERMARK by the source binding) and proc_time.

-- The first copy of each event_id to arrive. Producers resend identical copies, so which copy is kept
-- does not change a result. Ordered by processing time, Flink keeps the first row and emits nothing
-- after it: the output stays insert-only and event_time stays a time attribute.
CREATE TEMPORARY VIEW deduplicated AS
SELECT *
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY proc_time ASC) AS copy_number
  FROM events
)
WHERE copy_number = 1;

-- On time: after the watermark the event saw (none yet counts as on time). Every window reads only
-- these, so no window ever receives an event it would drop as late: lateness is decided here, once.
CREATE TEMPORARY VIEW on_time AS
SELECT *
FROM deduplicated
WHERE CURRENT_WATERMARK(event_time) IS NULL OR event_time > CURRENT_WATERMARK(event_time);

-- Late: at or before the watermark. Counted in late_events_1h, never silently lost.
CREATE TEMPORARY VIEW late AS
SELECT *
FROM deduplicated
WHERE event_time <= CURRENT_WATERMARK(event_time);
