"""A plan's monthly cost per service, and the seed-style design's for the same traffic.

Usage is computed per second from the plan (floats: rates), turned into monthly quantities, and
priced in :class:`~decimal.Decimal` (money never goes through a float). A month is 730 hours.
The seed style is the source design: one JSON record per event, its consumer's measured time per
event (one blocking call or more per event) and its write and read units per event; the archive,
Flink and CloudWatch are the same for both. Kinesis is priced both provisioned and on-demand; the
cheaper counts.

Assumptions the figures do not measure (stated in ``ASSUMPTIONS`` and printed with the table): the
archive's transform costs 10 µs of Lambda per event; Firehose delivers four partitions (one per event
type) at its 300 s / 128 MB buffer; the consumer logs 1.5 KB per invocation to CloudWatch; 12 custom
metrics and 6 alarms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from tools.plan.inputs import Figures, Prices
from tools.plan.limits import FIREHOSE_ROUNDING_BYTES, KINESIS_PUT_UNIT_BYTES
from tools.plan.planner import ConsumerPlan, Plan

__all__ = ["ASSUMPTIONS", "SERVICES", "CostTable", "monthly_cost"]

SECONDS_PER_MONTH: Final = 730 * 3600
GB: Final = 1024**3
SERVICES: Final = ("Kinesis", "Lambda", "DynamoDB", "Firehose", "S3", "Managed Flink", "CloudWatch")
ASSUMPTIONS: Final = (
    "one batching producer with linger 0.2 s (its default) fills the records",
    "transform Lambda 10 us/event",
    "Firehose: 4 partitions, 300 s / 128 MB buffers",
    "1.5 KB of logs per consumer invocation",
    "12 custom metrics, 6 alarms",
    "archive: one month of gzip data in S3 Standard",
)
_TRANSFORM_S_PER_EVENT: Final = 10e-6
_LOG_BYTES_PER_INVOCATION: Final = 1536
_METRICS, _ALARMS = 12, 6
_CENT: Final = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class CostTable:
    """Monthly USD per service for the project and the seed style, and Kinesis's chosen mode."""

    project: dict[str, Decimal]
    seed: dict[str, Decimal]
    kinesis_mode: str
    seed_kinesis_mode: str
    dynamodb_one_shard: Decimal
    """The project's DynamoDB line at one shard's write units per event: what per-shard partial items
    (the proposal in the README) would cost, whatever the shard count."""

    @property
    def project_total(self) -> Decimal:
        return sum(self.project.values(), Decimal(0))

    @property
    def project_total_one_shard(self) -> Decimal:
        return self.project_total - self.project["DynamoDB"] + self.dynamodb_one_shard

    @property
    def seed_total(self) -> Decimal:
        return sum(self.seed.values(), Decimal(0))


def _d(quantity: float) -> Decimal:
    return Decimal(repr(quantity))


