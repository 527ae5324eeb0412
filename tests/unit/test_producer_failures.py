"""The producer's failure contract against a fake Kinesis: what is resent, what is given up (the later
records of its key only), refused events with their reason, and the duplicates an ambiguous timeout
can cause."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

from pipeline.codecs import DecodedEvent, decode_record
from pipeline.events import Event, UserActivityData, new_event
from pipeline.exceptions import DeliveryError
from tests.producer_harness import (
    FakeKinesis,
    client_error,
    fast_producer,
    fast_retry,
    ids_by_key,
    ids_of,
    reference_events,
    sized_activity,
)

pytestmark = pytest.mark.library  # the embeddable library: ./dev test also runs it on 3.11 and 3.13


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(client_error("ProvisionedThroughputExceededException"), id="throttled"),
        pytest.param(client_error("InternalFailure"), id="internal-failure"),
        pytest.param(EndpointConnectionError(endpoint_url="http://fake"), id="endpoint-unreachable"),
        pytest.param(ConnectTimeoutError(endpoint_url="http://fake"), id="connect-timeout"),
    ],
)
def test_a_call_that_wrote_nothing_is_resent_whole_without_duplicates(error: Exception) -> None:
    # GIVEN a stream whose first two PutRecords calls fail as a whole, before writing anything
    kinesis = FakeKinesis()
    kinesis.before_write = lambda n: error if n < 2 else None
    sleeps: list[float] = []
    producer = fast_producer(kinesis, sleep=sleeps.append)
    events = reference_events(300)

    # WHEN events are sent
    producer.put_many(events)
    producer.close()

    # THEN they are delivered exactly once, in order per key, after two backoffs
    assert ids_of(kinesis.read()) == ids_of(events)
    assert ids_by_key(kinesis.read()) == ids_by_key(events)
    assert len(sleeps) == 2
    assert producer.stats.retries == len(kinesis.calls[0]) + len(kinesis.calls[1])


def test_a_record_out_of_attempts_gives_up_the_later_records_of_its_key_only() -> None:
    # GIVEN a stream that always fails the second event of the busiest partition key
    events = reference_events(1_000)
    by_key = ids_by_key(events)
    busiest = max(by_key, key=lambda key: len(by_key[key]))
    assert len(by_key[busiest]) >= 3
    poisoned = by_key[busiest][1]
    kinesis = FakeKinesis()
    kinesis.fail_entry = lambda entry: poisoned.encode() in entry["Data"]
    producer = fast_producer(kinesis, retry=fast_retry(4))

    # WHEN the events are sent
    producer.put_many(events)
    with pytest.raises(DeliveryError) as raised:
        producer.close()

    # THEN the error lists that event and every later one of its key, in order, and nothing else
    assert [e.event_id for e in raised.value.undelivered] == by_key[busiest][1:]

    # AND the key's first event and every other key's events were delivered exactly once, in order
    written = kinesis.read()
    assert ids_of(written) + ids_of(raised.value.undelivered) == ids_of(events)
    expected = {key: ids for key, ids in by_key.items() if key != busiest} | {busiest: by_key[busiest][:1]}
    assert ids_by_key(written) == expected

    # AND the poisoned record was sent exactly max_attempts times
    assert sum(poisoned.encode() in e["Data"] for call in kinesis.calls for e in call) == 4


def test_an_error_that_can_never_succeed_also_lists_records_already_given_up() -> None:
    # GIVEN a stream that always fails one key's first event and, on the 3rd call, denies access
    events = reference_events(1_000)
    by_key = ids_by_key(events)
    assert max(len(ids) for ids in by_key.values()) >= 3  # so that a 3rd call happens
    poisoned = events[0].event_id
    kinesis = FakeKinesis()
    kinesis.fail_entry = lambda entry: poisoned.encode() in entry["Data"]
    kinesis.before_write = lambda n: client_error("AccessDeniedException") if n == 2 else None
    sleeps: list[float] = []
    producer = fast_producer(kinesis, retry=fast_retry(2), sleep=sleeps.append)

    # WHEN the events are sent
    producer.put_many(events)
    with pytest.raises(DeliveryError) as raised:
        producer.flush()

    # THEN it stops at the denied call, and the error lists every event not written: those given up
    # for running out of attempts as well as those still pending
    assert len(kinesis.calls) == 3
    undelivered = ids_of(raised.value.undelivered)
    assert undelivered[poisoned] == 1
    assert ids_of(kinesis.read()) + undelivered == ids_of(events)
    assert isinstance(raised.value.__cause__, ClientError)


@pytest.mark.parametrize(
    ("bad", "reason_part"),
    [
        pytest.param(sized_activity(2, url_bytes=1_100_000), "readers accept at most", id="past-a-reader-s-limit"),
        pytest.param(
            new_event(
                event_id="late-clock",
                timestamp=datetime(2099, 1, 1, tzinfo=UTC),
                source="web",
                data=UserActivityData("page_view"),
                user_id="u-1",
            ),
            "future horizon",
            id="invalid-event",
        ),
    ],
)
def test_an_event_readers_would_refuse_is_refused_with_its_reason_and_the_rest_delivered(
    bad: Event, reason_part: str
) -> None:
    # GIVEN a buffer holding ordinary events and one event readers would turn into a bad row
    events = [sized_activity(1), bad, sized_activity(3)]
    kinesis = FakeKinesis()
    producer = fast_producer(kinesis)
    producer.put_many(events)
    # WHEN it is flushed
    with pytest.raises(DeliveryError) as raised:
        producer.flush()
    # THEN the others are delivered, and only the refused one is listed, with its reason
    assert ids_of(kinesis.read()) == ids_of([events[0], events[2]])
    assert [e.event_id for e in raised.value.undelivered] == [bad.event_id]
    assert reason_part in raised.value.reasons[bad.event_id]
    assert producer.stats.refused == 1


def test_an_ambiguous_read_timeout_is_resent_and_can_duplicate() -> None:
    # GIVEN a stream that writes the first call's entries and then loses the response (read timeout).
    # The producer cannot know whether they were written; it resends them, as its docstring says, and
    # this is the one case where the producer itself duplicates: consumers deduplicate by event_id.
    kinesis = FakeKinesis()
    kinesis.after_write = lambda n: ReadTimeoutError(endpoint_url="http://fake") if n == 0 else None
    events = reference_events(200)
    producer = fast_producer(kinesis)

    # WHEN events are sent
    producer.put_many(events)
    producer.close()

    # THEN no error is raised, every event is in the stream, and those of the first call twice
    first_call = [entry["Data"] for entry in kinesis.calls[0]]
    assert first_call
    expected = ids_of(events) + Counter(e.event_id for data in first_call for e in _decode(data))
    assert ids_of(kinesis.read()) == expected
    assert producer.stats.retries == len(first_call)

    # AND per-key order still holds once the duplicates are dropped (first occurrence wins)
    first_seen: dict[str, Event] = {}
    for event in kinesis.read():
        first_seen.setdefault(event.event_id, event)
    deduplicated = list(first_seen.values())
    assert ids_by_key(deduplicated) == ids_by_key(events)


def _decode(data: bytes) -> list[Event]:
    results = decode_record(data)
    assert all(isinstance(r, DecodedEvent) for r in results)
    return [r.event for r in results if isinstance(r, DecodedEvent)]
