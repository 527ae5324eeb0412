-- Every raw record through the project's codec layer (analytics.decoding.decode_record): one row per
-- event, or one 'bad' row per unit that cannot become an event (with its reason and raw bytes).
-- Placeholders: $columns (the table function's output columns), $event_columns, $bad_columns.
CREATE TEMPORARY VIEW decoded AS
SELECT d.*
FROM raw_records, LATERAL TABLE(decode_record(`data`)) AS d($columns);

-- The events, before they get their rowtime and watermark (analytics.job declares them on the way
-- to the `events` table, with the expressions of sql/source_archive.sql).
CREATE TEMPORARY VIEW decoded_events AS
SELECT $event_columns
FROM decoded
WHERE kind = 'event';

-- What could not become an event: routed to the bad-rows output, never failing the job.
CREATE TEMPORARY VIEW bad_rows AS
SELECT $bad_columns
FROM decoded
WHERE kind = 'bad';
