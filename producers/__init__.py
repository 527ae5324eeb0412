"""Publishing events to Kinesis: the :class:`Producer` that services embed."""

from producers.producer import Producer, ProducerStats

__all__ = ["Producer", "ProducerStats"]