def _money(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def _kinesis(
    prices: Prices, shards: int, records_per_s: float, record_bytes: float, readers: int
) -> tuple[Decimal, str]:
    month = SECONDS_PER_MONTH
    put_units = records_per_s * math.ceil(record_bytes / KINESIS_PUT_UNIT_BYTES) * month
    provisioned = (
        _d(shards * 730) * prices["kinesis_shard_hour"]
        + _d(put_units / 1e6) * prices["kinesis_put_payload_units_million"]
    )
    gb_in = records_per_s * math.ceil(record_bytes / 1024) * 1024 * month / GB
    gb_out = records_per_s * record_bytes * readers * month / GB
    on_demand = (
        _d(730) * prices["kinesis_on_demand_stream_hour"]
        + _d(gb_in) * prices["kinesis_on_demand_gb_in"]
        + _d(gb_out) * prices["kinesis_on_demand_gb_out"]
    )
    return (provisioned, "provisioned") if provisioned <= on_demand else (on_demand, "on-demand")


def _lambda(
    prices: Prices,
    memory_mb: int,
    invocations_per_s: float,
    state: ConsumerPlan,
    rate: float,
    transform_invocations: float,
) -> Decimal:
    month = SECONDS_PER_MONTH
    gb_s = (invocations_per_s * state.duration_s + rate * _TRANSFORM_S_PER_EVENT) * memory_mb / 1024 * month
    requests = (invocations_per_s + transform_invocations) * month
    return _d(requests / 1e6) * prices["lambda_requests_million"] + _d(gb_s) * prices["lambda_gb_second_arm64"]


def _firehose(prices: Prices, records_per_s: float, record_bytes: float, bytes_per_s: float) -> tuple[Decimal, float]:
    month = SECONDS_PER_MONTH
    billed = records_per_s * math.ceil(record_bytes / FIREHOSE_ROUNDING_BYTES) * FIREHOSE_ROUNDING_BYTES * month / GB
    per_partition = bytes_per_s / 4
    flush_s = min(300.0, 128 * 1024 * 1024 / per_partition) if per_partition > 0 else 300.0
    objects = 4 / flush_s * month
    cost = (
        _d(billed) * prices["firehose_gb_ingested"]
        + _d(bytes_per_s * month / GB) * prices["firehose_dynamic_partitioning_gb"]
        + _d(objects / 1000) * prices["firehose_dynamic_partitioning_objects_thousand"]
    )
    return cost, objects


def monthly_cost(plan: Plan, figures: Figures, prices: Prices) -> CostTable:
    """Both designs' monthly cost per service (see the module docstring for what is assumed)."""
    request, month = plan.request, SECONDS_PER_MONTH
    rate = request.rate
    archive_bytes = (
        rate
        * figures.formats["gzip-batch"]["bytes_per_event"]
        * (plan.bytes_per_event / figures.formats[request.record_format]["bytes_per_event"])
    )
    s3_storage = _d(archive_bytes * month / GB) * prices["s3_standard_gb_month"]
    kpus = math.ceil(rate / figures.flink_events_per_kpu) + 1
    flink = _d(kpus * 730) * prices["flink_kpu_hour"] + _d(kpus * 50) * prices["flink_running_storage_gb_month"]
    transform_invocations = plan.bytes_per_s / (1024 * 1024)

    def watch(invocations_per_s: float) -> Decimal:
        logs = invocations_per_s * _LOG_BYTES_PER_INVOCATION * month / GB
        return (
            _d(logs) * prices["cloudwatch_logs_gb_ingested"]
            + _METRICS * prices["cloudwatch_metric_month"]
            + _ALARMS * prices["cloudwatch_alarm_month"]
        )

    def dynamodb(wu: float, ru: float) -> Decimal:
        return (
            _d(rate * wu * month / 1e6) * prices["dynamodb_write_request_units_million"]
            + _d(rate * ru * month / 1e6) * prices["dynamodb_read_request_units_million"]
        )

    kinesis, mode = _kinesis(prices, plan.shards, plan.records_per_s, plan.record_bytes, request.readers)
    firehose, objects = _firehose(prices, plan.records_per_s, plan.record_bytes, plan.bytes_per_s)
    s3 = s3_storage + _d(objects / 1000) * prices["s3_put_thousand"]
    project = {
        "Kinesis": kinesis,
        "Lambda": _lambda(
            prices, request.memory_mb, plan.invocations_per_s, plan.consumer, rate, transform_invocations
        ),
        "DynamoDB": dynamodb(plan.write_units_per_event, plan.read_units_per_event),
        "Firehose": firehose,
        "S3": s3,
        "Managed Flink": flink,
        "CloudWatch": watch(plan.invocations_per_s),
    }
    seed_json = figures.formats["json"]
    scale = plan.bytes_per_event / figures.formats[request.record_format]["bytes_per_event"]
    seed_record = seed_json["bytes_per_event"] * scale
    seed_invocations = plan.seed_shards / plan.seed_consumer.cycle_s
    seed_kinesis, seed_mode = _kinesis(prices, plan.seed_shards, rate, seed_record, request.readers)
    seed_firehose, seed_objects = _firehose(prices, rate, seed_record, rate * seed_record)
    seed = {
        "Kinesis": seed_kinesis,
        "Lambda": _lambda(
            prices, request.memory_mb, seed_invocations, plan.seed_consumer, rate, rate * seed_record / (1024 * 1024)
        ),
        "DynamoDB": dynamodb(plan.seed_write_units_per_event, plan.seed_read_units_per_event),
        "Firehose": seed_firehose,
        "S3": s3_storage + _d(seed_objects / 1000) * prices["s3_put_thousand"],
        "Managed Flink": flink,
        "CloudWatch": watch(seed_invocations),
    }
    return CostTable(
        {k: _money(v) for k, v in project.items()},
        {k: _money(v) for k, v in seed.items()},
        mode,
        seed_mode,
        _money(dynamodb(plan.write_units_per_event_one_shard, plan.read_units_per_event)),
    )
