"""AWS limits the planner sizes against (documented quotas, us-east-1; none is enforced by the emulator)."""

from __future__ import annotations

from typing import Final

__all__ = [
    "FIREHOSE_ROUNDING_BYTES",
    "KINESIS_PUT_UNIT_BYTES",
    "LAMBDA_MAX_BATCH_RECORDS",
    "LAMBDA_MAX_PARALLELIZATION",
    "LAMBDA_PAYLOAD_BYTES",
    "PARTITION_WCU_PER_S",
    "SHARD_EGRESS_BYTES_PER_S",
    "SHARD_INGEST_BYTES_PER_S",
    "SHARD_INGEST_RECORDS_PER_S",
]

SHARD_INGEST_BYTES_PER_S: Final = 1024 * 1024
"""A shard accepts 1 MiB/s of writes ..."""
SHARD_INGEST_RECORDS_PER_S: Final = 1000
"""... or 1,000 records/s, whichever comes first."""
SHARD_EGRESS_BYTES_PER_S: Final = 2 * 1024 * 1024
"""A shard serves 2 MiB/s of reads, shared by every consumer without enhanced fan-out."""
KINESIS_PUT_UNIT_BYTES: Final = 25 * 1024
"""Provisioned streams bill PUT payload units of 25 KB per record (a record takes at least one)."""
LAMBDA_MAX_BATCH_RECORDS: Final = 10_000
"""An event source mapping's BatchSize for Kinesis is at most 10,000 records ..."""
LAMBDA_PAYLOAD_BYTES: Final = 6 * 1024 * 1024
"""... and an invocation's payload (the records base64 in JSON) at most 6 MB."""
LAMBDA_MAX_PARALLELIZATION: Final = 10
"""ParallelizationFactor: at most 10 concurrent batches per shard."""
PARTITION_WCU_PER_S: Final = 1000
"""One DynamoDB partition, hence one item, takes at most 1,000 write units per second."""
FIREHOSE_ROUNDING_BYTES: Final = 5 * 1024
"""Firehose bills each ingested record rounded up to the next 5 KB."""
