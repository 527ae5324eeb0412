"""The producer's background flush and its close against a fake Kinesis: linger, a background failure
raised by the next call, and close delivering what was buffered."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from pipeline.exceptions import DeliveryError
from producers import Producer
from tests.producer_harness import FakeKinesis, client_error, fast_producer, ids_of, reference_events, wait_until

pytestmark = pytest.mark.library  # the embeddable library: ./dev test also runs it on 3.11 and 3.13


def test_linger_flushes_without_an_explicit_flush() -> None:
    # GIVEN a producer that lingers 20 ms
    kinesis = FakeKinesis()
    producer = fast_producer(kinesis, linger_seconds=0.02)
    events = reference_events(50)

    # WHEN events are put and the caller just waits
    producer.put_many(events)
    wait_until(lambda: len(kinesis.read()) == len(events))

    # THEN they were sent by the background thread
    assert ids_of(kinesis.read()) == ids_of(events)
    producer.close()
    assert ids_of(kinesis.read()) == ids_of(events)


def _wait_for_background_failure(producer: Producer) -> None:
    """Until the linger thread has stored its failure for the caller (there is no public signal)."""
    wait_until(lambda: producer._background_error is not None)


@pytest.mark.parametrize("next_call", ["put", "flush", "close"])
def test_a_background_flush_failure_is_raised_by_the_next_call(next_call: str) -> None:
    # GIVEN a lingering producer whose stream denies access
    kinesis = FakeKinesis()
    kinesis.before_write = lambda n: client_error("AccessDeniedException")
    producer = fast_producer(kinesis, linger_seconds=0.01)
    events = reference_events(20)

    # WHEN events are put and the background flush fails
    producer.put_many(events)
    _wait_for_background_failure(producer)

    # THEN the caller's next call raises that failure, listing the events
    more = reference_events(5, seed=2)
    calls: dict[str, Callable[[], None]] = {
        "put": lambda: producer.put(more[0]),
        "flush": producer.flush,
        "close": producer.close,
    }
    with pytest.raises(DeliveryError) as raised:
        calls[next_call]()
    assert ids_of(raised.value.undelivered) == ids_of(events)
    assert len(kinesis.calls) == 1

    # AND once raised it is not raised again: the producer closes cleanly (the put was refused)
    producer.close()


@pytest.mark.parametrize("rest_fails", [pytest.param(False, id="rest-delivered"), pytest.param(True, id="rest-fails")])
def test_close_sends_what_was_buffered_behind_a_failed_background_flush(rest_fails: bool) -> None:
    # GIVEN a lingering producer whose first background flush is held inside PutRecords, then denied
    entered, release = threading.Event(), threading.Event()

    def first_call_blocks_then_fails(n: int) -> Exception | None:
        if n == 0:
            entered.set()
            assert release.wait(5)
        return client_error("AccessDeniedException") if n == 0 or rest_fails else None

    kinesis = FakeKinesis()
    kinesis.before_write = first_call_blocks_then_fails
    producer = fast_producer(kinesis, linger_seconds=0.01)
    first, second = reference_events(10), reference_events(10, seed=2)
    producer.put_many(first)
    assert entered.wait(5)
    producer.put_many(second)  # buffered while the background flush is under way
    release.set()

    # WHEN the producer is closed
    with pytest.raises(DeliveryError) as raised:
        producer.close()

    # THEN the second batch was still sent, and the error lists every event not delivered
    if rest_fails:
        assert ids_of(raised.value.undelivered) == ids_of(first) + ids_of(second)
        assert kinesis.read() == []
    else:
        assert ids_of(raised.value.undelivered) == ids_of(first)
        assert ids_of(kinesis.read()) == ids_of(second)


def test_close_right_after_put_returns_promptly_and_delivers() -> None:
    # GIVEN a lingering producer with one event put, its linger thread already waiting to flush
    kinesis = FakeKinesis()
    producer = fast_producer(kinesis, linger_seconds=0.2)
    events = reference_events(1)
    producer.put_many(events)
    time.sleep(0.05)

    # WHEN it is closed (from a helper thread, so that a hang fails the test instead of blocking it)
    closer = threading.Thread(target=producer.close, daemon=True)
    closer.start()
    closer.join(5)

    # THEN close returned and the event was delivered
    assert not closer.is_alive()
    assert ids_of(kinesis.read()) == ids_of(events)


def test_context_manager_closes_and_flushes_and_refuses_puts_after() -> None:
    # GIVEN events put inside a `with` block, on a producer with a long linger
    kinesis = FakeKinesis()
    events = reference_events(30)
    with fast_producer(kinesis, linger_seconds=60) as producer:
        producer.put_many(events)
        assert kinesis.calls == []

    # THEN leaving the block flushed them
    assert ids_of(kinesis.read()) == ids_of(events)

    # AND a put after close is refused, and closing again is a no-op
    with pytest.raises(RuntimeError, match="closed"):
        producer.put(events[0])
    with pytest.raises(RuntimeError, match="closed"):
        producer.put_many(events)
    producer.close()
    assert ids_of(kinesis.read()) == ids_of(events)
