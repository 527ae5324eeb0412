"""User activity: one stored row per activity, and each user's session as a fold in stream order.

Table ``user_activities``, key ``(user_id, timestamp)``: one :class:`PutOnce` row per event, with
``timestamp`` = ``<stamp>#<event_id>`` (unique even when two activities share a microsecond) and the
attributes ``activity_type``, ``page_url`` and ``session_id`` (each left out when absent),
``session_duration`` (whole seconds since the session began, rounded down), ``user_segment`` (from the
context, else its default segment), ``event_id`` and ``ttl`` (epoch seconds of event time plus the
context's ``activity_ttl``, rounded down).

Table ``user_sessions``, key ``(user_id)``: ``last_activity`` (a ``max`` :class:`Extreme`) with its
companion ``session_start``.

The session fold, per user, in stream order, from the stored session (``context.sessions``), for an
activity at event time ``t``:

- no session yet: a new session starts at ``t``; duration 0;
- ``t >= last`` and ``t - last <= session_timeout``: same session; duration ``t - start``;
- ``t >= last`` and a longer gap: a new session starts at ``t``; duration 0;
- ``t < last`` (a late event): duration 0 and the session is left as it was.

After an event with ``t >= last`` the session is ``(last=t, start)``, and that event, and only such an
event, carries the ``user_sessions`` extreme of the new state. Hence the effects of event ``i`` depend
only on the context and events ``0..i``: a batch that fails part-way has persisted exactly the session
state of the events before the failure, and the retry's fold starts from it. Because ``t`` never moves
backwards in the fold, the stored extreme equals the fold's state after any prefix of the stream, so
the outcome does not depend on how the stream is cut into batches.

Validation guarantees every ``user_activity`` a non-empty ``user_id`` (its key). The user's segment
comes from its user item in the entity store's single table (``USER#<id>``/``#METADATA``, logical
table ``store``; a cacheable read: segments change rarely), else the deployment's default segment.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

from pipeline.events import Event, EventType, UserActivityData
from pipeline.metrics.effects import Effect, Extreme, PutOnce, Scalar
from pipeline.plugins.base import BatchContext, Read
from pipeline.plugins.timefmt import epoch_seconds, parse_stamp, stamp
from pipeline.stores.keys import user_segment_key

__all__ = ["UserActivityPlugin", "session_key", "user_key"]

_SECOND: Final = timedelta(seconds=1)


def user_key(user_id: str) -> tuple[tuple[str, str], ...]:
    """The key of a user's item in the entity store's single table, which holds its ``user_segment``
    (:func:`pipeline.stores.keys.user_segment_key`)."""
    return tuple(user_segment_key(user_id).items())


def session_key(user_id: str) -> tuple[tuple[str, str], ...]:
    """The key of a user's stored session."""
    return (("user_id", user_id),)


class UserActivityPlugin:
    """See the module docstring. Stateless between batches: the session state comes from the context."""

    name: str = "user_activity"
    version: int = 1
    event_types: frozenset[EventType] = frozenset({EventType.USER_ACTIVITY})

    def reads(self, events: Sequence[Event]) -> Iterable[Read]:
        """Each user's segment (cacheable) and stored session (fresh)."""
        for user in dict.fromkeys(e.user_id for e in events if isinstance(e.data, UserActivityData) and e.user_id):
            yield Read("store", user_key(user), cacheable=True)
            yield Read("user_sessions", session_key(user))

    def effects(self, events: Sequence[Event], context: BatchContext) -> list[list[Effect]]:
        """One effect list per event: its activity row, and the session extreme if it advanced the session."""
        settings = context.settings
        default_segment = settings.default_segment
        timeout = settings.session_timeout
        keep_for = settings.activity_ttl
        sessions: dict[str, tuple[datetime, datetime] | None] = {}  # user -> (last, start), this batch
        segments: dict[str, str] = {}
        out: list[list[Effect]] = []
        for event in events:
            data = event.data
            user = event.user_id
            if not isinstance(data, UserActivityData) or not user:
                out.append([])
                continue
            t = event.timestamp
            if t.tzinfo is not UTC:
                t = t.astimezone(UTC)  # same-zone arithmetic would ignore DST; UTC never has any
            if user in sessions:
                current = sessions[user]
            else:
                current = sessions[user] = _stored_session(context, user)
            start, duration, advanced = _fold(current, t, timeout)

            when = stamp(t)
            key_time = f"{when}#{event.event_id}"
            item: dict[str, Scalar] = {"user_id": user, "timestamp": key_time, "activity_type": data.activity_type}
            if data.page_url is not None:
                item["page_url"] = data.page_url
            if data.session_id is not None:
                item["session_id"] = data.session_id
            item["session_duration"] = duration
            if user not in segments:
                segments[user] = _segment(context, user, default_segment)
            item["user_segment"] = segments[user]
            item["event_id"] = event.event_id
            item["ttl"] = epoch_seconds(t + keep_for)
            effects: list[Effect] = [PutOnce("user_activities", (("user_id", user), ("timestamp", key_time)), item)]
            if advanced:
                sessions[user] = (t, start)
                companions = {"session_start": stamp(start)}
                effects.append(Extreme("user_sessions", session_key(user), "last_activity", when, "max", companions))
            out.append(effects)
        return out


def _fold(current: tuple[datetime, datetime] | None, t: datetime, timeout: timedelta) -> tuple[datetime, int, bool]:
    """One step of the session fold (module docstring): ``(session start, duration, advanced)``."""
    if current is None:
        return t, 0, True
    last, start = current
    if t < last:
        return start, 0, False
    if t - last <= timeout:
        return start, (t - start) // _SECOND, True
    return t, 0, True


def _segment(context: BatchContext, user: str, default: str) -> str:
    stored = context.item("store", user_key(user))
    segment = stored.get("user_segment") if stored else None
    return segment if isinstance(segment, str) and segment else default


def _stored_session(context: BatchContext, user: str) -> tuple[datetime, datetime] | None:
    """``(last activity, session start)`` as stored before this batch, if the user has a session."""
    item = context.item("user_sessions", session_key(user))
    if item is None:
        return None
    last, start = item.get("last_activity"), item.get("session_start")
    if not isinstance(last, str) or not isinstance(start, str):
        return None
    return parse_stamp(last), parse_stamp(start)
