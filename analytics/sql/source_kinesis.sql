-- The stream binding's source in AWS: the Kinesis stream as raw record bytes, one row per record.
-- The connector (flink-connector-aws-kinesis-streams 6.x, the FLIP-27 'kinesis' source) neither
-- inflates gzip, splits NDJSON batches nor de-aggregates KPL records: analytics.decoding does all three.
-- Its metadata columns (shard-id, sequence-number) are not delivered by the 'kinesis' source in 6.0.0
-- (FLINK-36671), so bad rows carry the raw bytes and the reason, not the record's position.
-- Placeholders: $stream_arn, $region, $init_position (LATEST | TRIM_HORIZON | AT_TIMESTAMP).
CREATE TEMPORARY TABLE raw_records (
  `data` BYTES
) WITH (
  'connector' = 'kinesis',
  'stream.arn' = '$stream_arn',
  'aws.region' = '$region',
  'source.init.position' = '$init_position',
  'format' = 'raw'
);
